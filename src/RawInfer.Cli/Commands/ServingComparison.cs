using System.Globalization;
using RawInfer.Engine;

namespace RawInfer.Cli.Commands;

/// <summary>One serving configuration's figures (medians over the rounds): arrival rate, batching mode and size.</summary>
/// <param name="Rate">Poisson arrival rate, requests/s.</param>
/// <param name="Mode">Batching mode.</param>
/// <param name="MaxRunning">Running-sequence limit (the batch size of the static modes).</param>
/// <param name="TokensPerSecond">Output tokens per second over the run.</param>
/// <param name="LatencyP99Ms">p99 of arrival-to-last-token latency.</param>
/// <param name="TtftP99Ms">p99 time to first token.</param>
internal readonly record struct ServingPoint(
    double Rate, BatchingMode Mode, int MaxRunning, double TokensPerSecond, double LatencyP99Ms, double TtftP99Ms)
{
    /// <summary>"Continuous (100) at 2 req/s" and the like.</summary>
    public string Label => string.Create(CultureInfo.InvariantCulture, $"{Mode} ({MaxRunning}) at {Rate:0.###} req/s");
}

/// <summary>
/// Throughput at equal or better latency, the comparison of the Orca paper (and of serving benchmarks that sweep
/// the request rate): a static run's throughput against the most a continuous run delivered without a worse p99
/// latency. Offering both modes the same load and comparing their throughput says how much work each finishes at
/// saturation; it does not say how much load each can take while keeping its latency, which is what a user who
/// must answer within a bound sees. Static batching makes an arrival wait for the whole running batch, so its
/// latency is high at every load; continuous batching reaches the same latency only at a higher rate.
/// </summary>
internal static class ServingComparison
{
    /// <summary>
    /// For each static or padded static point, the continuous point with the highest throughput whose p99 latency
    /// is at most the static point's (null when no continuous point qualifies), in the order of <paramref name="points"/>.
    /// </summary>
    public static List<(ServingPoint Static, ServingPoint? Continuous)> AtEqualLatency(IReadOnlyList<ServingPoint> points)
    {
        var continuous = points.Where(p => p.Mode == BatchingMode.Continuous).ToList();
        var pairs = new List<(ServingPoint, ServingPoint?)>();
        foreach (var s in points.Where(p => p.Mode != BatchingMode.Continuous))
        {
            var qualifying = continuous.Where(c => c.LatencyP99Ms <= s.LatencyP99Ms).ToList();
            pairs.Add((s, qualifying.Count == 0 ? null : qualifying.MaxBy(c => c.TokensPerSecond)));
        }

        return pairs;
    }

    /// <summary>The table of <see cref="AtEqualLatency"/>: one row per static point, its ratio where a continuous point qualifies.</summary>
    public static async Task WriteAsync(IReadOnlyList<ServingPoint> points, TextWriter output)
    {
        await output.WriteLineAsync().ConfigureAwait(false);
        await output.WriteLineAsync("Throughput at equal or better p99 latency (each static run against the fastest continuous run whose p99 latency is no higher):").ConfigureAwait(false);
        await output.WriteLineAsync("| static run | tokens/s | latency p99 ms | continuous run | tokens/s | latency p99 ms | continuous / static |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|---|---|---|---|---|").ConfigureAwait(false);
        foreach (var (s, c) in AtEqualLatency(points))
        {
            var right = c is { } best
                ? string.Create(CultureInfo.InvariantCulture, $"{best.Label} | {best.TokensPerSecond:F1} | {best.LatencyP99Ms:F0} | {best.TokensPerSecond / s.TokensPerSecond:F2}x")
                : "none measured with a p99 latency this low | | |";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {s.TokensPerSecond:F1} | {s.LatencyP99Ms:F0} | {right} |")).ConfigureAwait(false);
        }
    }
}
