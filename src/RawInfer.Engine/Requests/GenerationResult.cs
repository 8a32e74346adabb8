namespace RawInfer.Engine;

/// <summary>Why a request ended.</summary>
public enum FinishReason
{
    /// <summary>EOS or one of the request's stop token ids.</summary>
    Stop,

    /// <summary>One of the request's stop strings (not delivered).</summary>
    StopString,

    /// <summary>MaxTokens generated, or the model's context is full.</summary>
    Length,

    /// <summary>The caller cancelled.</summary>
    Cancelled,

    /// <summary>The first-token or total deadline passed.</summary>
    Timeout,

    /// <summary>A request guard refused the prompt, or an output guard refused the text.</summary>
    DeniedByPolicy,

    /// <summary>The request was invalid (too long for the model or the KV cache) or the model failed on it.</summary>
    Error,

    /// <summary>The engine shut down without draining.</summary>
    Aborted,
}

/// <summary>Log-probability of one token.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);

/// <summary>Log-probabilities at one generated position: the chosen token's, then the most likely tokens'.</summary>
public sealed record PositionLogprobs(TokenLogprob Chosen, IReadOnlyList<TokenLogprob> Top);

/// <summary>Token counts and timings of a finished request.</summary>
public sealed record RequestUsage(
    int PromptTokens,
    int CompletionTokens,
    int CachedPromptTokens,
    int Preemptions,
    TimeSpan QueueTime,
    TimeSpan? TimeToFirstToken,
    TimeSpan TotalTime);

/// <summary>
/// A piece of a streamed generation. Text is whole characters that passed the stop-string and output-guard stages;
/// token ids are delivered no earlier than their text, so a withheld phrase cannot leak through the ids either.
/// The last chunk of a stream carries the finish reason and usage.
/// </summary>
public sealed record TokenChunk(
    string Text,
    IReadOnlyList<int> TokenIds,
    IReadOnlyList<PositionLogprobs>? Logprobs,
    FinishReason? FinishReason = null,
    string? FinishDetail = null,
    RequestUsage? Usage = null)
{
    /// <summary>True on the last chunk of a stream.</summary>
    public bool IsFinal => FinishReason is not null;
}

/// <summary>A finished generation.</summary>
public sealed record GenerationResult(
    string RequestId,
    string Text,
    IReadOnlyList<int> TokenIds,
    IReadOnlyList<PositionLogprobs>? Logprobs,
    FinishReason FinishReason,
    string? FinishDetail,
    RequestUsage Usage);
