using RawInfer.KvCache;

namespace RawInfer.Engine;

/// <summary>Which waiting request is admitted next.</summary>
public enum SchedulingPolicy
{
    /// <summary>First come, first served.</summary>
    Fcfs,

    /// <summary>Highest <see cref="GenerationRequest.Priority"/> first, aged by waiting time so low priority cannot starve.</summary>
    Priority,
}

/// <summary>How batches are formed.</summary>
public enum BatchingMode
{
    /// <summary>Iteration-level scheduling (Orca): requests join and leave the batch at every step.</summary>
    Continuous,

    /// <summary>
    /// Form a batch of every waiting request that <see cref="EngineOptions.MaxRunningSequences"/> and the pool have room
    /// for (prompts spread over steps by the token budget), run it to completion, then admit the next. A request that
    /// finishes early leaves the batch at once, so the rows still running are all a step computes: a stronger baseline
    /// than request-level serving systems (see <see cref="StaticPadded"/>).
    /// </summary>
    Static,

    /// <summary>
    /// Request-level batching as a fixed-shape batch runs it (FasterTransformer, Hugging Face <c>generate</c>, the
    /// baseline of the Orca paper): like <see cref="Static"/>, but a request that finishes early keeps its row until the
    /// batch's last request ends. It is answered at once; its row computes its last position again at every step (what
    /// a padded row costs: its weights' share of each matrix product, the LM head, attention over its context), and its
    /// blocks stay held.
    /// </summary>
    StaticPadded,
}

/// <summary>What <see cref="InferenceEngine.DisposeAsync"/> does with requests still in flight.</summary>
public enum ShutdownMode
{
    /// <summary>Refuse new requests and finish every queued and running one.</summary>
    Drain,

    /// <summary>End every request at once with <see cref="FinishReason.Aborted"/>.</summary>
    Abort,
}

/// <summary>Limits and policies of an <see cref="InferenceEngine"/>. Defaults follow vLLM's.</summary>
public sealed record EngineOptions
{
    /// <summary>Token budget of one step (prefill chunks plus decode tokens).</summary>
    public int MaxBatchedTokens { get; init; } = 2048;

    /// <summary>Sequences one step may run: the batch size the hardware serves.</summary>
    public int MaxRunningSequences { get; init; } = 100;

    /// <summary>
    /// Prefill tokens (prompt chunks, and recomputation after a preemption) one step may carry besides its decode
    /// tokens; 0 = only <see cref="MaxBatchedTokens"/> limits them. Every running decode gets its token first, so
    /// this bounds how much a step that admits prompts delays the decodes sharing it (Sarathi-style chunked prefill).
    /// The default suits CPUs, where a step's time grows with its token count from a few dozen rows on; a GPU, which
    /// runs hundreds of rows for the price of one, can take 0. Continuous batching only.
    /// </summary>
    public int MaxPrefillTokensPerStep { get; init; } = 256;

    /// <summary>
    /// Most prefill tokens one request may compute in a step (vLLM's long_prefill_token_threshold), so that a long
    /// prompt shares the prefill budget with shorter ones; 0 = no per-request cap. Continuous batching only.
    /// </summary>
    public int LongPrefillTokenThreshold { get; init; }

    /// <summary>
    /// Priority policy: a waiting request may preempt running requests of strictly lower
    /// <see cref="GenerationRequest.Priority"/> (recompute, lowest priority and latest arrival first) when KV blocks
    /// or <see cref="MaxRunningSequences"/> keep it out. Aging orders the waiting queue but never preempts.
    /// </summary>
    public bool PriorityPreemption { get; init; } = true;

    /// <summary>KV-cache blocks; when 0, <see cref="KvCacheBytes"/> decides.</summary>
    public int NumKvBlocks { get; init; }

    /// <summary>KV-cache memory budget in bytes, used when <see cref="NumKvBlocks"/> is 0 (default 256 MiB).</summary>
    public long KvCacheBytes { get; init; } = 256L << 20;

    /// <summary>Token slots per KV block.</summary>
    public int BlockSize { get; init; } = BlockManager.DefaultBlockSize;

    /// <summary>Free blocks kept back from new prompts for running sequences; -1 = 1% of the pool.</summary>
    public int WatermarkBlocks { get; init; } = -1;

    /// <summary>Requests that may wait (not yet running) before submits are refused as overloaded.</summary>
    public int MaxQueuedRequests { get; init; } = 1024;

    /// <summary>Prompt tokens that may wait before submits are refused as overloaded.</summary>
    public long MaxQueuedTokens { get; init; } = 1L << 20;

    public SchedulingPolicy Policy { get; init; } = SchedulingPolicy.Fcfs;

    public BatchingMode Batching { get; init; } = BatchingMode.Continuous;

    /// <summary>Priority levels a waiting request gains per second waited (priority policy).</summary>
    public double AgingPerSecond { get; init; } = 1.0;

    /// <summary>What DisposeAsync does with requests in flight.</summary>
    public ShutdownMode DisposeMode { get; init; } = ShutdownMode.Drain;

    /// <summary>Consulted for every request before it is queued.</summary>
    public IReadOnlyList<IRequestGuard> RequestGuards { get; init; } = [];

    /// <summary>Each creates one request's output guard, in pipeline order.</summary>
    public IReadOnlyList<Func<RequestContext, IOutputGuard>> OutputGuards { get; init; } = [];

    /// <summary>Receives request events (admitted, refused, cancelled, preempted, finished).</summary>
    public IEngineEventSink EventSink { get; init; } = NullEngineEventSink.Instance;

    /// <summary>
    /// Rounds of forward passes on dummy rows the engine thread runs before its first request (0 = none, at most
    /// <see cref="MaxWarmUpRounds"/>); <see cref="InferenceEngine.WarmedUp"/> completes after them. A round is a prefill
    /// chunk, a one-row decode and a four-row decode, so every kernel path gets compiled and the weights paged in
    /// before a user waits on them (llama.cpp's server warms up likewise). They write K/V into a few blocks no
    /// request holds yet, whose slots are always written before they are read, and stay outside the scheduler,
    /// the metrics and the audit trail.
    /// </summary>
    public int WarmUpRounds { get; init; }

    /// <summary>
    /// Commit the KV cache's memory on the engine thread before the first request (and before
    /// <see cref="InferenceEngine.WarmedUp"/> completes), as vLLM and llama.cpp reserve theirs at start, instead of
    /// letting the first steps that reach each part of the pool pay the page faults (IModelRunner.PrefaultKvCache).
    /// The whole budget is then resident from the start. Off by default, so an embedding that sizes a large pool
    /// and uses little of it keeps its memory; <c>rawinfer serve</c> and <c>bench</c> turn it on (<c>--kv-prefault</c>).
    /// </summary>
    public bool PrefaultKvCache { get; init; }

    /// <summary>Largest <see cref="WarmUpRounds"/>.</summary>
    public const int MaxWarmUpRounds = 100;

    /// <summary>Runs <see cref="BlockManager.CheckInvariants"/> whenever the engine goes idle (tests; O(blocks)).</summary>
    public bool CheckInvariantsWhenIdle { get; init; }

    /// <summary>Clock for deadlines and timings (tests may substitute one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxBatchedTokens, nameof(MaxBatchedTokens));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxRunningSequences, nameof(MaxRunningSequences));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxPrefillTokensPerStep, nameof(MaxPrefillTokensPerStep));
        ArgumentOutOfRangeException.ThrowIfNegative(LongPrefillTokenThreshold, nameof(LongPrefillTokenThreshold));
        ArgumentOutOfRangeException.ThrowIfNegative(NumKvBlocks, nameof(NumKvBlocks));
        ArgumentOutOfRangeException.ThrowIfNegative(KvCacheBytes, nameof(KvCacheBytes));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(BlockSize, nameof(BlockSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(WatermarkBlocks, -1, nameof(WatermarkBlocks));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxQueuedRequests, nameof(MaxQueuedRequests));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxQueuedTokens, nameof(MaxQueuedTokens));
        ArgumentOutOfRangeException.ThrowIfNegative(WarmUpRounds, nameof(WarmUpRounds));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(WarmUpRounds, MaxWarmUpRounds, nameof(WarmUpRounds));
        if (!double.IsFinite(AgingPerSecond) || AgingPerSecond < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(AgingPerSecond), AgingPerSecond, "must be finite and >= 0");
        }

        ArgumentNullException.ThrowIfNull(RequestGuards, nameof(RequestGuards));
        ArgumentNullException.ThrowIfNull(OutputGuards, nameof(OutputGuards));
        ArgumentNullException.ThrowIfNull(EventSink, nameof(EventSink));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }
}
