using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.Cpu;

/// <summary>
/// Causal grouped-query attention of one token. Query head h reads KV head h / (nHeads / nKvHeads). On a
/// <see cref="ContiguousKvCache"/> (what <see cref="CpuTransformer.CreateKvCache"/> makes) the work is split by KV
/// head and each head's query group runs the paged-attention kernel over the layer's rows as one block, with
/// the same arithmetic per head (so the same bits) and without a call per position and head; any other cache
/// is read position by position, split by query head.
/// </summary>
internal sealed class AttentionJob : CpuJob
{
    private readonly int _numHeads;
    private readonly int _headDim;
    private readonly int _queriesPerKvHead;
    private readonly int _maxSeqLen;
    private readonly float _sqrtHeadDim;
    private readonly AlignedFloats _q;   // (nHeads, headDim) rotated query
    private readonly AlignedFloats _att; // (nHeads, maxSeqLen) scores → probabilities
    private readonly AlignedFloats _out; // (nHeads, headDim) weighted sum of values
    private ISequenceKvCache? _kv;
    private int _layer;
    private int _position;

    public AttentionJob(ModelConfig config, AlignedFloats q, AlignedFloats att, AlignedFloats output)
    {
        _numHeads = config.NumHeads;
        _headDim = config.HeadDim;
        _queriesPerKvHead = config.QueriesPerKvHead;
        _maxSeqLen = config.MaxSeqLen;
        _sqrtHeadDim = MathF.Sqrt(config.HeadDim);
        _q = q;
        _att = att;
        _out = output;
    }

    public void Prepare(ISequenceKvCache kv, int layer, int position)
    {
        _kv = kv;
        _layer = layer;
        _position = position;
    }

    public override void Execute(int worker, int workerCount)
    {
        if (_kv is ContiguousKvCache contiguous && (workerCount == 1 || _numHeads / _queriesPerKvHead >= workerCount))
        {
            ExecuteGrouped(contiguous, worker, workerCount);
            return;
        }

        var (h0, h1) = Share(_numHeads, worker, workerCount, 1);
        if (h0 == h1)
        {
            return;
        }

        var kv = _kv!;
        var hd = _headDim;
        var steps = _position + 1;

        // scores: att[h, t] = q_h · k_t[kvHead(h)] / sqrt(headDim)
        for (var t = 0; t < steps; t++)
        {
            var key = kv.Key(_layer, t);
            for (var h = h0; h < h1; h++)
            {
                var kvHead = h / _queriesPerKvHead;
                var score = Dot.Compute(_q.AsSpan(h * hd, hd), key.Slice(kvHead * hd, hd));
                _att[(h * _maxSeqLen) + t] = score / _sqrtHeadDim;
            }
        }

        // softmax over positions 0..position, per head
        for (var h = h0; h < h1; h++)
        {
            Softmax.InPlace(_att.AsSpan(h * _maxSeqLen, steps));
        }

        // weighted sum of values: out_h = Σ_t att[h, t] · v_t[kvHead(h)]
        _out.AsSpan(h0 * hd, (h1 - h0) * hd).Clear();
        for (var t = 0; t < steps; t++)
        {
            var value = kv.Value(_layer, t);
            for (var h = h0; h < h1; h++)
            {
                var kvHead = h / _queriesPerKvHead;
                Axpy.Compute(_att[(h * _maxSeqLen) + t], value.Slice(kvHead * hd, hd), _out.AsSpan(h * hd, hd));
            }
        }
    }

    /// <summary>This worker's KV heads, each with its query group, through <see cref="PagedAttention.Compute"/>.</summary>
    private void ExecuteGrouped(ContiguousKvCache kv, int worker, int workerCount)
    {
        var group = _queriesPerKvHead;
        var (g0, g1) = Share(_numHeads / group, worker, workerCount, 1);
        var hd = _headDim;
        var keys = kv.LayerKeys(_layer);
        var values = kv.LayerValues(_layer);
        var kvDim = keys.Length / kv.CapacityTokens;
        ReadOnlySpan<int> oneBlock = [0];
        for (var g = g0; g < g1; g++)
        {
            var h = g * group;
            PagedAttention.Compute(
                _q.AsSpan(h * hd, group * hd), keys, values, kvDim, g, hd, oneBlock, kv.CapacityTokens, _position + 1,
                _att.AsSpan(h * _maxSeqLen, group * _maxSeqLen), _maxSeqLen, _out.AsSpan(h * hd, group * hd));
        }
    }
}
