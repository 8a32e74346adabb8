using RawInfer.Cpu.Kernels;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Threading;

/// <summary>
/// Up to three products sharing one input vector (q/k/v, or gate/up). The input is prepared for each weight
/// type once, on the dispatching thread, when a product is added; each worker then takes one contiguous share of
/// every product, whole 8-row groups (the GEMM's one-row tile), as the engine's <c>GemmJob</c> does. The earlier
/// split, chunks of 32–256 KiB of weights claimed as threads come free (<see cref="SliceChunks"/>), balanced the
/// threads but started a new stream at every chunk: single-sequence decode of the 110M model with one share per
/// worker took 0.84–0.86 of the time in F16, 0.81–0.83 in Q8_0 and 1.00 in F32 (<c>perf/RawInfer.Benchmarks
/// step-ab --switch slices --part decode</c>, 2 threads, ABBA medians, EPYC Zen 5 VM, 2026-12-05). Either way a
/// row's sum is computed whole by one thread in the kernel's order, so the split changes no bit.
/// A thread that has finished its share takes units from the back of the others' (<see cref="ShareTails"/>).
/// Holds raw pointers into buffers pinned for the transformer's lifetime.
/// </summary>
internal sealed unsafe class MatVecJob : CpuJob, IRowShares
{
    private const int MaxProducts = 3;
    private const int RowGranule = 8;                 // the F32 kernel's tile: eight rows (the others take four or one)
    private const long MinChunkBytes = 32 * 1024;     // below this a claim's cache-line transfer starts to show
    private const long MaxChunkBytes = 256 * 1024;    // above this the last chunk leaves one thread idle too long
    private const int ChunksPerThread = 8;

    private readonly WeightTensor[] _weights = new WeightTensor[MaxProducts];
    private readonly nint[] _outputs = new nint[MaxProducts];
    private readonly int[] _rowsPerChunk = new int[MaxProducts];
    private readonly int[] _chunkEnd = new int[MaxProducts]; // cumulative chunk count after product m
    private readonly MatVecInput _input = new();
    private readonly ShareTails _tails;
    private bool _stealing;                           // this run's shares are taken through _tails
    private bool _slicing;                            // this run hands out SliceChunks' chunks
    private float* _x;
    private int _count;

    /// <param name="workerCount">Threads of the pool that runs it (sizes the stealing cursors; more still work).</param>
    public MatVecJob(int workerCount = 1) => _tails = new ShareTails(workerCount);

    /// <summary>Starts a new job over x: (cols).</summary>
    public MatVecJob Reset(float* x)
    {
        _x = x;
        _count = 0;
        return this;
    }

    /// <summary>Adds y = W·x and prepares x for W's type. W: (rows, cols); y: (rows), pinned.</summary>
    public MatVecJob Add(in WeightTensor w, float* y)
    {
        if (_count == 0 || _input.X != _x || _input.Cols != w.Cols)
        {
            _input.Reset(_x, w.Cols);
        }

        _input.Prepare(w.Type);
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
                total += _weights[m].ElementCount;
            }

            return total;
        }
    }

    /// <summary>True: rows handed out in chunks sized to a slice of weight bytes (for benchmarks; same bits).</summary>
    internal static bool SliceChunks { get; set; }

    public override int ChunkCount(int workerCount)
    {
        // the switches are read once per run, here on the dispatching thread, so flipping one mid-run cannot
        // mix two ways of splitting
        _slicing = SliceChunks;
        _stealing = false;
        if (!_slicing)
        {
            _stealing = ShareTails.Enabled && workerCount > 1;
            if (_stealing)
            {
                _tails.Reset(_weights.AsSpan(0, _count), workerCount);
            }

            return workerCount;
        }

        long totalBytes = 0;
        for (var m = 0; m < _count; m++)
        {
            totalBytes += RowBytes(in _weights[m]) * _weights[m].Rows;
        }

        var target = Math.Clamp(totalBytes / (ChunksPerThread * (long)workerCount), MinChunkBytes, MaxChunkBytes);
        var chunks = 0;
        for (var m = 0; m < _count; m++)
        {
            ref readonly var w = ref _weights[m];
            var rows = workerCount == 1 ? w.Rows : (int)Math.Max(RowGranule, target / RowBytes(in w) & ~(RowGranule - 1));
            _rowsPerChunk[m] = Math.Max(1, rows);
            chunks += (w.Rows + _rowsPerChunk[m] - 1) / _rowsPerChunk[m];
            _chunkEnd[m] = chunks;
        }

        return chunks;
    }

    public override void ExecuteChunk(int chunk, int chunkCount)
    {
        if (!_slicing)
        {
            if (_stealing && chunkCount > 1)
            {
                _tails.Execute(this, _weights.AsSpan(0, _count), chunk, chunkCount);
            }
            else
            {
                Execute(chunk, chunkCount);
            }

            return;
        }

        var m = 0;
        while (chunk >= _chunkEnd[m])
        {
            m++;
        }

        ref readonly var w = ref _weights[m];
        var start = (chunk - (m == 0 ? 0 : _chunkEnd[m - 1])) * _rowsPerChunk[m];
        var end = Math.Min(start + _rowsPerChunk[m], w.Rows);
        MatVec.Rows(in w, _input, (float*)_outputs[m], start, end);
    }

    /// <summary>Static split: this worker's share of every product (the whole job for workerCount 1).</summary>
    public override void Execute(int worker, int workerCount)
    {
        for (var m = 0; m < _count; m++)
        {
            ref readonly var w = ref _weights[m];
            var (start, end) = Share(w.Rows, worker, workerCount, RowGranule);
            if (start < end)
            {
                MatVec.Rows(in w, _input, (float*)_outputs[m], start, end);
            }
        }
    }

    /// <summary>y rows [start, end) of product <paramref name="product"/> (<see cref="ShareTails"/>' callback).</summary>
    public void RunRows(int product, int start, int end) =>
        MatVec.Rows(in _weights[product], _input, (float*)_outputs[product], start, end);

    private static long RowBytes(in WeightTensor w) => Math.Max(1, TensorEncoding.RowBytes(w.Type, w.Cols));
}
