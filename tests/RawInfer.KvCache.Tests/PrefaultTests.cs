using System.Runtime.InteropServices;
using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>
/// <see cref="PagedKvStorage.Prefault"/> commits every page of the pool (checked with mincore on Linux: every page of
/// each slab resident afterwards) and never changes what the pool holds, by the kernel's populate call and by the
/// portable path that writes each page.
/// </summary>
[Collection(nameof(PagePrefaultSwitch))] // the tests flip a process-wide switch
public sealed unsafe partial class PrefaultTests
{
    public static TheoryData<KvCacheType, bool> TypesAndPaths => new()
    {
        { KvCacheType.F32, true }, { KvCacheType.F32, false }, { KvCacheType.F16, true }, { KvCacheType.BF16, false },
    };

    [Theory]
    [MemberData(nameof(TypesAndPaths))]
    public void Prefault_keeps_every_value_the_pool_holds(KvCacheType type, bool madvise)
    {
        // 5 blocks × 3 slots × 1000 elements: slabs of 30,000 or 60,000 bytes, so pages and partial pages at both ends
        var storage = new PagedKvStorage(numLayers: 2, numBlocks: 5, blockSize: 3, kvDim: 1000, type);
        var expected = Fill(storage, seed: 7);
        try
        {
            PagePrefault.UseMadvise = madvise;
            storage.Prefault();
        }
        finally
        {
            PagePrefault.UseMadvise = true;
        }

        Assert.Equal(expected, Snapshot(storage));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void After_prefault_every_page_of_every_slab_is_resident(bool madvise)
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("residency is read with Linux's mincore");
        }

        // 8 MiB per slab, fresh from the runtime: its pages are mapped in only as they are written
        var storage = new PagedKvStorage(numLayers: 2, numBlocks: 512, blockSize: 16, kvDim: 256);
        try
        {
            PagePrefault.UseMadvise = madvise;
            storage.Prefault();
        }
        finally
        {
            PagePrefault.UseMadvise = true;
        }

        for (var layer = 0; layer < 2; layer++)
        {
            Assert.Equal(0, NonResidentPages(storage.LayerKeys(layer)));
            Assert.Equal(0, NonResidentPages(storage.LayerValues(layer)));
        }
    }

    private static long NonResidentPages(Span<float> floats)
    {
        const long page = 4096;
        fixed (float* p = floats)
        {
            var first = ((long)p + page - 1) & ~(page - 1);
            var last = ((long)(p + floats.Length)) & ~(page - 1);
            var pages = (last - first) / page;
            var vector = new byte[pages];
            fixed (byte* v = vector)
            {
                Assert.Equal(0, Mincore((void*)first, (nuint)(last - first), v));
            }

            return vector.LongCount(b => (b & 1) == 0);
        }
    }

    private static List<double> Fill(PagedKvStorage storage, int seed)
    {
        var random = new Random(seed);
        for (var layer = 0; layer < storage.NumLayers; layer++)
        {
            switch (storage.ElementType)
            {
                case KvCacheType.F32:
                    FillWith(storage.LayerKeys(layer), random, v => (float)v);
                    FillWith(storage.LayerValues(layer), random, v => (float)v);
                    break;
                case KvCacheType.F16:
                    FillWith(storage.LayerKeysF16(layer), random, v => (Half)v);
                    FillWith(storage.LayerValuesF16(layer), random, v => (Half)v);
                    break;
                default:
                    FillWith(storage.LayerKeysBF16(layer), random, v => (ushort)(v * 1000));
                    FillWith(storage.LayerValuesBF16(layer), random, v => (ushort)(v * 1000));
                    break;
            }
        }

        return Snapshot(storage);
    }

    private static void FillWith<T>(Span<T> span, Random random, Func<double, T> make)
    {
        for (var i = 0; i < span.Length; i++)
        {
            span[i] = make(random.NextDouble() * 60);
        }
    }

    private static List<double> Snapshot(PagedKvStorage storage)
    {
        var all = new List<double>();
        for (var layer = 0; layer < storage.NumLayers; layer++)
        {
            switch (storage.ElementType)
            {
                case KvCacheType.F32:
                    foreach (var v in storage.LayerKeys(layer)) { all.Add(v); }
                    foreach (var v in storage.LayerValues(layer)) { all.Add(v); }
                    break;
                case KvCacheType.F16:
                    foreach (var v in storage.LayerKeysF16(layer)) { all.Add((double)v); }
                    foreach (var v in storage.LayerValuesF16(layer)) { all.Add((double)v); }
                    break;
                default:
                    foreach (var v in storage.LayerKeysBF16(layer)) { all.Add(v); }
                    foreach (var v in storage.LayerValuesBF16(layer)) { all.Add(v); }
                    break;
            }
        }

        return all;
    }

    [LibraryImport("libc", EntryPoint = "mincore")]
    private static partial int Mincore(void* address, nuint length, byte* vector);
}

/// <summary>Serialises the tests that flip <see cref="PagePrefault.UseMadvise"/>.</summary>
[CollectionDefinition(nameof(PagePrefaultSwitch), DisableParallelization = true)]
public sealed class PagePrefaultSwitch;
