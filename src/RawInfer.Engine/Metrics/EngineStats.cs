namespace RawInfer.Engine;

/// <summary>A snapshot of the engine's state and counters since it started.</summary>
public sealed record EngineStats(
    int RunningRequests,
    int WaitingRequests,
    int KvBlocksUsed,
    int KvBlocksTotal,
    double PrefixCacheHitRate,
    long Preemptions,
    long RequestsFinished,
    long PromptTokens,
    long GeneratedTokens,
    long Steps,
    TimeSpan Uptime)
{
    /// <summary>Generated tokens per second of uptime.</summary>
    public double GeneratedTokensPerSecond => Uptime > TimeSpan.Zero ? GeneratedTokens / Uptime.TotalSeconds : 0;
}
