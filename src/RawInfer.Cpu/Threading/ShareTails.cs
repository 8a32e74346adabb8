using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Threading;

/// <summary>A job whose products are split by W rows, one share per thread, that <see cref="ShareTails"/> runs.</summary>
internal interface IRowShares
{
    /// <summary>y rows [start, end) of product <paramref name="product"/>, computed whole (the kernel's own order).</summary>
    void RunRows(int product, int start, int end);
}

/// <summary>
/// One share per thread of every product's W rows (whole 8-row groups, <see cref="CpuJob.Share"/>), with the tails
/// up for grabs: a share is cut into units of about <see cref="UnitBytes"/> of weights; its owner takes three
/// quarters of it first, then half of what is left at a time (so it still streams its share front to back, in a few
/// kernel calls), and a thread that has finished its own share takes units from the back of the others', a quarter
/// of what is left at a time. A worker that starts late or is slowed by the host then no longer leaves the other
/// threads waiting for its whole share. Each unit runs exactly once (claims are compare-exchanges on the share's
/// cursor) and each output row is computed whole by whichever thread takes it, so the bits never depend on who.
/// <c>step-ab --switch steal --part decode</c> (<c>CpuTransformer</c>), 2 threads, Zen 5 VM, 2026-12-05 11:43–11:47:
/// F16 0.89–1.00 of the time without (six runs, median 0.94), F32 0.95 (two), Q8_0 0.92–1.00 (three); level in the
/// VM's calm minutes, up to 11% faster in its uneven ones. Owners taking one unit at a time cost 1.05–1.06 (a kernel
/// call and a claim per 64 KiB). The runner's products of one to three X rows (<c>GemmJob</c>; <c>step-ab --switch
/// steal --sequences N</c>, 300 steps, 12:06–12:08): one F16 sequence 0.99–1.02 (seven runs), three 0.90–0.93, F32 one
/// sequence 0.85–0.99 (four), three 0.99; Q8_0, with X quantized once per job (<c>--switch shared-x</c>), one
/// sequence 0.87–0.99 (six, median 0.95), three 0.94–1.01 (four).
/// </summary>
internal sealed class ShareTails
{
    /// <summary>Weight bytes per unit (whole 8-row groups, at least one).</summary>
    public const long UnitBytes = 64 * 1024;

    /// <summary>False: every thread runs only its own share (settable for benchmarks; the same bits either way).</summary>
    internal static bool Enabled { get; set; } = true;

    private const int RowGranule = 8;
    private const int CursorStride = 8; // longs: one 64-byte line per share's cursor

    private long[] _cursors;           // (shares × CursorStride): high 32 bits the end, low 32 the next unit

    /// <param name="shareCount">
    /// Shares the cursors are sized for up front (the pool's thread count), so that a step allocates nothing
    /// however late stealing is first switched on (<see cref="Enabled"/>).
    /// </param>
    public ShareTails(int shareCount = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(shareCount);
        _cursors = new long[shareCount * CursorStride];
    }

    /// <summary>
    /// Every share's cursor to [0, its unit count): on the dispatching thread, before the workers see the job.
    /// Allocates only for more shares than it was constructed for.
    /// </summary>
    public void Reset(ReadOnlySpan<WeightTensor> weights, int shareCount)
    {
        if (_cursors.Length < shareCount * CursorStride)
        {
            _cursors = new long[shareCount * CursorStride];
        }

        for (var s = 0; s < shareCount; s++)
        {
            long units = 0;
            foreach (ref readonly var w in weights)
            {
                var (start, end) = CpuJob.Share(w.Rows, s, shareCount, RowGranule);
                var unitRows = UnitRows(in w);
                units += (end - start + unitRows - 1) / unitRows;
            }

            Volatile.Write(ref _cursors[s * CursorStride], units << 32);
        }
    }

    /// <summary>
    /// Share <paramref name="share"/>'s units from the front, then the other shares' from the back, until none is
    /// left; after <see cref="Reset"/> with the same weights and share count.
    /// </summary>
    public void Execute<TJob>(TJob job, ReadOnlySpan<WeightTensor> weights, int share, int shareCount)
        where TJob : IRowShares
    {
        while (TakeFront(share, out var first, out var count))
        {
            RunUnits(job, weights, share, shareCount, first, count);
        }

        for (var d = 1; d < shareCount; d++)
        {
            var other = (share + d) % shareCount;
            while (TakeBack(other, out var first, out var count))
            {
                RunUnits(job, weights, other, shareCount, first, count);
            }
        }
    }

    /// <summary>Rows per unit of <paramref name="w"/>: about <see cref="UnitBytes"/> of weights, a multiple of 8.</summary>
    private static int UnitRows(in WeightTensor w)
    {
        var rowBytes = Math.Max(1, TensorEncoding.RowBytes(w.Type, w.Cols));
        return (int)Math.Max(RowGranule, Math.Min(w.Rows, UnitBytes / rowBytes) & ~(long)(RowGranule - 1));
    }

    /// <summary>
    /// Units [first, first + count) of a share: its products' rows in order, each product's part of the share cut
    /// into whole units; one kernel call per product the units touch.
    /// </summary>
    private static void RunUnits<TJob>(TJob job, ReadOnlySpan<WeightTensor> weights, int share, int shareCount, int first, int count)
        where TJob : IRowShares
    {
        var last = first + count; // exclusive, in the share's unit numbering
        var before = 0;           // units of the products before m
        for (var m = 0; m < weights.Length && before < last; m++)
        {
            ref readonly var w = ref weights[m];
            var (start, end) = CpuJob.Share(w.Rows, share, shareCount, RowGranule);
            var unitRows = UnitRows(in w);
            var units = (end - start + unitRows - 1) / unitRows;
            int from = Math.Max(first, before) - before, to = Math.Min(last, before + units) - before;
            if (from < to)
            {
                job.RunRows(m, start + (from * unitRows), Math.Min(end, start + (to * unitRows)));
            }

            before += units;
        }
    }

    private bool TakeFront(int share, out int first, out int count) => Take(share, fromBack: false, out first, out count);

    private bool TakeBack(int share, out int first, out int count) => Take(share, fromBack: true, out first, out count);

    /// <summary>
    /// Claims units of a share: from the front three quarters of a fresh share, else half of what is left; from the
    /// back a quarter of what is left; at least one. False when none is left.
    /// </summary>
    private bool Take(int share, bool fromBack, out int first, out int count)
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

            var left = end - next;
            var take = Math.Max(1, fromBack ? left / 4 : next == 0 ? left - (left / 4) : left / 2);
            var claimed = fromBack ? ((long)(end - take) << 32) | (uint)next : c + take;
            if (Interlocked.CompareExchange(ref cursor, claimed, c) == c)
            {
                first = fromBack ? end - take : next;
                count = take;
                return true;
            }
        }
    }
}
