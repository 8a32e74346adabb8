using RawInfer.Cli.Commands;
using RawInfer.Engine;

namespace RawInfer.Cli.Tests;

/// <summary>The equal-latency pairing of <c>rawinfer bench --rate A,B,…</c>, on hand-made points.</summary>
public sealed class ServingComparisonTests
{
    // offered tokens/s = rate × 100 (a mean output of 100 tokens)
    private static ServingPoint Point(double rate, BatchingMode mode, int size, double tokensPerSecond, double latencyP99Ms) =>
        new(rate, mode, size, rate * 100, tokensPerSecond, latencyP99Ms, 100);

    [Fact]
    public void Each_stable_static_point_gets_the_fastest_stable_continuous_point_that_is_not_slower_at_p99()
    {
        ServingPoint[] points =
        [
            Point(0.5, BatchingMode.Continuous, 100, 48, 9_000),
            Point(1, BatchingMode.Continuous, 100, 95, 12_000),
            Point(2, BatchingMode.Continuous, 100, 190, 20_000),
            Point(4, BatchingMode.Continuous, 100, 300, 15_000),    // offered 400 ≥ its capacity 300: left out, though its p99 is low
            Point(0.5, BatchingMode.Static, 100, 47, 20_000),       // equal p99: the 2 req/s run qualifies
            Point(1, BatchingMode.StaticPadded, 100, 90, 19_999),   // just under the 2 req/s run: 1 req/s is the best
            Point(0.25, BatchingMode.Static, 16, 24, 8_000),        // lower than every continuous p99
            Point(2, BatchingMode.Static, 16, 150, 30_000),         // offered 200 ≥ capacity 150: left out
            Point(3, BatchingMode.Static, 100, 120, 40_000),        // saturated (the capacity of Static (100)): left out
            Point(3, BatchingMode.StaticPadded, 100, 110, 60_000),  // saturated: left out
        ];

        var pairs = ServingComparison.AtEqualLatency(points);

        Assert.Equal(3, pairs.Count);
        Assert.Equal((points[4], points[2]), (pairs[0].Static, pairs[0].Continuous!.Value));
        Assert.Equal((points[5], points[1]), (pairs[1].Static, pairs[1].Continuous!.Value));
        Assert.Equal(points[6], pairs[2].Static);
        Assert.Null(pairs[2].Continuous);
        Assert.Equal(300, ServingComparison.Capacity(points, points[0]));
        Assert.False(ServingComparison.IsStable(points, points[3]));
        Assert.True(ServingComparison.IsStable(points, points[2]));
        Assert.False(ServingComparison.IsStable(points, points[8]));
    }

    [Fact]
    public async Task The_table_names_capacities_and_left_out_runs_and_prints_each_pair_or_none()
    {
        ServingPoint[] points =
        [
            Point(2, BatchingMode.Continuous, 100, 190, 20_000),
            Point(3, BatchingMode.Continuous, 100, 240, 25_000),
            Point(0.5, BatchingMode.Static, 100, 40, 25_000),       // offered 50: delivered 4.75x, load 4x
            Point(1, BatchingMode.Static, 100, 95, 10_000),
            Point(2, BatchingMode.Static, 100, 120, 40_000),
        ];
        using var output = new StringWriter();

        await ServingComparison.WriteAsync(points, output);

        var text = output.ToString();
        Assert.Contains("Continuous (100): capacity 240.0 tokens/s (its best run); offered at least that, left out: 3 req/s", text, StringComparison.Ordinal);
        Assert.Contains("Static (100): capacity 120.0 tokens/s (its best run); offered at least that, left out: 2 req/s", text, StringComparison.Ordinal);
        Assert.Contains("| Static (100) at 0.5 req/s | 40.0 | 25000 | Continuous (100) at 2 req/s | 190.0 | 20000 | 4.75x | 4.00x |", text, StringComparison.Ordinal);
        Assert.Contains("| Static (100) at 1 req/s | 95.0 | 10000 | none measured with a p99 latency this low | | | | |", text, StringComparison.Ordinal);
        Assert.DoesNotContain("| Static (100) at 2 req/s |", text, StringComparison.Ordinal);
    }
}
