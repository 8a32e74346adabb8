namespace RawInfer.Protocol;

/// <summary>STATS reply: engine and server load. The detailed part is zero unless the request asked (admin keys).</summary>
public sealed record StatsFrame : FramePayload
{
    public int RunningRequests { get; init; }

    public int WaitingRequests { get; init; }

    public int KvBlocksUsed { get; init; }

    public int KvBlocksTotal { get; init; }

    public long RequestsFinished { get; init; }

    public long PromptTokens { get; init; }

    public long GeneratedTokens { get; init; }

    public TimeSpan Uptime { get; init; }

    public int Connections { get; init; }

    public int ConnectionInFlight { get; init; }

    // detailed (admin) part
    public long Preemptions { get; init; }

    public double PrefixCacheHitRate { get; init; }

    public long EngineSteps { get; init; }

    public int ServerInFlight { get; init; }

    public override FrameType Type => FrameType.Stats;

    internal override int MeasurePayload() => (4 * 4) + (4 * 8) + (2 * 4) + 8 + 8 + 8 + 4;

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.I32(RunningRequests);
        writer.I32(WaitingRequests);
        writer.I32(KvBlocksUsed);
        writer.I32(KvBlocksTotal);
        writer.I64(RequestsFinished);
        writer.I64(PromptTokens);
        writer.I64(GeneratedTokens);
        writer.I64((long)Uptime.TotalMilliseconds);
        writer.I32(Connections);
        writer.I32(ConnectionInFlight);
        writer.I64(Preemptions);
        writer.F64(PrefixCacheHitRate);
        writer.I64(EngineSteps);
        writer.I32(ServerInFlight);
    }

    internal static StatsFrame Read(ref PayloadReader reader) => new()
    {
        RunningRequests = reader.I32("running"), WaitingRequests = reader.I32("waiting"),
        KvBlocksUsed = reader.I32("kv blocks used"), KvBlocksTotal = reader.I32("kv blocks total"),
        RequestsFinished = reader.I64("requests finished"), PromptTokens = reader.I64("prompt tokens"),
        GeneratedTokens = reader.I64("generated tokens"),
        Uptime = TimeSpan.FromMilliseconds(Math.Clamp(reader.I64("uptime ms"), 0, (long)TimeSpan.MaxValue.TotalMilliseconds - 1)),
        Connections = reader.I32("connections"), ConnectionInFlight = reader.I32("connection in-flight"),
        Preemptions = reader.I64("preemptions"), PrefixCacheHitRate = reader.F64("prefix hit rate"),
        EngineSteps = reader.I64("engine steps"), ServerInFlight = reader.I32("server in-flight"),
    };
}
