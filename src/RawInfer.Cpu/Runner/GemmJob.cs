using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Threading;
using RawInfer.Models;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// Up to three matrix products sharing one input batch X (q/k/v, or gate/up), each split across the workers into
/// output tiles: by W rows (every worker streams its own slice of W once for all X rows), or by X rows when W
/// has too few rows to give every worker several 8-row tiles. Either way a pair's sum is computed whole by one
/// worker in the kernel's fixed order, so the split never changes a bit.
/// Q8_0 products take X quantized once (<see cref="PrepareQuantizedX"/>, then <see cref="Quantizer"/>: across the
/// workers for more than three X rows, on the dispatching thread for fewer) instead of once per product per worker
/// (and per call): the same bits, as the quantization is the kernel's own. Prefill of 512 tokens, 110m Q8_0,
/// 2 threads: X quantization was 5.6% of the time (a <c>perf record</c> profile) with every worker quantizing all
/// of X for each of q, k, v, o, gate, up and down; shared, engine steps took 0.96–0.98 of the time (prefill of 512), 0.97 (64 sequences), 0.98 (16 sequences)
/// (<c>step-ab --switch shared-x</c>, EPYC VM, 2026-12-04).
/// With one to three X rows (decode steps of a few sequences, where the products stream W) a thread that has
/// finished its share of W rows takes units from the back of the others' (<see cref="ShareTails"/>; integer Q8_0
/// products only with X quantized once, as a kernel that quantizes X itself would do so again in every call);
/// with more X rows each thread keeps its own share, whose tiles the GEMM blocks for the caches.
/// Holds raw pointers into buffers that stay pinned (or fixed) while the job runs.
/// </summary>
internal sealed unsafe class GemmJob : CpuJob, IRowShares
{
    private const int MaxProducts = 3;

    // W-row granule of a worker's share: a whole 8-row register tile. The split never changes a result (each
    // dot product has one summation order), only which core computes it.
    private const int RowGranule = 8;

    // Below this many 8-row W tiles per worker a W-row split leaves cores idle or uneven, so the X rows are split.
    private const int MinTilesPerWorker = 4;

    // X-row granule of that split: the 3-row register tile.
    private const int XGranule = 3;

    // Up to this many X rows a thread done with its share takes the others' tails (the in-register tile's rows).
    private const int MaxStealingXRows = 3;

    private readonly WeightTensor[] _weights = new WeightTensor[MaxProducts];
    private readonly nint[] _outputs = new nint[MaxProducts];
    private readonly ShareTails _tails;
    private bool _stealing;       // this run's shares are taken through _tails
    private float* _x;
    private int _xRows;
    private int _count;
    private sbyte[]? _q;          // (xRows, cols) X quantized per block, grown on demand, pinned
    private float[]? _qScales;    // (xRows, cols/32)
    private int _qCols;           // columns of X when it is quantized for this run, else 0

    /// <param name="workerCount">Threads of the pool that runs it (sizes the stealing cursors; more still work).</param>
    public GemmJob(int workerCount = 1)
    {
        _tails = new ShareTails(workerCount);
        Quantizer = new QuantizeJob(this);
    }

    /// <summary>False: every product quantizes X itself, on every worker (for benchmarks; same bits).</summary>
    internal static bool ShareQuantizedX { get; set; } = true;

    /// <summary>Quantizes X rows split across the workers, after <see cref="PrepareQuantizedX"/> said so.</summary>
    public CpuJob Quantizer { get; }

    /// <summary>Starts a new job over x: (xRows, in).</summary>
    public GemmJob Reset(float* x, int xRows)
    {
        _x = x;
        _xRows = xRows;
        _count = 0;
        _qCols = 0;
        return this;
    }

    /// <summary>
    /// True when this job's Q8_0 products take X quantized once: then <see cref="Quantizer"/> must run (to completion)
    /// before the job. Grows the shared buffers as needed (allocations only when a larger batch first comes).
    /// </summary>
    public bool PrepareQuantizedX()
    {
        _qCols = 0;
        if (!ShareQuantizedX || !GemmQ8_0.Supported)
        {
            return false;
        }

        var cols = 0;
        for (var m = 0; m < _count; m++)
        {
            if (_weights[m].Type == TensorType.Q8_0)
            {
                cols = _weights[m].Cols;
            }
        }

        if (cols == 0)
        {
            return false;
        }

        var length = checked(_xRows * cols);
        _ = LineAligned.Scratch(ref _q, length);
        _ = LineAligned.Scratch(ref _qScales, length / MatVecQ8_0.BlockElements);

        _qCols = cols;
        return true;
    }

    /// <summary>
    /// True when X has so few rows (≤ <see cref="GemmQ8_0.MaxDirectRows"/>, a decode step of a few sequences) that
    /// the dispatching thread quantizes it faster than a dispatch to the workers would.
    /// </summary>
    public bool QuantizeInline => _xRows <= GemmQ8_0.MaxDirectRows;

    /// <summary>Whether this run's shares are taken through the tails (set by <see cref="ChunkCount"/>).</summary>
    internal bool Stealing => _stealing;

    private sbyte* Q => LineAligned.Start(_q!);

    private float* QScales => LineAligned.Start(_qScales!);

    /// <summary>Adds Y = X·Wᵀ. W: (out, in); y: (xRows, out).</summary>
    public GemmJob Add(in WeightTensor w, float* y)
    {
        _weights[_count] = w;
        _outputs[_count] = (nint)y;
        _count++;
        return this;
    }

    /// <summary>Multiply-adds of all products, to decide whether splitting is worth a dispatch.</summary>
    public long Work
    {
        get
        {
            long total = 0;
            for (var m = 0; m < _count; m++)
            {
                total += _weights[m].ElementCount * _xRows;
            }

            return total;
        }
    }

    public override int ChunkCount(int workerCount)
    {
        // With ≤ 3 X rows and ≥ 2 workers every product takes the W-row split (see Execute), which the tails extend.
        // Integer Q8_0 products only with X quantized once: a kernel call that quantizes those few X rows itself
        // does it again in every call, and the owner's extra calls cost more than the tails gave (engine step of
        // one sequence 1.06 of the time, one run).
        _stealing = ShareTails.Enabled && workerCount > 1 && _xRows <= MaxStealingXRows && (_qCols != 0 || !IntegerQ8_0());
        if (_stealing)
        {
            _tails.Reset(_weights.AsSpan(0, _count), workerCount);
        }

        return workerCount;
    }

    public override void ExecuteChunk(int chunk, int chunkCount)
    {
        if (_stealing && chunkCount > 1)
        {
            _tails.Execute(this, _weights.AsSpan(0, _count), chunk, chunkCount);
        }
        else
        {
            Execute(chunk, chunkCount);
        }
    }

    private bool IntegerQ8_0()
    {
        for (var m = 0; m < _count; m++)
        {
            if (_weights[m].Type == TensorType.Q8_0 && GemmQ8_0.Supported)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Y columns [start, end) of product <paramref name="product"/> for every X row, as <see cref="Execute"/>'s W-row split computes them.</summary>
    public void RunRows(int product, int start, int end)
    {
        ref readonly var w = ref _weights[product];
        var y = (float*)_outputs[product];
        if (_qCols != 0 && w.Type == TensorType.Q8_0)
        {
            GemmQ8_0.RowsQuantized(in w, Q, QScales, _xRows, y, w.Rows, start, end);
        }
        else
        {
            Gemm.Rows(in w, _x, _xRows, y, start, end);
        }
    }

    public override void Execute(int worker, int workerCount)
    {
        for (var m = 0; m < _count; m++)
        {
            ref readonly var w = ref _weights[m];
            var y = (float*)_outputs[m];
            if (w.Rows >= MinTilesPerWorker * RowGranule * workerCount || _xRows < XGranule * workerCount)
            {
                // by W rows: each worker streams its own slice of W once for all X rows
                var (start, end) = Share(w.Rows, worker, workerCount, RowGranule);
                if (start < end)
                {
                    RunRows(m, start, end);
                }
            }
            else
            {
                // few W rows (a narrow K/V projection) against many X rows: by X rows, in whole 3-row tiles
                var (first, last) = ShareRows(_xRows, worker, workerCount);
                if (first >= last)
                {
                    continue;
                }

                if (_qCols != 0 && w.Type == TensorType.Q8_0)
                {
                    var blocks = w.Cols / MatVecQ8_0.BlockElements;
                    GemmQ8_0.RowsQuantized(in w, Q + ((long)first * w.Cols), QScales + ((long)first * blocks), last - first, y + ((long)first * w.Rows), w.Rows, 0, w.Rows);
                }
                else
                {
                    Gemm.Rows(in w, _x + ((long)first * w.Cols), last - first, y + ((long)first * w.Rows), 0, w.Rows);
                }
            }
        }
    }

    /// <summary>X quantized for the Q8_0 products, its rows shared out among the workers.</summary>
    private sealed class QuantizeJob(GemmJob job) : CpuJob
    {
        public override void Execute(int worker, int workerCount)
        {
            var (first, last) = Share(job._xRows, worker, workerCount, 1);
            if (first < last)
            {
                var cols = job._qCols;
                GemmQ8_0.Quantize(
                    job._x + ((long)first * cols), last - first, cols, job.Q + ((long)first * cols), job.QScales + ((long)first * (cols / MatVecQ8_0.BlockElements)));
            }
        }
    }

    /// <summary>[first, last) of <paramref name="rows"/> X rows for one worker, boundaries at multiples of 3.</summary>
    private static (int First, int Last) ShareRows(int rows, int worker, int workerCount)
    {
        var first = (int)((long)rows * worker / workerCount) / XGranule * XGranule;
        var last = worker == workerCount - 1 ? rows : (int)((long)rows * (worker + 1) / workerCount) / XGranule * XGranule;
        return (first, last);
    }
}
