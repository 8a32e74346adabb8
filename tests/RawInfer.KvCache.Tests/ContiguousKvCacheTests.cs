using RawInfer.KvCache;
using Xunit;

namespace RawInfer.KvCache.Tests;

public class ContiguousKvCacheTests
{
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
