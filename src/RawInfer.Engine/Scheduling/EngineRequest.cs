using RawInfer.Engine.Output;
using RawInfer.Engine.Sampling;

namespace RawInfer.Engine.Scheduling;

/// <summary>Where a request is in its life.</summary>
internal enum RequestStatus
{
    Waiting,
    Running,
    Finished,
}

/// <summary>
/// One request inside the engine: its tokens (prompt, then generated), how many of them have K/V, and its output
/// path. Everything but <see cref="CancelRequested"/> is touched by the engine thread only.
/// </summary>
internal sealed class EngineRequest
{
    private volatile bool _cancelRequested;

    public EngineRequest(
        long sequenceId,
        RequestContext context,
        GenerationRequest request,
        int[] promptTokens,
        int maxTokens,
        Sampler sampler,
        OutputPipeline output,
        long arrivalTimestamp)
    {
        SequenceId = sequenceId;
        Context = context;
        Request = request;
        PromptLength = promptTokens.Length;
        MaxTokens = maxTokens;
        Tokens = new int[promptTokens.Length + maxTokens];
        promptTokens.CopyTo(Tokens, 0);
        NumTokens = promptTokens.Length;
        Sampler = sampler;
        Output = output;
        ArrivalTimestamp = arrivalTimestamp;
        StopTokenIds = [.. request.StopTokenIds];
        Outbox = new RequestOutbox(maxTokens, request.TopLogprobs > 0);
    }

    /// <summary>Id of the sequence in the block manager (kept across preemptions).</summary>
    public long SequenceId { get; }

    public RequestContext Context { get; }

    public GenerationRequest Request { get; }

    public int PromptLength { get; }

    /// <summary>Generation budget after clamping to the model's context.</summary>
    public int MaxTokens { get; }

    /// <summary>(prompt + max tokens) the prompt, then each sampled token; first <see cref="NumTokens"/> valid.</summary>
    public int[] Tokens { get; }

    public int NumTokens { get; set; }

    /// <summary>Leading tokens whose K/V is in the cache (zeroed by preemption).</summary>
    public int NumComputedTokens { get; set; }

    public int NumGenerated => NumTokens - PromptLength;

    public ReadOnlySpan<int> History => Tokens.AsSpan(0, NumTokens);

    public Sampler Sampler { get; }

    public OutputPipeline Output { get; }

    public int[] StopTokenIds { get; }

    public RequestStatus Status { get; set; } = RequestStatus.Waiting;

    /// <summary>True while the block manager holds the sequence.</summary>
    public bool HasBlocks { get; set; }

    /// <summary>True until the request first runs (it counts against the waiting-queue bound until then).</summary>
    public bool CountsAsQueued { get; set; } = true;

    public int Preemptions { get; set; }

    /// <summary>Prompt tokens served from the prefix cache at first admission.</summary>
    public int CachedPromptTokens { get; set; }

    public long ArrivalTimestamp { get; }

    public long FirstScheduledTimestamp { get; set; }

    public long FirstTokenTimestamp { get; set; }

    public long FirstTokenDeadline { get; set; } = long.MaxValue;

    public long TotalDeadline { get; set; } = long.MaxValue;

    /// <summary>
    /// Finished, with its row kept in a <see cref="BatchingMode.StaticPadded"/> batch (recomputing its last position)
    /// until the batch ends; it delivers nothing more. Stays set once the row is released.
    /// </summary>
    public bool IsPadRow { get; set; }

    /// <summary>Set in postprocess when the step's token ends the request; acted on after the batch is walked.</summary>
    public FinishReason? PendingFinish { get; set; }

    /// <summary>Where the request's chunks go to its reader (ids staged until their text is released).</summary>
    public RequestOutbox Outbox { get; }

    public bool CancelRequested => _cancelRequested;

    /// <summary>Called from any thread; the engine ends the request within one step.</summary>
    public void RequestCancel() => _cancelRequested = true;

    /// <summary>Priority for the waiting queue, raised by time waited so that low priority cannot starve.</summary>
    public double EffectivePriority(long now, double agingPerSecond, long timestampFrequency) =>
        Request.Priority + (agingPerSecond * (now - ArrivalTimestamp) / timestampFrequency);
}
