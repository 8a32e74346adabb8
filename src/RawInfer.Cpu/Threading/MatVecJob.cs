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
/// <para>
/// A share is cut into units of about <see cref="StealUnitBytes"/> of weights. Its owner takes three quarters of it
/// first, then half of what is left at a time (so still one stream, in a few kernel calls), and a thread that has
/// finished its own share takes units from the back of the others', a quarter of what is left at a time
/// (<see cref="StealTails"/>): a worker that starts late or is slowed by the host no longer leaves the other thread
/// waiting for its whole share. <c>step-ab --switch steal --part decode</c>, 2 threads, Zen 5 VM, 2026-12-05 11:43–11:47:
/// F16 0.89–1.00 of the time without (six runs, median 0.94), F32 0.95 (two), Q8_0 0.92–1.00 (three); level in the
/// VM's calm minutes, up to 11% faster in its uneven ones. Owners taking one unit at a time cost 1.05–1.06 (a kernel
/// call and a claim per 64 KiB).
/// </para>
/// Holds raw pointers into buffers pinned for the transformer's lifetime.
/// </summary>
internal sealed unsafe class MatVecJob : CpuJob
{
    private const int MaxProducts = 3;
    private const int RowGranule = 8;                 // the F32 kernel's tile: eight rows (the others take four or one)
    private const long MinChunkBytes = 32 * 1024;     // below this a claim's cache-line transfer starts to show
    private const long MaxChunkBytes = 256 * 1024;    // above this the last chunk leaves one thread idle too long
    private const int ChunksPerThread = 8;
    private const int CursorStride = 8;               // longs: one 64-byte line per share's cursor

    /// <summary>Weight bytes per unit a share is taken in (whole 8-row groups, at least one).</summary>
    internal const long StealUnitBytes = 64 * 1024;

    private readonly WeightTensor[] _weights = new WeightTensor[MaxProducts];
    private readonly nint[] _outputs = new nint[MaxProducts];
    private readonly int[] _rowsPerChunk = new int[MaxProducts];
    private readonly int[] _chunkEnd = new int[MaxProducts]; // cumulative chunk count after product m
    private readonly MatVecInput _input = new();
    private long[] _cursors = [];                    // (shares × CursorStride): high 32 bits the end, low 32 the next unit
    private float* _x;
    private int _count;

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

    /// <summary>True: a thread done with its own share takes units from the back of the others' (settable for benchmarks; same bits).</summary>
    internal static bool StealTails { get; set; } = true;

    public override int ChunkCount(int workerCount)
    {
        if (!SliceChunks)
        {
            if (StealTails && workerCount > 1)
            {
                ResetCursors(workerCount);
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
        if (!SliceChunks)
        {
            if (StealTails && chunkCount > 1)
            {
                ExecuteStealing(chunk, chunkCount);
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

    /// <summary>
    /// Share <paramref name="share"/>'s units from the front (three quarters, then half of what is left at a time, so
    /// a share nobody steals from runs in a handful of calls), then the other shares' from the back, a quarter of what
    /// is left at a time (at least one unit), until none is left. Claims are compare-exchanges on the share's cursor, so each unit runs exactly once.
    /// </summary>
    private void ExecuteStealing(int share, int shareCount)
    {
        while (TakeFront(share, out var first, out var count))
        {
            RunUnits(share, shareCount, first, count);
        }

        for (var d = 1; d < shareCount; d++)
        {
            var other = (share + d) % shareCount;
            while (TakeBack(other, out var first, out var count))
            {
                RunUnits(other, shareCount, first, count);
            }
        }
    }

    /// <summary>Every share's cursor to [0, its unit count); on the dispatching thread, before the workers see the job.</summary>
    private void ResetCursors(int shareCount)
    {
        if (_cursors.Length < shareCount * CursorStride)
        {
            _cursors = new long[shareCount * CursorStride]; // once per worker count
        }

        for (var s = 0; s < shareCount; s++)
        {
            long units = 0;
            for (var m = 0; m < _count; m++)
            {
                ref readonly var w = ref _weights[m];
                var (start, end) = Share(w.Rows, s, shareCount, RowGranule);
                var unitRows = UnitRows(in w);
                units += (end - start + unitRows - 1) / unitRows;
            }

            Volatile.Write(ref _cursors[s * CursorStride], units << 32);
        }
    }

    private bool TakeFront(int share, out int first, out int count)
    {
        ref var cursor = ref _cursors[share * CursorStride];
        while (true)
        {
            var c = Volatile.Read(ref cursor);
            int next = (int)c, end = (int)(c >> 32);
            if (next >= end)
            {
                first = count = 0;
                return false;
            }

            var take = next == 0 ? Math.Max(1, end - (end / 4)) : Math.Max(1, (end - next) / 2);
            if (Interlocked.CompareExchange(ref cursor, c + take, c) == c)
            {
                first = next;
                count = take;
                return true;
            }
        }
    }

    private bool TakeBack(int share, out int first, out int count)
    {
        ref var cursor = ref _cursors[share * CursorStride];
        while (true)
        {
            var c = Volatile.Read(ref cursor);
            int next = (int)c, end = (int)(c >> 32);
            if (next >= end)
            {
                first = count = 0;
                return false;
            }

            var take = Math.Max(1, (end - next) / 4);
            if (Interlocked.CompareExchange(ref cursor, ((long)(end - take) << 32) | (uint)next, c) == c)
            {
                first = end - take;
                count = take;
                return true;
            }
        }
    }

    /// <summary>
    /// Units [first, first + count) of a share: its products' rows in order, each product's part of the share cut
    /// into whole units; one kernel call per product the units touch.
    /// </summary>
    private void RunUnits(int share, int shareCount, int first, int count)
    {
        var last = first + count; // exclusive, in the share's unit numbering
        var before = 0;           // units of the products before m
        for (var m = 0; m < _count && before < last; m++)
        {
            ref readonly var w = ref _weights[m];
            var (start, end) = Share(w.Rows, share, shareCount, RowGranule);
            var unitRows = UnitRows(in w);
            var units = (end - start + unitRows - 1) / unitRows;
            int from = Math.Max(first, before) - before, to = Math.Min(last, before + units) - before;
            if (from < to)
            {
                MatVec.Rows(in w, _input, (float*)_outputs[m], start + (from * unitRows), Math.Min(end, start + (to * unitRows)));
            }

            before += units;
        }
    }

    /// <summary>Rows per unit: about <see cref="StealUnitBytes"/> of weights, a multiple of the 8-row group.</summary>
    private static int UnitRows(in WeightTensor w) =>
        (int)Math.Max(RowGranule, Math.Min(w.Rows, StealUnitBytes / RowBytes(in w)) & ~(long)(RowGranule - 1));

    private static long RowBytes(in WeightTensor w) => Math.Max(1, TensorEncoding.RowBytes(w.Type, w.Cols));
}
