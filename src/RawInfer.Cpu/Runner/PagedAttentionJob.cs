using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// One layer's attention for every row of a batch. The work items are (run, KV head) pairs (two adjacent KV heads
/// where each has a single query head: a decode row's two value passes then run side by side), a run being up to
/// <see cref="PrefillAttention.MaxRows"/> consecutive rows of one sequence at consecutive positions (a piece of a
/// prefill chunk; a decode row is a run of one). A longer run goes through <see cref="PrefillAttention"/>, which
/// loads each cached K/V row once for all its rows and query heads; a run of one through
/// <see cref="PagedAttention"/>; both give a row the same bits. Rows attend over different context lengths, so
/// workers take items from a shared counter instead of fixed shares. Each item writes only its own output
/// heads, so the result is the same whichever worker runs it.
/// </summary>
internal sealed unsafe class PagedAttentionJob : CpuJob
{
    private readonly int _numKvHeads;
    private readonly int _headDim;
    private readonly int _queriesPerKvHead;
    private readonly int _dim;
    private readonly int _kvDim;
    private readonly int _scoreStride;    // MaxSeqLen: the longest context a row can attend over
    private readonly float[][] _scores;   // (workers) × (MaxRows · queriesPerKvHead, scoreStride) per-worker scratch
    private float[][] _kvScratch = [];    // (workers) × (blockSize, headDim) a 16-bit cache's block converted to float
    private readonly bool _runs;          // the machine and head width take PrefillAttention
    private readonly int _headsPerItem;   // KV heads per work item: 2 where each has one query head (see Execute)
    private readonly int _itemsPerRun;    // ceil(numKvHeads / headsPerItem)
    private int[] _runStart = [];         // (runs + 1) first row of each run, then the row count
    private int _runCount;
    private ForwardBatch? _batch;
    private PagedKvStorage? _storage;
    private AlignedFloats _q = AlignedFloats.Empty;      // (rows, nHeads × headDim) rotated queries
    private AlignedFloats _output = AlignedFloats.Empty; // (rows, nHeads × headDim) attention output
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
        _runs = PrefillAttention.Supports(_headDim);
        _headsPerItem = _queriesPerKvHead == 1 && _numKvHeads > 1 ? 2 : 1;
        _itemsPerRun = (_numKvHeads + _headsPerItem - 1) / _headsPerItem;
        _scores = new float[workers][];
        for (var k = 0; k < workers; k++)
        {
            _scores[k] = LineAligned.Allocate<float>(checked(PrefillAttention.MaxRows * _queriesPerKvHead * _scoreStride));
        }
    }

    /// <summary>Binds this step's batch and buffers (they change only when the runner grows them).</summary>
    public void Bind(ForwardBatch batch, PagedKvStorage storage, AlignedFloats q, AlignedFloats output, int[] rowSequence)
    {
        _batch = batch;
        _storage = storage;
        if (storage.ElementType != KvCacheType.F32 && (_kvScratch.Length != _scores.Length || !LineAligned.Holds(_kvScratch[0], storage.BlockSize * _headDim)))
        {
            _kvScratch = new float[_scores.Length][];
            for (var k = 0; k < _kvScratch.Length; k++)
            {
                _kvScratch[k] = LineAligned.Allocate<float>(storage.BlockSize * _headDim);
            }
        }

        _q = q;
        _output = output;
        _rowSequence = rowSequence;

        // runs: consecutive rows of one sequence at consecutive positions, at most MaxRows each
        var rows = batch.NumTokens;
        if (_runStart.Length < rows + 1)
        {
            _runStart = new int[rows + 1];
        }

        var runs = 0;
        for (var r = 0; r < rows; r++)
        {
            var start = runs == 0 ? -1 : _runStart[runs - 1];
            var extends = _runs && PrefillAttention.Enabled && start >= 0 && r - start < PrefillAttention.MaxRows
                && rowSequence[r] == rowSequence[r - 1] && batch.Positions[r] == batch.Positions[r - 1] + 1;
            if (!extends)
            {
                _runStart[runs++] = r;
            }
        }

        _runStart[runs] = rows;
        _runCount = runs;
    }

    /// <summary>Prepares a run over every row of the bound batch at <paramref name="layer"/>.</summary>
    public void Prepare(int layer, int workerCount)
    {
        _layer = layer;
        _items = _runCount * _itemsPerRun;
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
        var storage = _storage!;
        if (storage.ElementType == KvCacheType.F32)
        {
            fixed (float* k = storage.LayerKeys(_layer))
            fixed (float* v = storage.LayerValues(_layer))
            {
                ExecuteItems(worker, new KvLayer(k, _kvDim), new KvLayer(v, _kvDim), null);
            }
        }
        else if (storage.ElementType == KvCacheType.F16)
        {
            fixed (Half* k = storage.LayerKeysF16(_layer))
            fixed (Half* v = storage.LayerValuesF16(_layer))
            {
                ExecuteItems(worker, new KvLayer(k, _kvDim), new KvLayer(v, _kvDim), LineAligned.Start(_kvScratch[worker]));
            }
        }
        else
        {
            fixed (ushort* k = storage.LayerKeysBF16(_layer))
            fixed (ushort* v = storage.LayerValuesBF16(_layer))
            {
                ExecuteItems(worker, KvLayer.BFloat16(k, _kvDim), KvLayer.BFloat16(v, _kvDim), LineAligned.Start(_kvScratch[worker]));
            }
        }
    }

    /// <summary>Takes (run, KV heads) items from the shared counter until none are left.</summary>
    private void ExecuteItems(int worker, KvLayer keys, KvLayer values, float* kvScratch)
    {
        var batch = _batch!;
        var blockSize = _storage!.BlockSize;
        var groupWidth = _queriesPerKvHead * _headDim;
        var q = _q.Pointer;
        var output = _output.Pointer;
        var scores = LineAligned.Start(_scores[worker]);
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
                var run = item / _itemsPerRun;
                var firstHead = item % _itemsPerRun * _headsPerItem;
                var heads = Math.Min(_headsPerItem, _numKvHeads - firstHead);
                var row = _runStart[run];
                var runRows = _runStart[run + 1] - row;
                var blockTable = batch.BlockTable(_rowSequence[row]);
                var context = batch.Positions[row] + 1;
                if (runRows == 1 && heads == 2)
                {
                    // a decode row of two one-query KV heads: their value sums side by side (same bits as one by one)
                    var offset = (row * _dim) + (firstHead * groupWidth);
                    PagedAttention.ComputeTwoHeads(
                        q + offset, _headDim, keys, values, kvScratch, firstHead, blockTable, blockSize, context, scores, _scoreStride, output + offset);
                    continue;
                }

                for (var kvHead = firstHead; kvHead < firstHead + heads; kvHead++)
                {
                    var rowOffset = (row * _dim) + (kvHead * groupWidth);
                    if (runRows > 1)
                    {
                        PrefillAttention.Compute(
                            q + rowOffset, output + rowOffset, _dim, runRows, _queriesPerKvHead, _headDim, keys, values, kvScratch, kvHead,
                            blockTable, blockSize, context, scores, _scoreStride);
                    }
                    else
                    {
                        PagedAttention.Compute(
                            q + rowOffset, _queriesPerKvHead, _headDim, keys, values, kvScratch, kvHead,
                            blockTable, blockSize, context, scores, _scoreStride, output + rowOffset);
                    }
                }
            }
        }
    }
}
