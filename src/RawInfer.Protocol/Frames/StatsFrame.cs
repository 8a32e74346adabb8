namespace RawInfer.Protocol;

/// <summary>A key's suspension in a STATS reply: which key, until when, and why (the abuse signals that caused it).</summary>
public sealed record SuspensionEntry(string KeyId, DateTimeOffset Until, string Reason)
{
    internal const int MinWireBytes = 4 + 8 + 4;

    /// <summary>Bytes this entry takes in a STATS payload.</summary>
    public int WireBytes => PayloadWriter.StringSize(KeyId) + 8 + PayloadWriter.StringSize(Reason);
}

/// <summary>
/// STATS reply: engine and server load. The detailed part is zero unless the request asked (admin keys).
/// <see cref="Suspensions"/>: every suspension in force for a detailed request, else only the asking key's own.
/// </summary>
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

    /// <summary>Key suspensions in force (all for a detailed request; else the asking key's own, if any).</summary>
    public IReadOnlyList<SuspensionEntry> Suspensions { get; init; } = [];

    public override FrameType Type => FrameType.Stats;

    internal override int MeasurePayload()
    {
        var size = (4 * 4) + (4 * 8) + (2 * 4) + 8 + 8 + 8 + 4 + 4;
        foreach (var suspension in Suspensions)
        {
            size += suspension.WireBytes;
        }

        return size;
    }

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
        writer.U32((uint)Suspensions.Count);
        foreach (var suspension in Suspensions)
        {
            writer.String(suspension.KeyId);
            writer.I64(WireTime.ToMicros(suspension.Until));
            writer.String(suspension.Reason);
        }
    }

    internal static StatsFrame Read(ref PayloadReader reader) => ReadCounters(ref reader) with { Suspensions = ReadSuspensions(ref reader) };

    private static SuspensionEntry[] ReadSuspensions(ref PayloadReader reader)
    {
        var count = reader.U32("suspension count");
        reader.CheckCount(count, SuspensionEntry.MinWireBytes, "suspensions");
        var suspensions = new SuspensionEntry[count];
        for (var i = 0; i < suspensions.Length; i++)
        {
            suspensions[i] = new SuspensionEntry(
                reader.String("suspended key id"), WireTime.Read(ref reader, "suspended until"), reader.String("suspension reason"));
        }

        return suspensions;
    }

    private static StatsFrame ReadCounters(ref PayloadReader reader) => new()
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
