using RawInfer.Engine.Runner;
using RawInfer.Gpu.Kernels;
using RawInfer.Native;

namespace RawInfer.Gpu.Runner;

public sealed unsafe partial class CudaModelRunner
{
    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The batch is inconsistent (names the field, row and limit).</exception>
    /// <exception cref="InvalidOperationException">The KV cache is not allocated yet.</exception>
    /// <exception cref="CudaException">A device call failed.</exception>
    public void Execute(ForwardBatch batch, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (NumKvBlocks == 0)
        {
            throw new InvalidOperationException("AllocateKvCache must run before the first step");
        }

        batch.Validate(Config, NumKvBlocks, KvBlockSize, logits.Length);
        _context.MakeCurrent();
        AllocateActivations(batch.NumTokens, Math.Max(batch.NumSequences, batch.NumLogitRows));

        var rows = batch.NumTokens;
        var seqs = batch.NumSequences;
        var logitRows = batch.NumLogitRows;
        var meta = UploadMetadata(batch);

        // A step where every sequence brings exactly one row is pure decode: row s is sequence s, so the split
        // decode kernel can index queries by sequence. Anything else (prefill chunks, or chunks mixed with decode
        // rows) goes through the prefill kernel, for which a decode row is simply a chunk of one.
        if (rows == seqs && logitRows > 0)
        {
            RunDecode(meta, DecodePlan(seqs, meta.BlockTableStride), seqs, logitRows);
        }
        else
        {
            EnqueueForward(meta, default, rows, seqs, logitRows);
        }

        if (logitRows == 0)
        {
            // a step of prefill chunks only: nothing to sample, but the KV writes must land before the next step
            _stream.Synchronize();
            return;
        }

        // logits (logitRows, vocab) F32, copied back once; the only wait of the step
        var bytes = (long)logitRows * Config.VocabSize * sizeof(float);
        fixed (float* destination = logits)
        {
            _logits.CopyToHost(destination, bytes, _stream);
            _stream.Synchronize();
        }
    }

    /// <summary>
    /// The split plan of a decode step, from the block-table width rather than the exact longest context: the
    /// width grows in powers of two (<see cref="UploadMetadata"/>), so the plan, like every other argument of the
    /// step's launches, stays the same for many steps and a captured graph can be replayed. A plan of one split
    /// covers the whole width (the kernel stops at each sequence's own length). Splits past a sequence's length
    /// are empty, which the merge handles.
    /// </summary>
    private PagedAttentionPlan DecodePlan(int seqs, int blockTableStride)
    {
        var width = blockTableStride * KvBlockSize;
        var plan = PagedAttentionPlan.Choose(seqs, Config.NumKvHeads, width, _multiprocessors, _minTokensPerSplit);
        return plan.NumSplits == 1 ? new PagedAttentionPlan(1, width) : plan;
    }

    /// <summary>
    /// Queues the forward pass of the step on the stream: embedding, the layers, then (when a row needs logits)
    /// the final norm and the classifier into <c>_logits</c>. Queues only, never waits or allocates, so that a
    /// pure-decode step can be captured into a graph. <paramref name="plan"/> is used when every row is its own
    /// sequence (rows == seqs), else the prefill attention kernel runs.
    /// </summary>
    private void EnqueueForward(in StepMetadata meta, PagedAttentionPlan plan, int rows, int seqs, int logitRows)
    {
        var c = Config;
        var t = ElementType;
        var pureDecode = rows == seqs;
        var scale = 1f / MathF.Sqrt(c.HeadDim);

        // token embedding: x (rows, dim) F32
        _kernels.EmbeddingGather(t, _x.Pointer, _embedding.Pointer, meta.Tokens, rows, c.Dim, _stream);

        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = _layers[l];

            // attention rmsnorm → normed (rows, dim) T
            _kernels.RmsNorm(t, _normed.Pointer, _x.Pointer, layer.AttentionNorm.Pointer, rows, c.Dim, c.NormEpsilon, _stream);

            // q, k, v projections: q (rows, dim), k and v (rows, kvDim) F32
            Linear(_q, _normed, layer.Wq, rows, c.Dim, c.Dim);
            Linear(_k, _normed, layer.Wk, rows, c.Dim, c.KvDim);
            Linear(_v, _normed, layer.Wv, rows, c.Dim, c.KvDim);

            // RoPE on every query and key head at each row's position (adjacent pairs, as llama2.c)
            _kernels.Rope(_q.Pointer, _k.Pointer, meta.Positions, rows, c.NumHeads, c.NumKvHeads, c.HeadDim, c.RopeTheta, _stream);

            // store each row's K and V in its slot
            _kernels.KvWrite(t, _keyCache[l].Pointer, _valueCache[l].Pointer, _k.Pointer, _v.Pointer, meta.Slots, rows, c.KvDim, _stream);

            // causal grouped-query attention over each sequence's blocks → attention (rows, dim) T
            if (pureDecode)
            {
                _kernels.PagedAttentionDecode(t, _partialOut.Pointer, _partialMax.Pointer, _partialSum.Pointer, _q.Pointer,
                    _keyCache[l].Pointer, _valueCache[l].Pointer, meta.BlockTables, meta.ContextLengths, seqs, meta.BlockTableStride,
                    KvBlockSize, c.NumHeads, c.NumKvHeads, c.HeadDim, plan, scale, _stream);
                _kernels.PagedAttentionMerge(t, _attention.Pointer, _partialOut.Pointer, _partialMax.Pointer, _partialSum.Pointer,
                    seqs, c.NumHeads, c.HeadDim, plan.NumSplits, _stream);
            }
            else
            {
                _kernels.PagedAttentionPrefill(t, _attention.Pointer, _q.Pointer, _keyCache[l].Pointer, _valueCache[l].Pointer,
                    meta.BlockTables, meta.QueryStart, meta.Positions, rows, seqs, meta.BlockTableStride, KvBlockSize,
                    c.NumHeads, c.NumKvHeads, c.HeadDim, scale, _stream);
            }

            // output projection and residual: x += attention · woᵀ (in the GEMM)
            Linear(_x, _attention, layer.Wo, rows, c.Dim, c.Dim, accumulate: true);

            // ffn rmsnorm, gate and up projections: gate, up (rows, hidden) F32
            _kernels.RmsNorm(t, _normed.Pointer, _x.Pointer, layer.FfnNorm.Pointer, rows, c.Dim, c.NormEpsilon, _stream);
            Linear(_gate, _normed, layer.W1, rows, c.Dim, c.HiddenDim);
            Linear(_up, _normed, layer.W3, rows, c.Dim, c.HiddenDim);

            // SwiGLU → activated (rows, hidden) T; down projection and residual
            _kernels.SwiGlu(t, _activated.Pointer, _gate.Pointer, _up.Pointer, rows * c.HiddenDim, _stream);
            Linear(_x, _activated, layer.W2, rows, c.HiddenDim, c.Dim, accumulate: true);
        }

        if (logitRows == 0)
        {
            return;
        }

        // final rmsnorm of every row (cheap), then the rows that need logits in order: final (logitRows, dim) T
        _kernels.RmsNorm(t, _normed.Pointer, _x.Pointer, _finalNorm.Pointer, rows, c.Dim, c.NormEpsilon, _stream);
        var classifierInput = _normed;
        if (!meta.LogitRowsAreAllRowsInOrder)
        {
            // gather through the embedding kernel (a row gather from a T table into F32), then back to T: both
            // conversions are exact, so gathered rows are bit-identical to the ungathered ones
            _kernels.EmbeddingGather(t, _gathered.Pointer, _normed.Pointer, meta.LogitRows, logitRows, c.Dim, _stream);
            _kernels.ConvertFromF32(t, _final.Pointer, _gathered.Pointer, logitRows * c.Dim, _stream);
            classifierInput = _final;
        }

        // classifier: logits (logitRows, vocab) F32
        Linear(_logits, classifierInput, _classifier, logitRows, c.Dim, c.VocabSize);
    }

    /// <summary>
    /// output (rows, outFeatures) F32 = input (rows, inFeatures) T · weightᵀ, weight row-major (outFeatures,
    /// inFeatures) T, float32 accumulation; with <paramref name="accumulate"/> the product is added to what output
    /// holds (cuBLAS's beta = 1: the residual add done in the GEMM's epilogue, one kernel fewer). The operand order
    /// and leading dimensions are <see cref="LinearGemmPlan"/>'s.
    /// </summary>
    private void Linear(DeviceBuffer output, DeviceBuffer input, DeviceBuffer weight, int rows, int inFeatures, int outFeatures, bool accumulate = false)
    {
        var p = LinearGemmPlan.ForLinear(rows, inFeatures, outFeatures);
        var storage = ElementType == GpuElementType.BF16 ? CudaDataType.R_16BF : CudaDataType.R_16F;
        _cublas.GemmEx(
            p.TransposeA ? CublasOperation.T : CublasOperation.N,
            p.TransposeB ? CublasOperation.T : CublasOperation.N,
            p.M, p.N, p.K,
            1f, weight.Pointer, storage, p.Lda,
            input.Pointer, storage, p.Ldb,
            accumulate ? 1f : 0f, output.Pointer, CudaDataType.R_32F, p.Ldc,
            CublasComputeType.COMPUTE_32F);
    }
}
