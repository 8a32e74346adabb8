using System.Globalization;
using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>
/// A KV pool's slabs and a single sequence's contiguous cache are advised for transparent huge pages on Linux: the kernel marks the mapping that holds a
/// slab's interior eligible (<c>THPeligible: 1</c> in /proc/self/smaps), which with the common "madvise" mode it
/// is only after the advice. Whether the kernel then finds free 2 MiB pages is up to it, so that is not asserted.
/// </summary>
public sealed unsafe class HugePageAdviceTests
{
    [Fact]
    public void A_large_slab_lies_in_a_mapping_eligible_for_huge_pages()
    {
        RequireTransparentHugePages();

        // 16 MiB per slab: several whole 2 MiB pages inside whatever alignment the array gets
        var storage = new PagedKvStorage(numLayers: 1, numBlocks: 1024, blockSize: 16, kvDim: 256);
        AssertEligible(storage.LayerKeys(0));
        AssertEligible(storage.LayerValues(0));
        GC.KeepAlive(storage);
    }

    [Fact]
    public void A_long_sequence_cache_lies_in_a_mapping_eligible_for_huge_pages()
    {
        RequireTransparentHugePages();
        var cache = new ContiguousKvCache(numLayers: 2, capacityTokens: 8192, kvDim: 256); // 16 MiB each for K and V
        AssertEligible(cache.LayerKeys(1));
        AssertEligible(cache.LayerValues(0));
        GC.KeepAlive(cache);
    }

    private static void RequireTransparentHugePages()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/sys/kernel/mm/transparent_hugepage/enabled"))
        {
            Assert.Skip("transparent huge pages are a Linux feature this machine does not report");
        }

        var mode = File.ReadAllText("/sys/kernel/mm/transparent_hugepage/enabled");
        if (mode.Contains("[never]", StringComparison.Ordinal))
        {
            Assert.Skip($"transparent huge pages are off on this machine ({mode.Trim()})");
        }

        Assert.True(HugePageAdvice.Enabled, "RAWINFER_KV_HUGEPAGES=0 is set for this test run");
    }

    /// <summary>Touches <paramref name="floats"/> (at least 6 MiB) and checks a whole 2 MiB page inside it is in an eligible mapping.</summary>
    private static void AssertEligible(Span<float> floats)
    {
        floats.Fill(1f);
        fixed (float* p = floats)
        {
            var probe = (((long)p + (4L << 20)) & ~((2L << 20) - 1)) + 4096;
            Assert.True(probe + 4096 < (long)(p + floats.Length), "the span is too short for the probe");
            Assert.Equal(1, ThpEligible(probe));
        }
    }

    /// <summary>The THPeligible value of the /proc/self/smaps mapping that contains <paramref name="address"/>.</summary>
    private static int ThpEligible(long address)
    {
        var inMapping = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            var dash = line.IndexOf('-', StringComparison.Ordinal);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && IsHex(line.AsSpan(0, dash)))
            {
                var start = long.Parse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                var end = long.Parse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                inMapping = address >= start && address < end;
            }
            else if (inMapping && line.StartsWith("THPeligible:", StringComparison.Ordinal))
            {
                return int.Parse(line.AsSpan("THPeligible:".Length).Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"no mapping with a THPeligible line holds 0x{address:x}");
    }

    private static bool IsHex(ReadOnlySpan<char> text)
    {
        foreach (var c in text)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return text.Length > 0;
    }
}
