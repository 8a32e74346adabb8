using ILGPU;
using ILGPU.Runtime;

namespace RawInfer.Gpu.ILGpu;

/// <summary>Typed launches; shapes follow the kernel bodies in <see cref="IlgpuKernelBodies"/>.</summary>
public sealed partial class IlgpuKernels
{
    /// <summary>x += delta. x, delta: (count).</summary>
    public void ResidualAdd(ArrayView<float> x, ArrayView<float> delta, int count, AcceleratorStream? stream = null)
    {
        RequireLength(x, count, nameof(x));
        RequireLength(delta, count, nameof(delta));
        if (count > 0)
        {
            _residualAdd(StreamOrDefault(stream), count, x, delta);
        }
    }

    /// <summary>output = silu(gate) · up. output, gate, up: (count); output may be gate.</summary>
    public void SwiGlu(ArrayView<float> output, ArrayView<float> gate, ArrayView<float> up, int count, AcceleratorStream? stream = null)
    {
        RequireLength(output, count, nameof(output));
        RequireLength(gate, count, nameof(gate));
        RequireLength(up, count, nameof(up));
        if (count > 0)
        {
            _swiGlu(StreamOrDefault(stream), count, output, gate, up);
        }
    }

    /// <summary>
    /// output[r, :] = table[tokens[r], :]; tokens outside [0, vocab) give zero rows.
    /// output: (n, dim); table: (vocab, dim); tokens: (n).
    /// </summary>
    public void EmbeddingGather(
        ArrayView<float> output, ArrayView<float> table, ArrayView<int> tokens, int n, int vocab, int dim, AcceleratorStream? stream = null)
    {
        var total = FlatCount((long)n * dim, "n·dim");
        RequireLength(output, total, nameof(output));
        RequireLength(table, (long)vocab * dim, nameof(table));
        RequireLength(tokens, n, nameof(tokens));
        if (total > 0)
        {
            _embeddingGather(StreamOrDefault(stream), total, output, table, tokens, vocab, dim);
        }
    }

    /// <summary>
    /// Writes k and v rows into their cache slots; slotMapping[r] &lt; 0 skips row r.
    /// kCache, vCache: (blocks, blockSize, kvHeads, headDim) = (slots, kvDim); k, v: (n, kvDim); slotMapping: (n).
    /// </summary>
    public void KvWrite(
        ArrayView<float> kCache,
        ArrayView<float> vCache,
        ArrayView<float> k,
        ArrayView<float> v,
        ArrayView<int> slotMapping,
        int n,
        int kvDim,
        AcceleratorStream? stream = null)
    {
        var total = FlatCount((long)n * kvDim, "n·kvDim");
        RequireLength(k, total, nameof(k));
        RequireLength(v, total, nameof(v));
        RequireLength(slotMapping, n, nameof(slotMapping));
        if (kCache.Length != vCache.Length || kvDim <= 0 || kCache.Length % kvDim != 0)
        {
            ThrowArgument(nameof(kCache), $"kCache ({kCache.Length}) and vCache ({vCache.Length}) must be the same whole number of kvDim = {kvDim} rows");
        }

        if (total > 0)
        {
            _kvWrite(StreamOrDefault(stream), total, kCache, vCache, k, v, slotMapping, kvDim);
        }
    }

    /// <summary>
    /// Rotates q and k in place (llama2.c's adjacent pairs). q: (n, heads, headDim); k: (n, kvHeads, headDim);
    /// positions: (n); inverseFrequencies: (headDim/2) from <see cref="RopeInverseFrequencies"/>.
    /// </summary>
    public void Rope(
        ArrayView<float> q,
        ArrayView<float> k,
        ArrayView<int> positions,
        ArrayView<float> inverseFrequencies,
        int n,
        int heads,
        int kvHeads,
        int headDim,
        AcceleratorStream? stream = null)
    {
        if (headDim <= 0 || headDim % 2 != 0)
        {
            ThrowArgument(nameof(headDim), $"headDim must be positive and even, got {headDim}");
        }

        var pairs = FlatCount((long)n * (heads + kvHeads) * (headDim / 2), "n·(heads+kvHeads)·headDim/2");
        RequireLength(q, (long)n * heads * headDim, nameof(q));
        RequireLength(k, (long)n * kvHeads * headDim, nameof(k));
        RequireLength(positions, n, nameof(positions));
        RequireLength(inverseFrequencies, headDim / 2, nameof(inverseFrequencies));
        if (pairs > 0)
        {
            _rope(StreamOrDefault(stream), pairs, q, k, positions, inverseFrequencies, heads, kvHeads, headDim);
        }
    }

    /// <summary>
    /// output = weight · x / sqrt(mean(x²) + eps) per row, one group per row. output, x: (n, dim); weight: (dim);
    /// output may be x.
    /// </summary>
    public void RmsNorm(
        ArrayView<float> output, ArrayView<float> x, ArrayView<float> weight, int n, int dim, float eps, AcceleratorStream? stream = null)
    {
        var total = FlatCount((long)n * dim, "n·dim");
        RequireLength(output, total, nameof(output));
        RequireLength(x, total, nameof(x));
        RequireLength(weight, dim, nameof(weight));
        if (n > 0 && dim > 0)
        {
            _rmsNorm(StreamOrDefault(stream), new KernelConfig(n, ReductionGroupSize), output, x, weight, dim, eps);
        }
    }

    /// <summary>outTokens[r] = argmax of logits row r (lowest index on ties). outTokens: (rows); logits: (rows, vocab).</summary>
    public void Argmax(ArrayView<int> outTokens, ArrayView<float> logits, int rows, int vocab, AcceleratorStream? stream = null)
    {
        if (vocab <= 0)
        {
            ThrowArgument(nameof(vocab), $"vocab must be positive, got {vocab}");
        }

        RequireLength(outTokens, rows, nameof(outTokens));
        RequireLength(logits, FlatCount((long)rows * vocab, "rows·vocab"), nameof(logits));
        if (rows > 0)
        {
            _argmax(StreamOrDefault(stream), new KernelConfig(rows, ReductionGroupSize), outTokens, logits, vocab);
        }
    }

    /// <summary>
    /// Decode attention of one query row per sequence through the block tables (GQA: the query heads of one KV
    /// head together). output, q: (seqs, heads, headDim); kCache, vCache: (blocks, blockSize, kvHeads, headDim);
    /// blockTables: (seqs, maxBlocks); contextLens: (seqs), each at most maxBlocks · blockSize.
    /// </summary>
    public void PagedAttentionDecode(
        ArrayView<float> output,
        ArrayView<float> q,
        ArrayView<float> kCache,
        ArrayView<float> vCache,
        ArrayView<int> blockTables,
        ArrayView<int> contextLens,
        int seqs,
        PagedAttentionShape shape,
        AcceleratorStream? stream = null)
    {
        if (shape.KvHeads <= 0 || shape.Heads % shape.KvHeads != 0 || shape.HeadDim <= 0 || shape.BlockSize <= 0 || shape.MaxBlocks <= 0)
        {
            ThrowArgument(nameof(shape), $"invalid attention shape {shape}");
        }

        if (shape.GroupHeads > AttentionGroupSize)
        {
            ThrowArgument(nameof(shape), $"{shape.GroupHeads} query heads per KV head exceed the group of {AttentionGroupSize} threads");
        }

        var sharedFloats = shape.SharedFloats(AttentionGroupSize);
        if ((long)sharedFloats * sizeof(float) > Accelerator.MaxSharedMemoryPerGroup)
        {
            ThrowArgument(nameof(shape), $"attention needs {sharedFloats * sizeof(float)} bytes of shared memory per group, the accelerator allows {Accelerator.MaxSharedMemoryPerGroup}");
        }

        var rowFloats = FlatCount((long)seqs * shape.Heads * shape.HeadDim, "seqs·heads·headDim");
        RequireLength(output, rowFloats, nameof(output));
        RequireLength(q, rowFloats, nameof(q));
        RequireLength(blockTables, (long)seqs * shape.MaxBlocks, nameof(blockTables));
        RequireLength(contextLens, seqs, nameof(contextLens));
        var slotFloats = (long)shape.BlockSize * shape.KvHeads * shape.HeadDim;
        if (kCache.Length != vCache.Length || kCache.Length % slotFloats != 0)
        {
            ThrowArgument(nameof(kCache), $"kCache ({kCache.Length}) and vCache ({vCache.Length}) must be the same whole number of blocks of {slotFloats} floats");
        }

        if (seqs > 0)
        {
            var config = new KernelConfig(
                new Index1D(seqs * shape.KvHeads), new Index1D(AttentionGroupSize), SharedMemoryConfig.RequestDynamic<float>(sharedFloats));
            _pagedAttention(StreamOrDefault(stream), config, output, q, kCache, vCache, blockTables, contextLens, shape);
        }
    }
}
