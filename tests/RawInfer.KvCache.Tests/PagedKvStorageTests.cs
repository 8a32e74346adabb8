using System.Runtime.CompilerServices;
using Xunit;

namespace RawInfer.KvCache.Tests;

public class PagedKvStorageTests
{
    [Fact]
    public void Slots_address_rows_of_each_layer_and_CopyBlock_copies_every_layer()
    {
        var storage = new PagedKvStorage(numLayers: 3, numBlocks: 4, blockSize: 2, kvDim: 5);
        Assert.Equal(2L * 3 * 4 * 2 * 5 * 4, storage.SizeBytes);
        for (var layer = 0; layer < 3; layer++)
        {
            for (var slot = 0; slot < 8; slot++)
            {
                storage.Key(layer, slot).Fill((layer * 100) + slot);
                storage.Value(layer, slot).Fill(-((layer * 100) + slot));
            }
        }

        Assert.Equal(203f, storage.LayerKeys(2)[(3 * 5) + 4]);
        storage.CopyBlock(sourceBlock: 1, destinationBlock: 3); // slots 2,3 → 6,7
        for (var layer = 0; layer < 3; layer++)
        {
            Assert.Equal((layer * 100) + 2f, storage.Key(layer, 6)[0]);
            Assert.Equal(-((layer * 100) + 3f), storage.Value(layer, 7)[4]);
            Assert.Equal((layer * 100) + 5f, storage.Key(layer, 5)[0]); // untouched
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => storage.Key(0, 8).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => storage.CopyBlock(4, 0));
    }

    [Fact]
    public void A_16_bit_pool_is_half_the_bytes_copies_blocks_and_refuses_access_as_another_type()
    {
        var storage = new PagedKvStorage(numLayers: 2, numBlocks: 4, blockSize: 2, kvDim: 3, KvCacheType.F16);
        Assert.Equal(KvCacheType.F16, storage.ElementType);
        Assert.Equal(2L * 2 * 4 * 2 * 3 * 2, storage.SizeBytes);
        for (var layer = 0; layer < 2; layer++)
        {
            for (var slot = 0; slot < 8; slot++)
            {
                storage.KeyF16(layer, slot).Fill((Half)((layer * 10) + slot));
                storage.ValueF16(layer, slot).Fill((Half)(-((layer * 10) + slot)));
            }
        }

        storage.CopyBlock(sourceBlock: 0, destinationBlock: 2); // slots 0,1 → 4,5
        Assert.Equal((Half)11, storage.KeyF16(1, 5)[2]);
        Assert.Equal((Half)(-10), storage.ValueF16(1, 4)[0]);
        Assert.Equal((Half)16, storage.LayerKeysF16(1)[(6 * 3) + 1]); // untouched
        var error = Assert.Throws<InvalidOperationException>(() => storage.LayerKeys(0).Length);
        Assert.Contains("holds f16, not f32", error.Message);
        Assert.Throws<InvalidOperationException>(() => new PagedKvStorage(1, 1, 1, 1).LayerValuesF16(0).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => storage.KeyF16(0, 8).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => new PagedKvStorage(1, 1, 1, 1, (KvCacheType)7));
        var bf16 = new PagedKvStorage(numLayers: 1, numBlocks: 2, blockSize: 2, kvDim: 3, KvCacheType.BF16);
        Assert.Equal(2L * 1 * 2 * 2 * 3 * 2, bf16.SizeBytes);
        bf16.LayerValuesBF16(0)[..6].Fill(0x3F80);
        bf16.CopyBlock(0, 1);
        Assert.Equal(0x3F80, bf16.LayerValuesBF16(0)[11]);
        Assert.Contains("holds bf16, not f16", Assert.Throws<InvalidOperationException>(() => bf16.LayerKeysF16(0).Length).Message);
        var manager = new BlockManager(numBlocks: 4, blockSize: 2);
        manager.Allocate(1, [1, 2, 3]);
        Assert.Contains("holds f16", Assert.Throws<ArgumentException>(() => new PagedSequenceKvCache(manager, storage, 1)).Message);
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    [InlineData(KvCacheType.BF16)]
    public unsafe void Every_slab_starts_on_a_cache_line_and_holds_exactly_the_pool(KvCacheType type)
    {
        // several pools, so that the heap's own placement of the arrays varies
        for (var pool = 0; pool < 4; pool++)
        {
            var storage = new PagedKvStorage(numLayers: 3, numBlocks: 3 + pool, blockSize: 2, kvDim: 5, type);
            var elements = (3 + pool) * 2 * 5;
            for (var layer = 0; layer < 3; layer++)
            {
                var (keys, values, length) = type switch
                {
                    KvCacheType.F32 => ((nint)Unsafe.AsPointer(ref storage.LayerKeys(layer)[0]), (nint)Unsafe.AsPointer(ref storage.LayerValues(layer)[0]), storage.LayerKeys(layer).Length),
                    KvCacheType.F16 => ((nint)Unsafe.AsPointer(ref storage.LayerKeysF16(layer)[0]), (nint)Unsafe.AsPointer(ref storage.LayerValuesF16(layer)[0]), storage.LayerKeysF16(layer).Length),
                    _ => ((nint)Unsafe.AsPointer(ref storage.LayerKeysBF16(layer)[0]), (nint)Unsafe.AsPointer(ref storage.LayerValuesBF16(layer)[0]), storage.LayerKeysBF16(layer).Length),
                };
                Assert.Equal(0, keys % 64);
                Assert.Equal(0, values % 64);
                Assert.Equal(elements, length);
            }
        }
    }

    [Theory]
    [InlineData("f32", KvCacheType.F32, 4)]
    [InlineData("F16", KvCacheType.F16, 2)]
    [InlineData("bf16", KvCacheType.BF16, 2)]
    public void Type_names_parse_and_size(string text, KvCacheType type, int bytes)
    {
        Assert.True(KvCacheTypes.TryParse(text, out var parsed));
        Assert.Equal(type, parsed);
        Assert.Equal(bytes, type.ElementBytes());
        Assert.Equal(text.ToLowerInvariant(), type.Name());
        Assert.False(KvCacheTypes.TryParse("q8_0", out _));
    }

    [Fact]
    public void Sequence_view_maps_positions_through_the_block_table_and_survives_copy_on_write()
    {
        const int layers = 2, kvDim = 3;
        var manager = new BlockManager(numBlocks: 8, blockSize: 4);
        var storage = new PagedKvStorage(layers, 8, 4, kvDim);
        manager.Allocate(1, [10, 11, 12, 13, 14, 15]);
        var view = new PagedSequenceKvCache(manager, storage, 1);
        Assert.Equal(6, view.CapacityTokens);
        for (var pos = 0; pos < 6; pos++)
        {
            for (var layer = 0; layer < layers; layer++)
            {
                view.Key(layer, pos).Fill((layer * 10) + pos);
                view.Value(layer, pos).Fill(-((layer * 10) + pos));
            }
        }

        Assert.Equal(15f, storage.Key(1, manager.Slot(1, 5))[2]);

        manager.Fork(1, 2);
        var copy = manager.Append(2, [99]);
        storage.Apply(copy);
        var child = new PagedSequenceKvCache(manager, storage, 2);
        child.Key(0, 6).Fill(42);
        Assert.Equal(7, child.CapacityTokens);
        for (var pos = 0; pos < 6; pos++)
        {
            // Both sequences read the whole shared history; the child's write did not leak into the parent.
            Assert.Equal(10f + pos, view.Key(1, pos)[0]);
            Assert.Equal(10f + pos, child.Key(1, pos)[0]);
            Assert.Equal(-(10f + pos), child.Value(1, pos)[1]);
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => view.Key(0, 6).Length);
        manager.Free(1);
        Assert.Throws<UnknownSequenceException>(() => view.Key(0, 0).Length);
        Assert.Throws<ArgumentException>(() => new PagedSequenceKvCache(manager, new PagedKvStorage(1, 9, 4, 1), 2));
    }
}
