namespace RawInfer.Protocol;

/// <summary>
/// SUBMIT: one generation request. Exactly one of <see cref="Prompt"/> and <see cref="PromptTokenIds"/> is sent
/// (token ids win when both are set). Sampling fields use the engine's "off" values as defaults.
/// </summary>
public sealed record SubmitFrame : FramePayload
{
    /// <summary>Most stop strings one SUBMIT may carry.</summary>
    public const int MaxStopStrings = 16;

    public string? Prompt { get; init; }

    public IReadOnlyList<int>? PromptTokenIds { get; init; }

    public bool Stream { get; init; } = true;

    public bool AddBos { get; init; } = true;

    public bool IgnoreEos { get; init; }

    public float Temperature { get; init; }

    public int TopK { get; init; }

    public float TopP { get; init; } = 1f;

    public float MinP { get; init; }

    public float RepetitionPenalty { get; init; } = 1f;

    public int RepetitionWindow { get; init; } = 64;

    public float PresencePenalty { get; init; }

    public float FrequencyPenalty { get; init; }

    public ulong? Seed { get; init; }

    public int MaxTokens { get; init; } = 256;

    public int Priority { get; init; }

    /// <summary>Time allowed from arrival to the end; null = none. Sent in whole milliseconds.</summary>
    public TimeSpan? Deadline { get; init; }

    /// <summary>Log-probabilities of this many most likely tokens per position (0 = none).</summary>
    public int TopLogprobs { get; init; }

    public IReadOnlyList<string> StopStrings { get; init; } = [];

    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    public override FrameType Type => FrameType.Submit;

    internal override byte HeaderFlags => (byte)Flags;

    public SubmitFlags Flags =>
        (Stream ? SubmitFlags.Stream : 0) | (PromptTokenIds is not null ? SubmitFlags.PromptIsTokenIds : 0)
        | (AddBos ? SubmitFlags.AddBos : 0) | (IgnoreEos ? SubmitFlags.IgnoreEos : 0) | (Seed is not null ? SubmitFlags.HasSeed : 0);

    internal override int MeasurePayload()
    {
        var size = PromptTokenIds is not null ? PayloadWriter.IdsSize(PromptTokenIds) : PayloadWriter.StringSize(Prompt);
        size += (4 * 8) + 8 + 4 + 4 + 4 + 1 + 2; // sampling fields, seed, max tokens, priority, deadline, top logprobs, stop count
        foreach (var stop in StopStrings)
        {
            size += PayloadWriter.StringSize(stop);
        }

        return size + PayloadWriter.IdsSize(StopTokenIds);
    }

    internal override void WritePayload(ref PayloadWriter writer)
    {
        if (PromptTokenIds is not null)
        {
            writer.Ids(PromptTokenIds);
        }
        else
        {
            writer.String(Prompt);
        }

        writer.F32(Temperature);
        writer.I32(TopK);
        writer.F32(TopP);
        writer.F32(MinP);
        writer.F32(RepetitionPenalty);
        writer.I32(RepetitionWindow);
        writer.F32(PresencePenalty);
        writer.F32(FrequencyPenalty);
        writer.U64(Seed ?? 0);
        writer.I32(MaxTokens);
        writer.I32(Priority);
        writer.U32(Deadline is { } d ? (uint)Math.Clamp(Math.Ceiling(d.TotalMilliseconds), 1, uint.MaxValue) : 0);
        writer.U8((byte)Math.Clamp(TopLogprobs, 0, byte.MaxValue));
        writer.U16((ushort)StopStrings.Count);
        foreach (var stop in StopStrings)
        {
            writer.String(stop);
        }

        writer.Ids(StopTokenIds);
    }

    internal static SubmitFrame Read(ref PayloadReader reader, byte headerFlags)
    {
        var flags = (SubmitFlags)headerFlags;
        var tokens = (flags & SubmitFlags.PromptIsTokenIds) != 0;
        var prompt = tokens ? null : reader.String("prompt");
        var promptIds = tokens ? reader.Ids("prompt token ids") : null;
        var temperature = reader.F32("temperature");
        var topK = reader.I32("top k");
        var topP = reader.F32("top p");
        var minP = reader.F32("min p");
        var repetition = reader.F32("repetition penalty");
        var window = reader.I32("repetition window");
        var presence = reader.F32("presence penalty");
        var frequency = reader.F32("frequency penalty");
        var seed = reader.U64("seed");
        var maxTokens = reader.I32("max tokens");
        var priority = reader.I32("priority");
        var deadline = reader.U32("deadline ms");
        var topLogprobs = reader.U8("top logprobs");
        var stopCount = reader.U16("stop string count");
        reader.CheckCount(stopCount, 4, "stop strings");
        var stops = new string[stopCount];
        for (var i = 0; i < stops.Length; i++)
        {
            stops[i] = reader.String("stop string");
        }

        var stopIds = reader.Ids("stop token ids");
        return new SubmitFrame
        {
            Prompt = prompt, PromptTokenIds = promptIds, Stream = (flags & SubmitFlags.Stream) != 0,
            AddBos = (flags & SubmitFlags.AddBos) != 0, IgnoreEos = (flags & SubmitFlags.IgnoreEos) != 0,
            Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, RepetitionPenalty = repetition,
            RepetitionWindow = window, PresencePenalty = presence, FrequencyPenalty = frequency,
            Seed = (flags & SubmitFlags.HasSeed) != 0 ? seed : null, MaxTokens = maxTokens, Priority = priority,
            Deadline = deadline == 0 ? null : TimeSpan.FromMilliseconds(deadline), TopLogprobs = topLogprobs,
            StopStrings = stops, StopTokenIds = stopIds,
        };
    }
}
