using System.Diagnostics;
using RawInfer.Gpu.Runner;
using RawInfer.Native;

namespace RawInfer.Gpu.Kernels;

// One method per kernel; argument order is the kernel's (kernels/*.cu), shapes as comments. Empty work returns
// without a launch (a zero-sized grid is a launch error).
public sealed partial class CudaKernels
{
    /// <summary>output (n, dim) F32 = table[tokens] widened; table (vocab, dim) T; tokens (n) int.</summary>
    public void EmbeddingGather(GpuElementType type, nint output, nint table, nint tokens, int n, int dim, CudaStream stream)
    {
        if (n == 0 || dim == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(output);
        _args.Add(table);
        _args.Add(tokens);
        _args.Add(n);
        _args.Add(dim);
        _embedding[Index(type)].Launch(new Dim3(n), new Dim3(ElementwiseThreads), 0, stream, ref _args);
    }

    /// <summary>output (n, dim) T = weight · x / sqrt(mean(x²) + eps); x (n, dim) F32; weight (dim) F32.</summary>
    public void RmsNorm(GpuElementType type, nint output, nint x, nint weight, int n, int dim, float eps, CudaStream stream)
    {
        if (n == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(output);
        _args.Add(x);
        _args.Add(weight);
        _args.Add(n);
        _args.Add(dim);
        _args.Add(eps);
        _rmsNorm[Index(type)].Launch(new Dim3(n), new Dim3(ElementwiseThreads), 0, stream, ref _args);
    }

    /// <summary>Rotates q (n, heads, headDim) and k (n, kvHeads, headDim) F32 in place; positions (n) int.</summary>
    public void Rope(nint q, nint k, nint positions, int n, int heads, int kvHeads, int headDim, float theta, CudaStream stream)
    {
        long pairs = (long)n * (heads + kvHeads) * (headDim / 2);
        if (pairs == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(q);
        _args.Add(k);
        _args.Add(positions);
        _args.Add(n);
        _args.Add(heads);
        _args.Add(kvHeads);
        _args.Add(headDim);
        _args.Add(theta);
        _rope.Launch(new Dim3(Blocks(pairs, ElementwiseThreads)), new Dim3(ElementwiseThreads), 0, stream, ref _args);
    }

    /// <summary>
    /// kCache/vCache (blocks, blockSize, kvHeads, headDim) T, row slotMapping[i] = k/v row i (n, kvDim) F32;
    /// a negative slot skips the row.
    /// </summary>
    public void KvWrite(GpuElementType type, nint kCache, nint vCache, nint k, nint v, nint slotMapping, int n, int kvDim, CudaStream stream)
    {
        if (n == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(kCache);
        _args.Add(vCache);
        _args.Add(k);
        _args.Add(v);
        _args.Add(slotMapping);
        _args.Add(n);
        _args.Add(kvDim);
        _kvWrite[Index(type)].Launch(new Dim3(n), new Dim3(128), 0, stream, ref _args);
    }

    /// <summary>
    /// Decode attention, split by <paramref name="plan"/>: partialOut (seqs, heads, splits, headDim), partialMax and
    /// partialSum (seqs, heads, splits) F32; q (seqs, heads, headDim) F32; blockTables (seqs, maxBlocks) int;
    /// contextLens (seqs) int. Follow with <see cref="PagedAttentionMerge"/> using plan.NumSplits.
    /// </summary>
    public void PagedAttentionDecode(GpuElementType type, nint partialOut, nint partialMax, nint partialSum, nint q,
        nint kCache, nint vCache, nint blockTables, nint contextLens, int numSeqs, int maxBlocks, int blockSize,
        int heads, int kvHeads, int headDim, PagedAttentionPlan plan, float scale, CudaStream stream)
    {
        Debug.Assert(kvHeads > 0 && heads % kvHeads == 0 && headDim % 2 == 0 && headDim <= PagedAttentionPlan.MaxHeadDim);
        Debug.Assert(plan.NumSplits >= 1 && plan.TokensPerSplit >= 1);
        if (numSeqs == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(partialOut);
        _args.Add(partialMax);
        _args.Add(partialSum);
        _args.Add(q);
        _args.Add(kCache);
        _args.Add(vCache);
        _args.Add(blockTables);
        _args.Add(contextLens);
        _args.Add(maxBlocks);
        _args.Add(blockSize);
        _args.Add(heads);
        _args.Add(kvHeads);
        _args.Add(headDim);
        _args.Add(plan.NumSplits);
        _args.Add(plan.TokensPerSplit);
        _args.Add(scale);
        _decode[Index(type)].Launch(new Dim3(numSeqs, kvHeads, plan.NumSplits), new Dim3(PagedAttentionPlan.ThreadsPerBlock),
            PagedAttentionPlan.SharedMemoryBytes(heads, kvHeads, headDim), stream, ref _args);
    }

    /// <summary>output (seqs, heads, headDim) T = log-sum-exp merge of the decode partials over numSplits.</summary>
    public void PagedAttentionMerge(GpuElementType type, nint output, nint partialOut, nint partialMax, nint partialSum,
        int numSeqs, int heads, int headDim, int numSplits, CudaStream stream)
    {
        if (numSeqs == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(output);
        _args.Add(partialOut);
        _args.Add(partialMax);
        _args.Add(partialSum);
        _args.Add(numSeqs);
        _args.Add(heads);
        _args.Add(headDim);
        _args.Add(numSplits);
        _merge[Index(type)].Launch(new Dim3(numSeqs, heads), new Dim3(128), 0, stream, ref _args);
    }

    /// <summary>
    /// Causal prefill attention: output (tokens, heads, headDim) T; q (tokens, heads, headDim) F32; blockTables
    /// (numSeqs, maxBlocks); queryStart (numSeqs + 1) with queryStart[numSeqs] = <paramref name="numTokens"/>;
    /// positions (tokens). The chunk's K/V must already be written.
    /// </summary>
    public void PagedAttentionPrefill(GpuElementType type, nint output, nint q, nint kCache, nint vCache,
        nint blockTables, nint queryStart, nint positions, int numTokens, int numSeqs, int maxBlocks, int blockSize,
        int heads, int kvHeads, int headDim, float scale, CudaStream stream)
    {
        Debug.Assert(kvHeads > 0 && heads % kvHeads == 0 && headDim % 2 == 0 && headDim <= PagedAttentionPlan.MaxHeadDim);
        if (numTokens == 0 || numSeqs == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(output);
        _args.Add(q);
        _args.Add(kCache);
        _args.Add(vCache);
        _args.Add(blockTables);
        _args.Add(queryStart);
        _args.Add(positions);
        _args.Add(numSeqs);
        _args.Add(maxBlocks);
        _args.Add(blockSize);
        _args.Add(heads);
        _args.Add(kvHeads);
        _args.Add(headDim);
        _args.Add(scale);
        _prefill[Index(type)].Launch(new Dim3(numTokens, kvHeads), new Dim3(PagedAttentionPlan.ThreadsPerBlock),
            PagedAttentionPlan.SharedMemoryBytes(heads, kvHeads, headDim), stream, ref _args);
    }

    /// <summary>output (count) T = silu(gate) · up; gate, up (count) F32.</summary>
    public void SwiGlu(GpuElementType type, nint output, nint gate, nint up, int count, CudaStream stream)
    {
        if (count == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(output);
        _args.Add(gate);
        _args.Add(up);
        _args.Add(count);
        _swiGlu[Index(type)].Launch(new Dim3(Blocks(count, ElementwiseThreads)), new Dim3(ElementwiseThreads), 0, stream, ref _args);
    }

    /// <summary>x += delta; both (count) F32.</summary>
    public void ResidualAdd(nint x, nint delta, int count, CudaStream stream)
    {
        if (count == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(x);
        _args.Add(delta);
        _args.Add(count);
        _residualAdd.Launch(new Dim3(Blocks(count, ElementwiseThreads)), new Dim3(ElementwiseThreads), 0, stream, ref _args);
    }

    /// <summary>output (count) T = input (count) F32 rounded to nearest even.</summary>
    public void ConvertFromF32(GpuElementType type, nint output, nint input, int count, CudaStream stream)
    {
        if (count == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(output);
        _args.Add(input);
        _args.Add(count);
        _convert[Index(type)].Launch(new Dim3(Blocks(count, ElementwiseThreads)), new Dim3(ElementwiseThreads), 0, stream, ref _args);
    }

    /// <summary>outTokens (rows) int = argmax of each logits row (rows, vocab) F32, lowest id on ties.</summary>
    public void ArgMax(nint outTokens, nint logits, int rows, int vocab, CudaStream stream)
    {
        if (rows == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(outTokens);
        _args.Add(logits);
        _args.Add(rows);
        _args.Add(vocab);
        _argMax.Launch(new Dim3(rows), new Dim3(SamplingThreads), 0, stream, ref _args);
    }

    /// <summary>
    /// outTokens (rows) int sampled per row from logits (rows, vocab) F32 with temperature, topP, uniform (rows) F32
    /// and topK (rows) int: temperature &lt;= 0 is greedy, topK &lt;= 0 or &gt;= vocab and topP &gt;= 1 are off,
    /// uniform in [0, 1).
    /// </summary>
    public void SampleTopKTopP(nint outTokens, nint logits, nint temperature, nint topK, nint topP, nint uniform,
        int rows, int vocab, CudaStream stream)
    {
        if (rows == 0)
        {
            return;
        }

        _args.Clear();
        _args.Add(outTokens);
        _args.Add(logits);
        _args.Add(temperature);
        _args.Add(topK);
        _args.Add(topP);
        _args.Add(uniform);
        _args.Add(rows);
        _args.Add(vocab);
        _sample.Launch(new Dim3(rows), new Dim3(SamplingThreads), 0, stream, ref _args);
    }
}
