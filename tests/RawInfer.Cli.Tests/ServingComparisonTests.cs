using RawInfer.Cli.Commands;
using RawInfer.Engine;

namespace RawInfer.Cli.Tests;

/// <summary>The equal-latency pairing of <c>rawinfer bench --rate A,B,…</c>, on hand-made points.</summary>
public sealed class ServingComparisonTests
{
    [Fact]
    public void Each_static_point_gets_the_fastest_continuous_point_that_is_not_slower_at_p99()
    {
        ServingPoint[] points =
        [
            new(0.5, BatchingMode.Continuous, 100, 60, 9_000, 100),
            new(1, BatchingMode.Continuous, 100, 120, 12_000, 100),
            new(2, BatchingMode.Continuous, 100, 230, 20_000, 100),
            new(4, BatchingMode.Continuous, 100, 300, 60_000, 100),
            new(0.5, BatchingMode.Static, 100, 58, 20_000, 100),      // equal p99: the 2 req/s run qualifies
            new(4, BatchingMode.StaticPadded, 100, 180, 59_999, 100), // just under the 4 req/s run: 2 req/s is the best
            new(1, BatchingMode.Static, 16, 110, 8_000, 100),         // lower than every continuous p99
        ];

        var pairs = ServingComparison.AtEqualLatency(points);

        Assert.Equal(3, pairs.Count);
        Assert.Equal((points[4], points[2]), (pairs[0].Static, pairs[0].Continuous!.Value));
        Assert.Equal((points[5], points[2]), (pairs[1].Static, pairs[1].Continuous!.Value));
        Assert.Equal(points[6], pairs[2].Static);
        Assert.Null(pairs[2].Continuous);
    }

    [Fact]
    public async Task The_table_prints_the_pair_and_its_ratio_or_says_none_qualified()
    {
        ServingPoint[] points =
        [
            new(2, BatchingMode.Continuous, 100, 230, 20_000, 100),
            new(0.5, BatchingMode.Static, 100, 57.5, 25_000, 100),
            new(4, BatchingMode.Static, 100, 250, 10_000, 100),
        ];
        using var output = new StringWriter();

        await ServingComparison.WriteAsync(points, output);

        var text = output.ToString();
        Assert.Contains("| Static (100) at 0.5 req/s | 57.5 | 25000 | Continuous (100) at 2 req/s | 230.0 | 20000 | 4.00x |", text, StringComparison.Ordinal);
        Assert.Contains("| Static (100) at 4 req/s | 250.0 | 10000 | none measured with a p99 latency this low | | | |", text, StringComparison.Ordinal);
    }
}
