using System.Runtime.CompilerServices;
using RawInfer.KvCache;
using Xunit;

namespace RawInfer.KvCache.Tests;

public class ContiguousKvCacheTests
{
    [Fact]
    public unsafe void Each_layer_starts_on_a_cache_line_when_its_rows_are_whole_lines()
    {
        // several caches, so that the heap's placement of the arrays varies; kvDim 16 floats = one line per row
        for (var capacity = 1; capacity < 9; capacity++)
        {
            var cache = new ContiguousKvCache(numLayers: 2, capacityTokens: capacity, kvDim: 16);
            for (var layer = 0; layer < 2; layer++)
            {
                Assert.Equal(0, (nint)Unsafe.AsPointer(ref cache.LayerKeys(layer)[0]) % 64);
                Assert.Equal(0, (nint)Unsafe.AsPointer(ref cache.LayerValues(layer)[0]) % 64);
                Assert.Equal(capacity * 16, cache.LayerKeys(layer).Length);
            }

            cache.Value(1, capacity - 1).Fill(1f); // the last row lies inside the array
        }
    }

    [Fact]
    public void Writes_read_back_per_layer_and_position()
    {
        var cache = new ContiguousKvCache(numLayers: 3, capacityTokens: 5, kvDim: 4);
        for (var layer = 0; layer < 3; layer++)
        {
            for (var pos = 0; pos < 5; pos++)
            {
                cache.Key(layer, pos).Fill((layer * 10) + pos);
                cache.Value(layer, pos).Fill(-((layer * 10) + pos));
            }
        }

        Assert.Equal(21f, cache.Key(2, 1)[3]);
        Assert.Equal(-14f, cache.Value(1, 4)[0]);
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Key(3, 0).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Value(0, 5).Length);
    }
}
