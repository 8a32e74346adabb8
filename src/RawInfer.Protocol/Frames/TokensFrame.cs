namespace RawInfer.Protocol;

/// <summary>Log-probability of one token on the wire.</summary>
public readonly record struct TokenLogprobEntry(int TokenId, float Logprob);

/// <summary>Log-probabilities at one generated position: the chosen token's, then the most likely tokens'.</summary>
public sealed record PositionLogprobEntry(TokenLogprobEntry Chosen, IReadOnlyList<TokenLogprobEntry> Top);

/// <summary>TOKENS: generated token ids and their text (whole characters), optionally with log-probabilities.</summary>
public sealed record TokensFrame(IReadOnlyList<int> TokenIds, string Text, IReadOnlyList<PositionLogprobEntry>? Logprobs = null)
    : FramePayload
{
    /// <summary>Header flag: log-probabilities follow the text.</summary>
    public const byte HasLogprobs = 0x01;

    public override FrameType Type => FrameType.Tokens;

    internal override byte HeaderFlags => Logprobs is null ? (byte)0 : HasLogprobs;

    internal override int MeasurePayload()
    {
        var size = PayloadWriter.IdsSize(TokenIds) + PayloadWriter.StringSize(Text);
        if (Logprobs is not null)
        {
            size += 4;
            foreach (var position in Logprobs)
            {
                size += 8 + 1 + (8 * Math.Min(position.Top.Count, byte.MaxValue));
            }
        }

        return size;
    }

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.Ids(TokenIds);
        writer.String(Text);
        if (Logprobs is null)
        {
            return;
        }

        writer.U32((uint)Logprobs.Count);
        foreach (var position in Logprobs)
        {
            writer.I32(position.Chosen.TokenId);
            writer.F32(position.Chosen.Logprob);
            var count = Math.Min(position.Top.Count, byte.MaxValue);
            writer.U8((byte)count);
            for (var i = 0; i < count; i++)
            {
                writer.I32(position.Top[i].TokenId);
                writer.F32(position.Top[i].Logprob);
            }
        }
    }

    internal static TokensFrame Read(ref PayloadReader reader, byte headerFlags)
    {
        var ids = reader.Ids("token ids");
        var text = reader.String("text");
        if ((headerFlags & HasLogprobs) == 0)
        {
            return new TokensFrame(ids, text);
        }

        var positions = reader.U32("logprob positions");
        reader.CheckCount(positions, 9, "logprob positions");
        var list = new PositionLogprobEntry[positions];
        for (var p = 0; p < list.Length; p++)
        {
            var chosen = new TokenLogprobEntry(reader.I32("chosen id"), reader.F32("chosen logprob"));
            var count = reader.U8("top count");
            reader.CheckCount(count, 8, "top logprobs");
            var top = new TokenLogprobEntry[count];
            for (var i = 0; i < top.Length; i++)
            {
                top[i] = new TokenLogprobEntry(reader.I32("top id"), reader.F32("top logprob"));
            }

            list[p] = new PositionLogprobEntry(chosen, top);
        }

        return new TokensFrame(ids, text, list);
    }
}

/// <summary>Token counts and timings of a finished request.</summary>
public sealed record UsageEntry(
    int PromptTokens, int CompletionTokens, int CachedPromptTokens, int Preemptions,
    TimeSpan QueueTime, TimeSpan? TimeToFirstToken, TimeSpan TotalTime);

/// <summary>DONE: the request finished normally.</summary>
public sealed record DoneFrame(DoneReason Reason, string? Detail, UsageEntry Usage) : FramePayload
{
    public override FrameType Type => FrameType.Done;

    internal override int MeasurePayload() => 1 + PayloadWriter.StringSize(Detail) + (4 * 4) + (3 * 8);

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U8((byte)Reason);
        writer.String(Detail);
        writer.I32(Usage.PromptTokens);
        writer.I32(Usage.CompletionTokens);
        writer.I32(Usage.CachedPromptTokens);
        writer.I32(Usage.Preemptions);
        writer.I64(Micros(Usage.QueueTime));
        writer.I64(Usage.TimeToFirstToken is { } t ? Micros(t) : -1);
        writer.I64(Micros(Usage.TotalTime));
    }

    internal static DoneFrame Read(ref PayloadReader reader)
    {
        var reason = reader.U8("finish");
        if (reason > (byte)DoneReason.Length)
        {
            reader.Fail("finish", 0, $"unknown finish reason {reason}");
        }

        var detail = reader.String("detail");
        var usage = new UsageEntry(
            reader.I32("prompt tokens"), reader.I32("completion tokens"), reader.I32("cached prompt tokens"),
            reader.I32("preemptions"), FromMicros(reader.I64("queue us")),
            reader.I64("first token us") is var first && first < 0 ? null : FromMicros(first), FromMicros(reader.I64("total us")));
        return new DoneFrame((DoneReason)reason, detail.Length == 0 ? null : detail, usage);
    }

    private static long Micros(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMicrosecond;

    private static TimeSpan FromMicros(long us) => TimeSpan.FromTicks(Math.Clamp(us, 0, TimeSpan.MaxValue.Ticks / TimeSpan.TicksPerMicrosecond) * TimeSpan.TicksPerMicrosecond);
}
