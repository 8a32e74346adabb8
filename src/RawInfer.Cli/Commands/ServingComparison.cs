using System.Globalization;
using RawInfer.Engine;

namespace RawInfer.Cli.Commands;

/// <summary>One serving configuration's figures (medians over the rounds): arrival rate, batching mode and size.</summary>
/// <param name="Rate">Poisson arrival rate, requests/s.</param>
/// <param name="Mode">Batching mode.</param>
/// <param name="MaxRunning">Running-sequence limit (the batch size of the static modes).</param>
/// <param name="OfferedTokensPerSecond">Output tokens/s the arrivals ask for: the rate times the mean output length.</param>
/// <param name="TokensPerSecond">Output tokens per second over the run.</param>
/// <param name="LatencyP99Ms">p99 of arrival-to-last-token latency.</param>
/// <param name="TtftP99Ms">p99 time to first token.</param>
internal readonly record struct ServingPoint(
    double Rate, BatchingMode Mode, int MaxRunning, double OfferedTokensPerSecond, double TokensPerSecond, double LatencyP99Ms, double TtftP99Ms)
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
/// <para>
/// Only stable runs are compared: those offered less than their configuration's capacity, taken as the most
/// output tokens/s any of its runs delivered. Past capacity a queue grows without bound, but a run of a fixed
/// number of requests ends anyway, so its p99 latency measures the length of the run, not the configuration
/// (continuous batching with fewer requests than running slots never even queues: its steps just slow down).
/// A run always delivers somewhat less than it is offered (the last requests drain after the last arrival), so
/// the top rate of a configuration that never saturated is left out as well: the rule errs on the side of
/// comparing fewer runs.
/// </para>
/// <para>
/// Each pair is given twice: as the throughput the two runs delivered, and as the load they carried (offered output
/// tokens/s, the arrival rate times the mean output). A stable server finishes, over time, what it is offered, so
/// the load is its throughput in steady state; a run of a fixed number of requests delivers less, by the tokens of
/// its ramp-up and of the drain after the last arrival, over a span that shrinks as the rate rises. The delivered
/// ratio therefore leans against the faster run (continuous, paired at the higher rate); the load ratio is how the
/// vLLM paper compares systems, by the request rate each sustains at a given latency.
/// </para>
/// </summary>
internal static class ServingComparison
{
    /// <summary>Most output tokens/s any run of the point's configuration (mode and size) delivered.</summary>
    public static double Capacity(IReadOnlyList<ServingPoint> points, ServingPoint point) =>
        points.Where(p => p.Mode == point.Mode && p.MaxRunning == point.MaxRunning).Max(p => p.TokensPerSecond);

    /// <summary>True when the point was offered less than its configuration's capacity.</summary>
    public static bool IsStable(IReadOnlyList<ServingPoint> points, ServingPoint point) =>
        point.OfferedTokensPerSecond < Capacity(points, point);

    /// <summary>
    /// For each stable static or padded static point, the stable continuous point with the highest throughput
    /// whose p99 latency is at most the static point's (null when none qualifies), in the order of <paramref name="points"/>.
    /// </summary>
    public static List<(ServingPoint Static, ServingPoint? Continuous)> AtEqualLatency(IReadOnlyList<ServingPoint> points)
    {
        var continuous = points.Where(p => p.Mode == BatchingMode.Continuous && IsStable(points, p)).ToList();
        var pairs = new List<(ServingPoint, ServingPoint?)>();
        foreach (var s in points.Where(p => p.Mode != BatchingMode.Continuous && IsStable(points, p)))
        {
            var qualifying = continuous.Where(c => c.LatencyP99Ms <= s.LatencyP99Ms).ToList();
            pairs.Add((s, qualifying.Count == 0 ? null : qualifying.MaxBy(c => c.TokensPerSecond)));
        }

        return pairs;
    }

    /// <summary>
    /// The table of <see cref="AtEqualLatency"/>: one row per stable static point, its ratio where a continuous point
    /// qualifies, after a line naming each configuration's capacity and the runs left out as past it.
    /// </summary>
    public static async Task WriteAsync(IReadOnlyList<ServingPoint> points, TextWriter output)
    {
        await output.WriteLineAsync().ConfigureAwait(false);
        await output.WriteLineAsync("Throughput at equal or better p99 latency (each static run against the fastest continuous run whose p99 latency is no higher; stable runs only):").ConfigureAwait(false);
        foreach (var config in points.GroupBy(p => (p.Mode, p.MaxRunning)))
        {
            var capacity = Capacity(points, config.First());
            var past = config.Where(p => !IsStable(points, p)).Select(p => p.Rate.ToString("0.###", CultureInfo.InvariantCulture)).ToList();
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{config.Key.Mode} ({config.Key.MaxRunning}): capacity {capacity:F1} tokens/s (its best run); offered at least that, left out: {(past.Count == 0 ? "none" : string.Join(", ", past) + " req/s")}")).ConfigureAwait(false);
        }

        await output.WriteLineAsync("| static run | tokens/s | latency p99 ms | continuous run | tokens/s | latency p99 ms | continuous / static, delivered | continuous / static, load carried |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|---|---|---|---|---|---|").ConfigureAwait(false);
        foreach (var (s, c) in AtEqualLatency(points))
        {
            var right = c is { } best
                ? string.Create(CultureInfo.InvariantCulture,
                    $"{best.Label} | {best.TokensPerSecond:F1} | {best.LatencyP99Ms:F0} | {best.TokensPerSecond / s.TokensPerSecond:F2}x | {best.OfferedTokensPerSecond / s.OfferedTokensPerSecond:F2}x")
                : "none measured with a p99 latency this low | | | |";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"| {s.Label} | {s.TokensPerSecond:F1} | {s.LatencyP99Ms:F0} | {right} |")).ConfigureAwait(false);
        }
    }
}
