using RawInfer.Gpu.Runner;
using RawInfer.Models;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

public sealed class KvBlockPlannerTests
{
    [Fact]
    public void OneBModelOnAnH100SizedFreePool()
    {
        // TinyLlama 1.1B: 22 layers × kvDim 256 × (K and V) × 2 bytes = 22,528 bytes per token; 16-token blocks.
        var config = ModelShapes.Parse("1b");
        var perToken = config.KvBytesPerToken(2);
        Assert.Equal(22_528, perToken);
        long free = 70L << 30;
        var blocks = KvBlockPlanner.PlanBlocks(free, perToken, 16, 0.9, 256L << 20);
        var expected = (long)Math.Floor(((70L << 30) - (256L << 20)) * 0.9) / (22_528L * 16);
        Assert.Equal(expected, blocks);

        // the plan fits the budget and one block more would not
        var budget = ((70L << 30) - (256L << 20)) * 0.9;
        Assert.True(blocks * 22_528L * 16 <= budget);
        Assert.True((blocks + 1) * 22_528L * 16 > budget);
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(100L << 20)]
    [InlineData(256L << 20)]
    public void NothingLeftAfterTheHeadroomGivesNoBlocks(long free)
    {
        Assert.Equal(0, KvBlockPlanner.PlanBlocks(free, 1024, 16, 1.0, 256L << 20));
    }

    [Fact]
    public void FractionScalesTheBudget()
    {
        var full = KvBlockPlanner.PlanBlocks(1L << 30, 4096, 16, 1.0, 0);
        var half = KvBlockPlanner.PlanBlocks(1L << 30, 4096, 16, 0.5, 0);
        Assert.Equal((1L << 30) / (4096 * 16), full);
        Assert.Equal(full / 2, half);
    }

    [Fact]
    public void HugePoolsAreCappedAtIntMax()
    {
        Assert.Equal(int.MaxValue, KvBlockPlanner.PlanBlocks(long.MaxValue, 1, 1, 1.0, 0));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-0.1)]
    [InlineData(1.01)]
    [InlineData(double.NaN)]
    public void FractionOutsideZeroOneIsRefused(double fraction)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => KvBlockPlanner.PlanBlocks(1L << 30, 4096, 16, fraction, 0));
        Assert.Equal("fraction", e.ParamName);
    }
}
