using System.Globalization;
using RawInfer.Engine;

namespace RawInfer.Cli.Commands;

/// <summary>Throughput and latency percentiles over a set of finished requests (batch and bench summaries).</summary>
internal sealed record EngineRunSummary(
    int Requests, long GeneratedTokens, TimeSpan Wall, double TtftP50Ms, double TtftP99Ms, double TpotP50Ms, double TpotP99Ms,
    double LatencyP50Ms, double LatencyP99Ms)
{
    public double RequestsPerSecond => Requests / Wall.TotalSeconds;

    public double TokensPerSecond => GeneratedTokens / Wall.TotalSeconds;

    public static EngineRunSummary From(IReadOnlyList<GenerationResult> results, TimeSpan wall)
    {
        var ttft = new List<double>();
        var tpot = new List<double>();
        var latency = new List<double>(); // whole request, arrival to last token
        long tokens = 0;
        foreach (var r in results)
        {
            tokens += r.Usage.CompletionTokens;
            latency.Add(r.Usage.TotalTime.TotalMilliseconds);
            if (r.Usage.TimeToFirstToken is { } first)
            {
                ttft.Add(first.TotalMilliseconds);
                if (r.Usage.CompletionTokens > 1)
                {
                    tpot.Add((r.Usage.TotalTime - first).TotalMilliseconds / (r.Usage.CompletionTokens - 1));
                }
            }
        }

        return new EngineRunSummary(results.Count, tokens, wall,
            Percentile(ttft, 0.50), Percentile(ttft, 0.99), Percentile(tpot, 0.50), Percentile(tpot, 0.99),
            Percentile(latency, 0.50), Percentile(latency, 0.99));
    }

    /// <summary>Nearest-rank percentile; 0 for an empty set.</summary>
    public static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        values.Sort();
        var rank = (int)Math.Ceiling(p * values.Count) - 1;
        return values[Math.Clamp(rank, 0, values.Count - 1)];
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{Requests} requests in {Wall.TotalSeconds:F1} s: {RequestsPerSecond:F2} requests/s, {TokensPerSecond:F1} tokens/s; " +
        $"TTFT p50 {TtftP50Ms:F0} ms p99 {TtftP99Ms:F0} ms; TPOT p50 {TpotP50Ms:F1} ms p99 {TpotP99Ms:F1} ms; " +
        $"latency p50 {LatencyP50Ms:F0} ms p99 {LatencyP99Ms:F0} ms");
}
