using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;

namespace RawInfer.Cpu.Runner;

public sealed unsafe partial class CpuModelRunner
{
    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The batch is inconsistent (names the field, row and limit).</exception>
    /// <exception cref="InvalidOperationException">The KV cache is not allocated yet.</exception>
    public void Execute(ForwardBatch batch, Span<float> logits)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var storage = RequireStorage();
        batch.Validate(Config, storage.NumBlocks, storage.BlockSize, logits.Length);
        EnsureCapacity(batch.MaxTokens, batch.MaxSequences);

        var c = Config;
        var rows = batch.NumTokens;
        var dim = c.Dim;
        var kvDim = c.KvDim;
        var hidden = c.HiddenDim;
        var eps = c.NormEpsilon;
        for (var s = 0; s < batch.NumSequences; s++)
        {
            _rowSequence.AsSpan(batch.QueryStart[s], batch.QueryStart[s + 1] - batch.QueryStart[s]).Fill(s);
        }

        _attention.Bind(batch, storage, _q, _xb, _rowSequence);
        var attentionWorkers = _pool.WorkerCount > 1 && _attention.Work >= ParallelThreshold ? _pool.WorkerCount : 1;

        for (var r = 0; r < rows; r++)
        {
            // token embedding
            Embedding.CopyRow(_weights.TokenEmbedding, batch.TokenIds[r], _x.AsSpan(r * dim, dim));

            // RoPE rotation tables at this row's position, shared by every layer
            Rope.FillTables(batch.Positions[r], _inverseFrequencies, _ropeCos.AsSpan(r * dim, dim), _ropeSin.AsSpan(r * dim, dim));
        }

        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = _weights.Layers[l];

            // attention rmsnorm
            var attentionNorm = layer.AttentionNorm.AsF32();
            for (var r = 0; r < rows; r++)
            {
                RmsNorm.Compute(_xb.AsSpan(r * dim, dim), _x.AsSpan(r * dim, dim), attentionNorm, eps);
            }

            // q, k, v projections, all rows through each matrix at once: Q (rows, dim), K and V (rows, kvDim)
            Run(_gemm.Reset(Ptr(_xb), rows).Add(layer.Wq, Ptr(_q)).Add(layer.Wk, Ptr(_k)).Add(layer.Wv, Ptr(_v)));

            for (var r = 0; r < rows; r++)
            {
                // RoPE: rotate every query head and every key head by the row's own position
                var cos = _ropeCos.AsSpan(r * dim, dim);
                var sin = _ropeSin.AsSpan(r * dim, dim);
                Rope.Rotate(_q.AsSpan(r * dim, dim), cos, sin);
                Rope.Rotate(_k.AsSpan(r * kvDim, kvDim), cos, sin);
            }

            // store each row's K and V in its slot (rounded for a 16-bit cache)
            StoreKv(storage, l, batch.SlotMapping, rows, kvDim);

            // causal grouped-query attention of every row over its sequence's blocks → xb (rows, dim)
            _attention.Prepare(l, attentionWorkers);
            if (attentionWorkers > 1)
            {
                _pool.Run(_attention);
            }
            else
            {
                _attention.Execute(0, 1);
            }

            // output projection: xb2 (rows, dim) = xb·woᵀ
            Run(_gemm.Reset(Ptr(_xb), rows).Add(layer.Wo, Ptr(_xb2)));

            // residual
            AddRows(_x, _xb2, rows, dim);

            // ffn rmsnorm
            var ffnNorm = layer.FfnNorm.AsF32();
            for (var r = 0; r < rows; r++)
            {
                RmsNorm.Compute(_xb.AsSpan(r * dim, dim), _x.AsSpan(r * dim, dim), ffnNorm, eps);
            }

            // gate and up projections: hb, hb2 (rows, hidden)
            Run(_gemm.Reset(Ptr(_xb), rows).Add(layer.W1, Ptr(_hb)).Add(layer.W3, Ptr(_hb2)));

            // SwiGLU per row (a row's vector/scalar split must not depend on the rows around it)
            for (var r = 0; r < rows; r++)
            {
                SwiGlu.InPlace(_hb.AsSpan(r * hidden, hidden), _hb2.AsSpan(r * hidden, hidden));
            }

            // down projection: xb2 (rows, dim) = hb·w2ᵀ
            Run(_gemm.Reset(Ptr(_hb), rows).Add(layer.W2, Ptr(_xb2)));

            // residual
            AddRows(_x, _xb2, rows, dim);
        }

        // final rmsnorm, only of the rows whose logits are sampled
        var finalNorm = _weights.FinalNorm.AsF32();
        var logitRows = batch.NumLogitRows;
        for (var i = 0; i < logitRows; i++)
        {
            RmsNorm.Compute(_final.AsSpan(i * dim, dim), _x.AsSpan(batch.LogitRows[i] * dim, dim), finalNorm, eps);
        }

        // classifier: logits (logitRows, vocab) = final·wclsᵀ
        if (logitRows > 0)
        {
            fixed (float* pLogits = logits)
            {
                Run(_gemm.Reset(Ptr(_final), logitRows).Add(_weights.Classifier, pLogits));
            }
        }
    }

    /// <summary>Copies (or rounds to half or bfloat16) row r of K and V into slot slotMapping[r] of layer <paramref name="layer"/>.</summary>
    private void StoreKv(PagedKvStorage storage, int layer, ReadOnlySpan<int> slotMapping, int rows, int kvDim)
    {
        if (storage.ElementType == KvCacheType.F32)
        {
            var keys = storage.LayerKeys(layer);
            var values = storage.LayerValues(layer);
            for (var r = 0; r < rows; r++)
            {
                var slot = slotMapping[r];
                _k.AsSpan(r * kvDim, kvDim).CopyTo(keys.Slice(slot * kvDim, kvDim));
                _v.AsSpan(r * kvDim, kvDim).CopyTo(values.Slice(slot * kvDim, kvDim));
            }
        }
        else if (storage.ElementType == KvCacheType.F16)
        {
            var keys = storage.LayerKeysF16(layer);
            var values = storage.LayerValuesF16(layer);
            for (var r = 0; r < rows; r++)
            {
                var slot = slotMapping[r];
                HalfConversion.SinglesToHalves(_k.AsSpan(r * kvDim, kvDim), keys.Slice(slot * kvDim, kvDim));
                HalfConversion.SinglesToHalves(_v.AsSpan(r * kvDim, kvDim), values.Slice(slot * kvDim, kvDim));
            }
        }
        else
        {
            var keys = storage.LayerKeysBF16(layer);
            var values = storage.LayerValuesBF16(layer);
            for (var r = 0; r < rows; r++)
            {
                var slot = slotMapping[r];
                HalfConversion.SinglesToBFloat16s(_k.AsSpan(r * kvDim, kvDim), keys.Slice(slot * kvDim, kvDim));
                HalfConversion.SinglesToBFloat16s(_v.AsSpan(r * kvDim, kvDim), values.Slice(slot * kvDim, kvDim));
            }
        }
    }

    /// <summary>x[r] += y[r] for each of the first <paramref name="rows"/> rows (per row, like the single-token path).</summary>
    private static void AddRows(AlignedFloats x, AlignedFloats y, int rows, int width)
    {
        for (var r = 0; r < rows; r++)
        {
            Add.InPlace(x.AsSpan(r * width, width), y.AsSpan(r * width, width));
        }
    }
}
