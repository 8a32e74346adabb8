using System.Diagnostics;
using RawInfer.Cpu.Kernels;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.Cpu;

public sealed unsafe partial class CpuTransformer
{
    /// <summary>
    /// Runs one token through the model at <paramref name="position"/>, writing its K and V into
    /// <paramref name="kv"/> (which must already hold positions 0 .. position-1), and returns the logits.
    /// </summary>
    /// <returns>Logits, (vocab). The span is this transformer's buffer: valid until the next call.</returns>
    public ReadOnlySpan<float> Forward(int token, int position, ISequenceKvCache kv)
    {
        ArgumentNullException.ThrowIfNull(kv);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var c = Config;
        if ((uint)token >= (uint)c.VocabSize)
        {
            ThrowBadArgument(nameof(token), token, c.VocabSize);
        }

        if ((uint)position >= (uint)Math.Min(c.MaxSeqLen, kv.CapacityTokens))
        {
            ThrowBadArgument(nameof(position), position, Math.Min(c.MaxSeqLen, kv.CapacityTokens));
        }

        // Workers keep spinning across the serial gaps of this pass (norms, RoPE, small products) and block
        // again once it is over.
        _pool.BeginBurst();
        try
        {
            RunLayers(token, position, kv);
        }
        finally
        {
            _pool.EndBurst();
        }

        Debug.Assert(_logits.Length == c.VocabSize);
        return _logits;
    }

    private void RunLayers(int token, int position, ISequenceKvCache kv)
    {
        var c = Config;
        var x = _x.AsSpan();
        var eps = c.NormEpsilon;

        // token embedding
        Embedding.CopyRow(_weights.TokenEmbedding, token, x);

        // RoPE rotation tables for this position, shared by every layer
        Rope.FillTables(position, _inverseFrequencies, _ropeCos, _ropeSin);

        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = _weights.Layers[l];

            // attention rmsnorm
            RmsNorm.Compute(_xb, x, layer.AttentionNorm.AsF32(), eps);

            // q, k, v projections: q (dim) = wq·xb; k, v (kvDim) = wk·xb, wv·xb
            RunMatVec(_matVec.Reset(Ptr(_xb)).Add(layer.Wq, Ptr(_q)).Add(layer.Wk, Ptr(_k)).Add(layer.Wv, Ptr(_v)));

            // RoPE: rotate every query head and every key head by this position's angles
            Rope.Rotate(_q, _ropeCos, _ropeSin);
            Rope.Rotate(_k, _ropeCos, _ropeSin);

            // store this position's K and V in the cache
            _k.AsSpan().CopyTo(kv.Key(l, position));
            _v.AsSpan().CopyTo(kv.Value(l, position));

            // causal grouped-query attention over positions 0..position → xb (dim)
            _attention.Prepare(kv, l, position);
            if (_pool.WorkerCount > 1 && (long)(position + 1) * c.Dim >= ParallelThreshold / 4)
            {
                _pool.Run(_attention);
            }
            else
            {
                _attention.Execute(0, 1);
            }

            // output projection: xb2 (dim) = wo·xb
            RunMatVec(_matVec.Reset(Ptr(_xb)).Add(layer.Wo, Ptr(_xb2)));

            // residual
            Add.InPlace(x, _xb2);

            // ffn rmsnorm
            RmsNorm.Compute(_xb, x, layer.FfnNorm.AsF32(), eps);

            // gate and up projections: hb (hidden) = w1·xb, hb2 (hidden) = w3·xb
            RunMatVec(_matVec.Reset(Ptr(_xb)).Add(layer.W1, Ptr(_hb)).Add(layer.W3, Ptr(_hb2)));

            // SwiGLU: hb = silu(hb) · hb2
            SwiGlu.InPlace(_hb, _hb2);

            // down projection: xb2 (dim) = w2·hb
            RunMatVec(_matVec.Reset(Ptr(_hb)).Add(layer.W2, Ptr(_xb2)));

            // residual
            Add.InPlace(x, _xb2);
        }

        // final rmsnorm (in place)
        RmsNorm.Compute(x, x, _weights.FinalNorm.AsF32(), eps);

        // classifier: logits (vocab) = wcls·x
        RunMatVec(_matVec.Reset(Ptr(_x)).Add(_weights.Classifier, Ptr(_logits)));
    }
}
