namespace RawInfer.Gpu.Runner;

/// <summary>How a <see cref="CudaModelRunner"/> is set up.</summary>
public sealed record CudaRunnerOptions
{
    /// <summary>CUDA device ordinal.</summary>
    public int DeviceOrdinal { get; init; }

    /// <summary>Device storage type of weights, KV cache and GEMM inputs; null = BF16 for a BF16 model, else F16.</summary>
    public GpuElementType? ElementType { get; init; }

    /// <summary>
    /// Rows one step may carry (the engine's MaxBatchedTokens). Activation buffers are allocated for this many at
    /// construction so that <see cref="CudaModelRunner.PlanKvBlocks(int, double)"/> sees the memory that is really left.
    /// </summary>
    public int MaxBatchedTokens { get; init; } = 2048;

    /// <summary>Sequences one step may carry (the engine's MaxRunningSequences).</summary>
    public int MaxSequences { get; init; } = 100;

    /// <summary>
    /// Capture pure-decode steps into CUDA graphs and replay them when the same shape recurs (on by default):
    /// one submission per step instead of about seventeen launches per layer, the same results. Off queues every
    /// step launch by launch (for comparison, or to rule graphs out).
    /// </summary>
    public bool DecodeGraphs { get; init; } = true;

    /// <summary>
    /// The shortest KV split of the decode attention kernel (<see cref="Kernels.PagedAttentionPlan.Choose"/>): fewer
    /// tokens per split give few-sequence decode more thread blocks. For tuning; the default is the plan's.
    /// </summary>
    public int MinTokensPerSplit { get; init; } = Kernels.PagedAttentionPlan.MinTokensPerSplit;

    /// <summary>Kernel cache folder; null = the compiler's default (RAWINFER_KERNEL_CACHE or the user cache).</summary>
    public string? KernelCacheDirectory { get; init; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfNegative(DeviceOrdinal, nameof(DeviceOrdinal));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxBatchedTokens, nameof(MaxBatchedTokens));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxSequences, nameof(MaxSequences));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MinTokensPerSplit, nameof(MinTokensPerSplit));
    }
}
