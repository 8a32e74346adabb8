using RawInfer.Engine.Sampling;

namespace RawInfer.Engine;

/// <summary>
/// One generation request: a prompt, how to sample, when to stop. Its output depends only on these fields (and the
/// seed), never on what else the engine is running.
/// </summary>
public sealed record GenerationRequest
{
    /// <summary>Prompt text, tokenized by the engine (BOS prepended when <see cref="AddBos"/>). Ignored when <see cref="PromptTokenIds"/> is set.</summary>
    public string? Prompt { get; init; }

    /// <summary>Already tokenized prompt; when set it is used as is.</summary>
    public IReadOnlyList<int>? PromptTokenIds { get; init; }

    /// <summary>Prepend the tokenizer's BOS to <see cref="Prompt"/>.</summary>
    public bool AddBos { get; init; } = true;

    /// <summary>Sampling parameters (temperature, filters, penalties, seed). Greedy by default.</summary>
    public SamplingParams Sampling { get; init; } = SamplingParams.Greedy;

    /// <summary>Most tokens to generate; the model's context may end the request earlier (finish reason Length).</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>Strings that end the output; the match and anything after it are never delivered.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Token ids that end the output (not delivered), in addition to EOS.</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];

    /// <summary>Keep generating past EOS (benchmarks with fixed output lengths).</summary>
    public bool IgnoreEos { get; init; }

    /// <summary>Return the log-probabilities of this many most likely tokens per position (0 = none, at most 20).</summary>
    public int TopLogprobs { get; init; }

    /// <summary>Larger runs first under the priority policy; ignored by FCFS. Default 0.</summary>
    public int Priority { get; init; }

    /// <summary>Time allowed from submission to the first generated token; null = none.</summary>
    public TimeSpan? FirstTokenTimeout { get; init; }

    /// <summary>Time allowed from submission to the end; null = none.</summary>
    public TimeSpan? TotalTimeout { get; init; }

    /// <summary>Caller's id for the request (logs, events); the engine makes one up when null.</summary>
    public string? RequestId { get; init; }

    /// <summary>API key id the request came with, for guards and the audit trail; null for in-process callers.</summary>
    public string? KeyId { get; init; }

    /// <summary>Tenant the request belongs to, for guards and the audit trail.</summary>
    public string? Tenant { get; init; }

    /// <summary>Longest allowed stop string, in characters.</summary>
    public const int MaxStopStringLength = 256;

    /// <summary>Largest allowed <see cref="TopLogprobs"/>.</summary>
    public const int MaxTopLogprobs = 20;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (Prompt is null && PromptTokenIds is null)
        {
            throw new ArgumentException("a request needs Prompt or PromptTokenIds", nameof(Prompt));
        }

        ArgumentNullException.ThrowIfNull(Sampling, nameof(Sampling));
        Sampling.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(MaxTokens, nameof(MaxTokens));
        ArgumentOutOfRangeException.ThrowIfNegative(TopLogprobs, nameof(TopLogprobs));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(TopLogprobs, MaxTopLogprobs, nameof(TopLogprobs));
        ArgumentNullException.ThrowIfNull(StopStrings, nameof(StopStrings));
        ArgumentNullException.ThrowIfNull(StopTokenIds, nameof(StopTokenIds));
        foreach (var stop in StopStrings)
        {
            if (string.IsNullOrEmpty(stop) || stop.Length > MaxStopStringLength)
            {
                throw new ArgumentException(
                    $"stop strings must be 1..{MaxStopStringLength} characters; got {stop?.Length ?? 0}", nameof(StopStrings));
            }
        }

        if (FirstTokenTimeout is { } first && first <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FirstTokenTimeout), first, "must be positive");
        }

        if (TotalTimeout is { } total && total <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(TotalTimeout), total, "must be positive");
        }
    }
}
