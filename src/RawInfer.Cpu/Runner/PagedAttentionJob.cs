using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// One layer's attention for every row of a batch. The work items are (row, KV head) pairs; rows attend over
/// different context lengths (a prefill chunk's later rows see more), so workers take items from a shared
/// counter instead of fixed shares. Each item writes only its own output heads, so the result is the same
/// whichever worker runs it.
/// </summary>
internal sealed class PagedAttentionJob : CpuJob
{
    private readonly int _numKvHeads;
    private readonly int _headDim;
    private readonly int _queriesPerKvHead;
    private readonly int _dim;
    private readonly int _kvDim;
    private readonly int _scoreStride;    // MaxSeqLen: the longest context a row can attend over
    private readonly float[][] _scores;   // (workers) × (queriesPerKvHead, scoreStride) per-worker scratch
    private ForwardBatch? _batch;
    private PagedKvStorage? _storage;
    private float[] _q = [];              // (rows, nHeads × headDim) rotated queries
    private float[] _output = [];         // (rows, nHeads × headDim) attention output
    private int[] _rowSequence = [];      // (rows) the batch sequence each row belongs to
    private int _layer;
    private int _items;
    private int _itemsPerGrab;
    private int _next;

    public PagedAttentionJob(ModelConfig config, int workers)
    {
        _numKvHeads = config.NumKvHeads;
        _headDim = config.HeadDim;
        _queriesPerKvHead = config.QueriesPerKvHead;
        _dim = config.Dim;
        _kvDim = config.KvDim;
        _scoreStride = config.MaxSeqLen;
        _scores = new float[workers][];
        for (var k = 0; k < workers; k++)
        {
            _scores[k] = new float[checked(_queriesPerKvHead * _scoreStride)];
        }
    }

    /// <summary>Binds this step's batch and buffers (they change only when the runner grows them).</summary>
    public void Bind(ForwardBatch batch, PagedKvStorage storage, float[] q, float[] output, int[] rowSequence)
    {
        _batch = batch;
        _storage = storage;
        _q = q;
        _output = output;
        _rowSequence = rowSequence;
    }

    /// <summary>Prepares a run over every row of the bound batch at <paramref name="layer"/>.</summary>
    public void Prepare(int layer, int workerCount)
    {
        _layer = layer;
        _items = _batch!.NumTokens * _numKvHeads;
        _itemsPerGrab = Math.Max(1, _items / (workerCount * 16)); // a few grabs per worker keep the tail short
        _next = 0;
    }

    /// <summary>Multiply-adds of the whole run (scores plus weighted sum), to decide whether to split it.</summary>
    public long Work
    {
        get
        {
            var batch = _batch!;
            long total = 0;
            for (var r = 0; r < batch.NumTokens; r++)
            {
                total += (batch.Positions[r] + 1L) * 2 * _dim;
            }

            return total;
        }
    }

    public override void Execute(int worker, int workerCount)
    {
        var batch = _batch!;
        var storage = _storage!;
        var keys = storage.LayerKeys(_layer);
        var values = storage.LayerValues(_layer);
        var scores = _scores[worker];
        var groupWidth = _queriesPerKvHead * _headDim;
        while (true)
        {
            var first = Interlocked.Add(ref _next, _itemsPerGrab) - _itemsPerGrab;
            if (first >= _items)
            {
                return;
            }

            var last = Math.Min(first + _itemsPerGrab, _items);
            for (var item = first; item < last; item++)
            {
                var row = item / _numKvHeads;
                var kvHead = item % _numKvHeads;
                var rowOffset = (row * _dim) + (kvHead * groupWidth);
                PagedAttention.Compute(
                    _q.AsSpan(rowOffset, groupWidth),
                    keys,
                    values,
                    _kvDim,
                    kvHead,
                    _headDim,
                    batch.BlockTable(_rowSequence[row]),
                    storage.BlockSize,
                    batch.Positions[row] + 1,
                    scores,
                    _scoreStride,
                    _output.AsSpan(rowOffset, groupWidth));
            }
        }
    }
}
