using System.Globalization;
using System.Text;
using RawInfer.Engine;
using RawInfer.Engine.Sampling;
using RawInfer.Protocol;
using RawInfer.Safety.Access;
using RawInfer.Tokenizers;

namespace RawInfer.Server;

/// <summary>Frames to engine requests and engine chunks to frames: the only place the two vocabularies meet.</summary>
internal static class RequestMapping
{
    /// <summary>
    /// Checks the server's limits and builds the engine request (text prompts are tokenized here so the prompt limit
    /// is exact; the text still goes along for request guards). Returns null with <paramref name="invalid"/> naming
    /// the field and the limit.
    /// </summary>
    public static GenerationRequest? ToGenerationRequest(
        SubmitFrame s, Principal principal, ServerOptions options, ITokenizer tokenizer, long connectionId, uint requestId, out string? invalid)
    {
        invalid = null;
        if (s.MaxTokens < 0 || s.MaxTokens > options.MaxTokens)
        {
            invalid = Invariant($"max tokens {s.MaxTokens} is outside 0..{options.MaxTokens}");
            return null;
        }

        if (s.StopStrings.Count > SubmitFrame.MaxStopStrings)
        {
            invalid = Invariant($"{s.StopStrings.Count} stop strings; at most {SubmitFrame.MaxStopStrings} are allowed");
            return null;
        }

        if (s.TopLogprobs > ProtocolConstants.MaxTopLogprobs)
        {
            invalid = Invariant($"top logprobs {s.TopLogprobs} is above {ProtocolConstants.MaxTopLogprobs}");
            return null;
        }

        IReadOnlyList<int> prompt;
        if (s.PromptTokenIds is { } ids)
        {
            prompt = ids;
        }
        else
        {
            var text = s.Prompt ?? string.Empty;
            // Each token covers at least one byte, so a text this long cannot fit: refuse before tokenizing it.
            if (Encoding.UTF8.GetByteCount(text) > (long)options.MaxPromptTokens * 64)
            {
                invalid = Invariant($"prompt text is too long for {options.MaxPromptTokens} prompt tokens");
                return null;
            }

            prompt = tokenizer.Encode(text, s.AddBos, addEos: false);
        }

        if (prompt.Count == 0)
        {
            invalid = "the prompt is empty";
            return null;
        }

        if (prompt.Count > options.MaxPromptTokens)
        {
            invalid = Invariant($"the prompt is {prompt.Count} tokens; the limit is {options.MaxPromptTokens}");
            return null;
        }

        return new GenerationRequest
        {
            Prompt = s.Prompt,
            PromptTokenIds = prompt,
            AddBos = s.AddBos,
            Sampling = new SamplingParams
            {
                Temperature = s.Temperature, TopK = s.TopK, TopP = s.TopP, MinP = s.MinP,
                RepetitionPenalty = s.RepetitionPenalty, RepetitionWindow = s.RepetitionWindow,
                PresencePenalty = s.PresencePenalty, FrequencyPenalty = s.FrequencyPenalty, Seed = s.Seed,
            },
            MaxTokens = s.MaxTokens,
            StopStrings = s.StopStrings,
            StopTokenIds = s.StopTokenIds,
            IgnoreEos = s.IgnoreEos,
            TopLogprobs = s.TopLogprobs,
            Priority = s.Priority,
            TotalTimeout = s.Deadline,
            RequestId = RequestIdOf(connectionId, requestId),
            KeyId = principal.KeyId,
        };
    }

    /// <summary>
    /// The engine and audit id of a request: <c>c{connection}-r{request}</c>. The connection id is also the session id
    /// the client got in WELCOME, and connection ids start at a random base in each server process, so a client can
    /// name its requests in the audit trail and ids do not repeat across restarts.
    /// </summary>
    public static string RequestIdOf(long connectionId, uint requestId) => Invariant($"c{connectionId}-r{requestId}");

    public static TokensFrame ToTokensFrame(TokenChunk chunk) =>
        new(chunk.TokenIds, chunk.Text, chunk.Logprobs is { } lp ? ToEntries(lp) : null);

    /// <summary>DONE for the normal endings; ERROR with the matching code for the rest.</summary>
    public static FramePayload ToTerminalFrame(TokenChunk final)
    {
        var usage = final.Usage is { } u
            ? new UsageEntry(u.PromptTokens, u.CompletionTokens, u.CachedPromptTokens, u.Preemptions, u.QueueTime, u.TimeToFirstToken, u.TotalTime)
            : new UsageEntry(0, 0, 0, 0, TimeSpan.Zero, null, TimeSpan.Zero);
        return final.FinishReason switch
        {
            FinishReason.Stop => new DoneFrame(DoneReason.Stop, final.FinishDetail, usage),
            FinishReason.StopString => new DoneFrame(DoneReason.StopString, final.FinishDetail, usage),
            FinishReason.Length => new DoneFrame(DoneReason.Length, final.FinishDetail, usage),
            FinishReason.Timeout => new ErrorFrame(ErrorCode.DeadlineExceeded, final.FinishDetail ?? "the request's deadline passed"),
            FinishReason.DeniedByPolicy => new ErrorFrame(ErrorCode.DeniedByPolicy, final.FinishDetail ?? "denied by policy"),
            FinishReason.Cancelled => new ErrorFrame(ErrorCode.Cancelled, final.FinishDetail ?? "cancelled"),
            FinishReason.Aborted => new ErrorFrame(ErrorCode.ShuttingDown, final.FinishDetail ?? "the engine shut down"),
            _ => new ErrorFrame(ErrorCode.Internal, final.FinishDetail ?? "the model failed on this request"),
        };
    }

    private static PositionLogprobEntry[] ToEntries(IReadOnlyList<PositionLogprobs> positions)
    {
        var entries = new PositionLogprobEntry[positions.Count];
        for (var p = 0; p < entries.Length; p++)
        {
            var top = new TokenLogprobEntry[positions[p].Top.Count];
            for (var i = 0; i < top.Length; i++)
            {
                top[i] = new TokenLogprobEntry(positions[p].Top[i].TokenId, positions[p].Top[i].Logprob);
            }

            var chosen = positions[p].Chosen;
            entries[p] = new PositionLogprobEntry(new TokenLogprobEntry(chosen.TokenId, chosen.Logprob), top);
        }

        return entries;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Gathers a non-streamed request's output into one TOKENS frame.</summary>
internal sealed class TokenCollector
{
    private readonly List<int> _ids = [];
    private readonly StringBuilder _text = new();
    private List<PositionLogprobs>? _logprobs;

    public void Add(TokenChunk chunk)
    {
        _ids.AddRange(chunk.TokenIds);
        _text.Append(chunk.Text);
        if (chunk.Logprobs is { } lp)
        {
            (_logprobs ??= []).AddRange(lp);
        }
    }

    public TokensFrame ToFrame() =>
        RequestMapping.ToTokensFrame(new TokenChunk(_text.ToString(), _ids, _logprobs));
}
