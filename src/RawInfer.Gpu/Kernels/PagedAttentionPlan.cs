namespace RawInfer.Gpu.Kernels;

/// <summary>
/// How one paged-attention decode launch splits the context (FlashDecoding): grid (seqs, kvHeads, NumSplits),
/// split s covering tokens [s·TokensPerSplit, (s+1)·TokensPerSplit). Chosen per step on the host.
/// </summary>
/// <param name="NumSplits">Splits per sequence, at least 1.</param>
/// <param name="TokensPerSplit">Context tokens per split, at least 1.</param>
public readonly record struct PagedAttentionPlan(int NumSplits, int TokensPerSplit)
{
    /// <summary>Threads per decode/prefill block (PA_THREADS in paged_attention.cu).</summary>
    public const int ThreadsPerBlock = 128;

    /// <summary>
    /// Decode blocks that fit on one multiprocessor at once: the kernel is compiled for this many
    /// (__launch_bounds__ PA_MIN_BLOCKS, 128 registers per thread).
    /// </summary>
    public const int BlocksPerMultiprocessor = 4;

    /// <summary>
    /// The shortest split. Each warp walks its tokens one after another, about 2 µs per token on an H200 (a load of
    /// the block table, then of the K/V rows, then the group's dot products), so short splits pay: the kernel alone
    /// at one sequence of the 1B shape took 65 µs for 128 tokens in one split and 22 µs in four of 32, 124 µs for
    /// 2,048 tokens in 8 splits and 29 µs in 64; single-sequence decode of the whole 1B F16 model went from 3.95 ms
    /// a step (256) to 3.22 (128), 2.49 (64) and 2.16 (32). Batches that fill the device already (100 sequences)
    /// get one or two splits whatever this is. (perf/gpu/device-run.sh, 2026-12-04.)
    /// </summary>
    public const int MinTokensPerSplit = 32;

    /// <summary>Upper bound on <see cref="NumSplits"/>.</summary>
    public const int MaxSplits = 64;

    /// <summary>Query heads per pass over the tokens (PA_GROUP in paged_attention.cu).</summary>
    public const int HeadsPerPass = 8;

    /// <summary>Warps per block (PA_WARPS in paged_attention.cu).</summary>
    public const int WarpsPerBlock = ThreadsPerBlock / 32;

    /// <summary>Largest head width the kernels handle (2 × 32 lanes × PA_MAX_PAIRS).</summary>
    public const int MaxHeadDim = 256;

    /// <summary>
    /// Enough splits to give every multiprocessor <see cref="BlocksPerMultiprocessor"/> blocks, but no split
    /// shorter than <see cref="MinTokensPerSplit"/> tokens of the longest context, and at most
    /// <see cref="MaxSplits"/>. Short contexts and large batches get one split (the merge is then a conversion).
    /// </summary>
    /// <param name="numSeqs">Sequences in the decode batch.</param>
    /// <param name="kvHeads">KV heads of the model.</param>
    /// <param name="maxContext">Longest context length in the batch (tokens).</param>
    /// <param name="multiprocessorCount">The device's SM count.</param>
    /// <param name="minTokensPerSplit">The shortest split (<see cref="MinTokensPerSplit"/> unless tuning).</param>
    public static PagedAttentionPlan Choose(int numSeqs, int kvHeads, int maxContext, int multiprocessorCount, int minTokensPerSplit = MinTokensPerSplit)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numSeqs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegative(maxContext);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(multiprocessorCount);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(minTokensPerSplit);
        if (maxContext <= minTokensPerSplit)
        {
            return new PagedAttentionPlan(1, Math.Max(1, maxContext));
        }

        long blocksWithoutSplits = (long)numSeqs * kvHeads;
        long targetBlocks = (long)multiprocessorCount * BlocksPerMultiprocessor;
        long wanted = (targetBlocks + blocksWithoutSplits - 1) / blocksWithoutSplits;
        long byLength = maxContext / minTokensPerSplit; // >= 1 here; every split keeps >= MinTokensPerSplit tokens
        int splits = (int)Math.Clamp(Math.Min(wanted, byLength), 1, MaxSplits);

        // Even shares, then as few splits as cover the context with that share (no split left empty).
        int tokensPerSplit = (maxContext + splits - 1) / splits;
        splits = (maxContext + tokensPerSplit - 1) / tokensPerSplit;
        return new PagedAttentionPlan(splits, tokensPerSplit);
    }

    /// <summary>
    /// The most (sequence, split) rows any plan from <see cref="Choose"/> needs for up to <paramref name="maxSeqs"/>
    /// sequences: size partialOut as MaxSplitRows × heads × headDim floats and partialMax/partialSum as
    /// MaxSplitRows × heads.
    /// </summary>
    public static int MaxSplitRows(int maxSeqs, int kvHeads, int multiprocessorCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSeqs);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(multiprocessorCount);

        // seqs · ceil(target / (seqs · kvHeads)) < target / kvHeads + seqs, and splits <= MaxSplits.
        long targetBlocks = (long)multiprocessorCount * BlocksPerMultiprocessor;
        long bound = Math.Min((long)maxSeqs * MaxSplits, (targetBlocks / kvHeads) + 1 + maxSeqs);
        return (int)Math.Min(bound, int.MaxValue);
    }

    /// <summary>
    /// Dynamic shared memory of a decode or prefill block: the queries of one pass plus each warp's accumulator,
    /// max and sum (the layout documented in paged_attention.cu).
    /// </summary>
    public static int SharedMemoryBytes(int heads, int kvHeads, int headDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        if (heads <= 0 || heads % kvHeads != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(heads), heads, $"must be a positive multiple of kvHeads ({kvHeads})");
        }

        int chunk = Math.Min(heads / kvHeads, HeadsPerPass);
        int floats = ((1 + WarpsPerBlock) * chunk * headDim) + (2 * WarpsPerBlock * chunk);
        return floats * sizeof(float);
    }
}
