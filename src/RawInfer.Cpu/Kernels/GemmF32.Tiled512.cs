using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class GemmF32
{
    /// <summary>Bytes of X one block aims to keep in L2 while every W tile of a share passes it.</summary>
    private const int XBlockBytes = 192 * 1024;

    /// <summary>Largest 8-row W tile kept in L1 (48 KiB on the machines measured) next to a 3-row X group.</summary>
    private const int WTileL1Bytes = 40 * 1024;

    /// <summary>
    /// X rows per L2 block of the tiled 512-bit path for a product of <paramref name="xRows"/> rows: as few blocks
    /// as the budget allows, of equal size rounded up to the 3-row register tile (so 64 rows of 768 floats are one
    /// block, not 63 and a lone row that streams W again). It only orders the tiles: no pair's summation depends on it.
    /// </summary>
    internal static int XBlockRows(int cols, int xRows) => BalancedBlock(xRows, Math.Max(3, XBlockBytes / (cols * sizeof(float))));

    /// <summary>
    /// Rows per block when <paramref name="xRows"/> rows are cut into the fewest blocks of at most
    /// <paramref name="maxRows"/>, sized equally and rounded up to a multiple of 3 (at most 2 rows over the budget).
    /// </summary>
    internal static int BalancedBlock(int xRows, int maxRows)
    {
        Debug.Assert(maxRows >= 3);
        if (xRows <= maxRows)
        {
            return Math.Max(3, (xRows + 2) / 3 * 3);
        }

        var blocks = (xRows + maxRows - 1) / maxRows;
        var size = (xRows + blocks - 1) / blocks;
        return (size + 2) / 3 * 3;
    }

    /// <summary>
    /// False stops the tiled paths prefetching the next tile's bytes (these, and the in-register widening of
    /// <see cref="Quantized.WidenInRegisters"/>): for benchmarks and tests that compare both in one run. A prefetch
    /// is a hint, so this changes only speed, never a result.
    /// </summary>
    internal static bool PrefetchTiles { get; set; } = true;

    /// <summary>
    /// The 512-bit GEMM: a 3 (X rows) × 8 (W rows) register tile of 24 accumulators, 11 vector loads per 24 FMA,
    /// with the 8 accumulators of each X row reduced together by a shuffle tree (24 shuffles and adds for 8
    /// sums instead of a full horizontal sum each) whose per-lane tree is exactly Vector512.Sum's: within each
    /// 128-bit lane (q0+q1)+(q2+q3), then the lanes (L0+L1)+(L2+L3). So every pair sums in <see cref="Dot"/>'s
    /// 512-bit order whatever tile it lands in, and the edge tiles (1 or 2 X rows, fewer than 8 W rows) give
    /// the same bits. Loop nest: while an 8-row W tile fits in L1 (cols ≤ 1,280), X blocks that fit in L2
    /// outermost and each W tile passes every 3-row X group of the block; for wider rows see
    /// <see cref="PackedWide512"/>. With one X row this is an
    /// 8-row matrix-vector product streaming W once.
    /// <para>
    /// While a W tile passes the X groups, every iteration of the 3-row tiles asks for one line of what is read
    /// next into L2 (<see cref="PrefetchAhead"/>): the next W tile when W is read as it lies (a model's weights
    /// stream from DRAM once per X block), or the caller's range when W is a widened copy already in L2 (the next
    /// tile's F16/BF16/Q8_0 rows). Without it a tile's first loads waited on DRAM while the FMA units idled. One
    /// CPU runner step of the 110M model with it on and off (<c>perf/RawInfer.Benchmarks step-ab --switch
    /// prefetch</c>, 2 threads, the 2-core Xeon VM, ABBA medians): F32 decode of 16 sequences 0.87–0.89 of the
    /// time, of 64 sequences 0.88–0.92; F16 and Q8_0 0.96 at 16 and 0.99 at 64 (their widening already streamed
    /// the weights sequentially); single-sequence decode (1-row tiles, no prefetch) and a 512-token prefill (whose
    /// later X blocks find W in L3) unchanged.
    /// </para>
    /// w: (out, cols); x: (xRows, cols); y: (xRows, yStride), columns [rowStart, rowEnd) written. cols ≥ 16.
    /// <paramref name="ahead"/>: null when W lies in memory as given; else what the caller reads after this call.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Tiled512(
        float* w, int cols, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd, PrefetchAhead? ahead = null)
    {
        Debug.Assert(Avx512F.IsSupported && cols >= Vector512<float>.Count);
        var tileEnd = rowStart + ((rowEnd - rowStart) & ~7);
        if ((long)cols * sizeof(float) * 8 <= WTileL1Bytes)
        {
            // X blocks in L2 outermost; each 8-row W tile stays in L1 while the block's X groups pass it
            var xBlock = XBlockRows(cols, xRows);
            var tiles = (tileEnd - rowStart) / 8;
            var columns = ((xRows + xBlock - 1) / xBlock) * tiles;
            var column = 0;
            for (var i0 = 0; i0 < xRows; i0 += xBlock)
            {
                var i1 = Math.Min(i0 + xBlock, xRows);
                for (var o = rowStart; o < tileEnd; o += 8, column++)
                {
                    var wo = w + ((long)o * cols);
                    TileColumn(wo, cols, x, i0, i1, y + o, yStride, NextTile(wo, cols, o + 8 < tileEnd, ahead, column, columns), xRows == 1);
                }
            }
        }
        else if (xRows < 12)
        {
            // wide rows, a few X rows: packing W would cost more than it saves, so it is streamed as it lies
            for (var o = rowStart; o < tileEnd; o += 8)
            {
                TileColumn(w + ((long)o * cols), cols, x, 0, xRows, y + o, yStride, default, xRows == 1);
            }
        }
        else
        {
            PackedWide512(w, cols, x, xRows, y, yStride, rowStart, tileEnd, ahead);
        }

        // the W rows left over (fewer than 8): one pair at a time, same order
        for (var o = tileEnd; o < rowEnd; o++)
        {
            var wo = w + ((long)o * cols);
            for (var i = 0; i < xRows; i++)
            {
                y[((long)i * yStride) + o] = Vector512Kernel.Dot(wo, x + ((long)i * cols), cols);
            }
        }
    }

    /// <summary>
    /// What to prefetch while the W tile at <paramref name="wo"/> passes the X groups: this column's share of the
    /// caller's range, or else the next 8-row W tile if there is one.
    /// </summary>
    private static PrefetchAhead NextTile(float* wo, int cols, bool hasNext, PrefetchAhead? ahead, int column, int columns)
    {
        if (!PrefetchTiles)
        {
            return default;
        }

        if (ahead is { } range)
        {
            return range.Part(column, columns);
        }

        return new PrefetchAhead(wo + (8L * cols), hasNext ? 8L * cols * sizeof(float) : 0);
    }

    /// <summary>
    /// One 8-row W tile against X rows [i0, i1): 3-row tiles, which ask for <paramref name="next"/> a line per
    /// iteration as far as they get, then a 2- or 1-row tile. y points at column o. <paramref name="oneRowStep"/>:
    /// the whole product has one X row, so W streams from memory (see <see cref="Tile1x8"/>).
    /// </summary>
    private static void TileColumn(float* wo, int cols, float* x, int i0, int i1, float* y, int yStride, PrefetchAhead next, bool oneRowStep)
    {
        var i = i0;
        var prefetch = next.Start;
        for (; i + 3 <= i1; i += 3)
        {
            prefetch = Tile3x8(wo, x + ((long)i * cols), cols, y + ((long)i * yStride), yStride, prefetch, next.End);
        }

        if (i1 - i == 2)
        {
            Tile2x8(wo, x + ((long)i * cols), cols, y + ((long)i * yStride), yStride);
        }
        else if (i1 - i == 1)
        {
            // one row at a time only when the product has this one X row: W then streams from memory, where one
            // stream per core is what AMD's prefetchers follow; behind other X rows the tile is in cache, where
            // lockstep's shared X loads win (4 sequences on the EPYC VM: 0.95 of the time in lockstep)
            Tile1x8(wo, x + ((long)i * cols), cols, y + ((long)i * yStride), rowByRow: oneRowStep && !DecodeRowGrouping.FourRows);
        }
    }

    /// <summary>
    /// y[i·yStride + r] = w_r·x_i for r in 0..7, i in 0..2. w: 8 rows, x: 3 rows, both of stride cols. Each
    /// iteration asks for one line of [prefetch, prefetchEnd) into L2; returns where the next call goes on.
    /// </summary>
    private static byte* Tile3x8(float* w, float* x, int cols, float* y, int yStride, byte* prefetch, byte* prefetchEnd)
    {
        const int N = 16; // Vector512<float>.Count
        var x0 = x;
        var x1 = x0 + cols;
        var x2 = x1 + cols;
        var w0 = w;
        var w1 = w0 + cols;
        var w2 = w1 + cols;
        var w3 = w2 + cols;
        var w4 = w3 + cols;
        var w5 = w4 + cols;
        var w6 = w5 + cols;
        var w7 = w6 + cols;

        // cIR: x row I against w row R
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default, c06 = default, c07 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default, c16 = default, c17 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default, c26 = default, c27 = default;
        var kEnd = cols & ~(N - 1);
        for (var j = 0; j < kEnd; j += N)
        {
            if (prefetch < prefetchEnd)
            {
                Simd.PrefetchL2(prefetch);
                prefetch += PrefetchAhead.LineBytes;
            }

            var a0 = Vector512.Load(x0 + j);
            var a1 = Vector512.Load(x1 + j);
            var a2 = Vector512.Load(x2 + j);

            var b = Vector512.Load(w0 + j);
            c00 = Avx512F.FusedMultiplyAdd(b, a0, c00);
            c10 = Avx512F.FusedMultiplyAdd(b, a1, c10);
            c20 = Avx512F.FusedMultiplyAdd(b, a2, c20);
            b = Vector512.Load(w1 + j);
            c01 = Avx512F.FusedMultiplyAdd(b, a0, c01);
            c11 = Avx512F.FusedMultiplyAdd(b, a1, c11);
            c21 = Avx512F.FusedMultiplyAdd(b, a2, c21);
            b = Vector512.Load(w2 + j);
            c02 = Avx512F.FusedMultiplyAdd(b, a0, c02);
            c12 = Avx512F.FusedMultiplyAdd(b, a1, c12);
            c22 = Avx512F.FusedMultiplyAdd(b, a2, c22);
            b = Vector512.Load(w3 + j);
            c03 = Avx512F.FusedMultiplyAdd(b, a0, c03);
            c13 = Avx512F.FusedMultiplyAdd(b, a1, c13);
            c23 = Avx512F.FusedMultiplyAdd(b, a2, c23);
            b = Vector512.Load(w4 + j);
            c04 = Avx512F.FusedMultiplyAdd(b, a0, c04);
            c14 = Avx512F.FusedMultiplyAdd(b, a1, c14);
            c24 = Avx512F.FusedMultiplyAdd(b, a2, c24);
            b = Vector512.Load(w5 + j);
            c05 = Avx512F.FusedMultiplyAdd(b, a0, c05);
            c15 = Avx512F.FusedMultiplyAdd(b, a1, c15);
            c25 = Avx512F.FusedMultiplyAdd(b, a2, c25);
            b = Vector512.Load(w6 + j);
            c06 = Avx512F.FusedMultiplyAdd(b, a0, c06);
            c16 = Avx512F.FusedMultiplyAdd(b, a1, c16);
            c26 = Avx512F.FusedMultiplyAdd(b, a2, c26);
            b = Vector512.Load(w7 + j);
            c07 = Avx512F.FusedMultiplyAdd(b, a0, c07);
            c17 = Avx512F.FusedMultiplyAdd(b, a1, c17);
            c27 = Avx512F.FusedMultiplyAdd(b, a2, c27);
        }

        Finish8(Reduce8(c00, c01, c02, c03, c04, c05, c06, c07), w, x0, cols, kEnd, y);
        Finish8(Reduce8(c10, c11, c12, c13, c14, c15, c16, c17), w, x1, cols, kEnd, y + yStride);
        Finish8(Reduce8(c20, c21, c22, c23, c24, c25, c26, c27), w, x2, cols, kEnd, y + (2L * yStride));
        return prefetch;
    }

    /// <summary>y[i·yStride + r] = w_r·x_i for r in 0..7, i in 0..1.</summary>
    private static void Tile2x8(float* w, float* x, int cols, float* y, int yStride)
    {
        const int N = 16;
        var x0 = x;
        var x1 = x0 + cols;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default, c06 = default, c07 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default, c16 = default, c17 = default;
        var kEnd = cols & ~(N - 1);
        for (var j = 0; j < kEnd; j += N)
        {
            var a0 = Vector512.Load(x0 + j);
            var a1 = Vector512.Load(x1 + j);
            var wj = w + j;
            var b = Vector512.Load(wj);
            c00 = Avx512F.FusedMultiplyAdd(b, a0, c00);
            c10 = Avx512F.FusedMultiplyAdd(b, a1, c10);
            b = Vector512.Load(wj + cols);
            c01 = Avx512F.FusedMultiplyAdd(b, a0, c01);
            c11 = Avx512F.FusedMultiplyAdd(b, a1, c11);
            b = Vector512.Load(wj + (2L * cols));
            c02 = Avx512F.FusedMultiplyAdd(b, a0, c02);
            c12 = Avx512F.FusedMultiplyAdd(b, a1, c12);
            b = Vector512.Load(wj + (3L * cols));
            c03 = Avx512F.FusedMultiplyAdd(b, a0, c03);
            c13 = Avx512F.FusedMultiplyAdd(b, a1, c13);
            b = Vector512.Load(wj + (4L * cols));
            c04 = Avx512F.FusedMultiplyAdd(b, a0, c04);
            c14 = Avx512F.FusedMultiplyAdd(b, a1, c14);
            b = Vector512.Load(wj + (5L * cols));
            c05 = Avx512F.FusedMultiplyAdd(b, a0, c05);
            c15 = Avx512F.FusedMultiplyAdd(b, a1, c15);
            b = Vector512.Load(wj + (6L * cols));
            c06 = Avx512F.FusedMultiplyAdd(b, a0, c06);
            c16 = Avx512F.FusedMultiplyAdd(b, a1, c16);
            b = Vector512.Load(wj + (7L * cols));
            c07 = Avx512F.FusedMultiplyAdd(b, a0, c07);
            c17 = Avx512F.FusedMultiplyAdd(b, a1, c17);
        }

        Finish8(Reduce8(c00, c01, c02, c03, c04, c05, c06, c07), w, x0, cols, kEnd, y);
        Finish8(Reduce8(c10, c11, c12, c13, c14, c15, c16, c17), w, x1, cols, kEnd, y + yStride);
    }

    /// <summary>
    /// y[r] = w_r·x for r in 0..7: eight W rows streamed against one X row (the decode case), in lockstep or one
    /// after another (<paramref name="rowByRow"/>, see <see cref="DecodeRowGrouping"/>); the same bits either way
    /// (each row's accumulator summed by Vector512.Sum, which <see cref="Reduce8"/> reproduces).
    /// </summary>
    private static void Tile1x8(float* w, float* x, int cols, float* y, bool rowByRow)
    {
        const int N = 16;
        if (rowByRow)
        {
            var end = cols & ~(N - 1);
            for (var r = 0; r < 8; r++)
            {
                var row = w + ((long)r * cols);
                var c = Vector512<float>.Zero;
                for (var j = 0; j < end; j += N)
                {
                    c = Avx512F.FusedMultiplyAdd(Vector512.Load(row + j), Vector512.Load(x + j), c);
                }

                y[r] = Tail(row, x, end, cols, Vector512.Sum(c));
            }

            return;
        }

        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        var kEnd = cols & ~(N - 1);
        for (var j = 0; j < kEnd; j += N)
        {
            var a = Vector512.Load(x + j);
            var wj = w + j;
            c0 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj), a, c0);
            c1 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + cols), a, c1);
            c2 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + (2L * cols)), a, c2);
            c3 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + (3L * cols)), a, c3);
            c4 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + (4L * cols)), a, c4);
            c5 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + (5L * cols)), a, c5);
            c6 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + (6L * cols)), a, c6);
            c7 = Avx512F.FusedMultiplyAdd(Vector512.Load(wj + (7L * cols)), a, c7);
        }

        Finish8(Reduce8(c0, c1, c2, c3, c4, c5, c6, c7), w, x, cols, kEnd, y);
    }

    /// <summary>
    /// [Sum(c0), …, Sum(c7)] with each sum in Vector512.Sum's tree: within each 128-bit lane (q0+q1)+(q2+q3),
    /// then across lanes (L0+L1)+(L2+L3). Float addition commutes exactly, so pairing through shuffles keeps
    /// every accumulator's bits equal to its own Vector512.Sum.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Reduce8(
        Vector512<float> c0, Vector512<float> c1, Vector512<float> c2, Vector512<float> c3,
        Vector512<float> c4, Vector512<float> c5, Vector512<float> c6, Vector512<float> c7)
    {
        const byte Even = 0b10_00_10_00; // elements (or 128-bit lanes) 0, 2 of left, then 0, 2 of right
        const byte Odd = 0b11_01_11_01;  // 1, 3 of left, then 1, 3 of right

        // per 128-bit lane L: [cA(q0+q1), cA(q2+q3), cB(q0+q1), cB(q2+q3)]
        var p01 = Avx512F.Shuffle(c0, c1, Even) + Avx512F.Shuffle(c0, c1, Odd);
        var p23 = Avx512F.Shuffle(c2, c3, Even) + Avx512F.Shuffle(c2, c3, Odd);
        var p45 = Avx512F.Shuffle(c4, c5, Even) + Avx512F.Shuffle(c4, c5, Odd);
        var p67 = Avx512F.Shuffle(c6, c7, Even) + Avx512F.Shuffle(c6, c7, Odd);

        // per lane L: [c0 S_L, c1 S_L, c2 S_L, c3 S_L] (and c4..c7), S_L = (q0+q1)+(q2+q3)
        var s0123 = Avx512F.Shuffle(p01, p23, Even) + Avx512F.Shuffle(p01, p23, Odd);
        var s4567 = Avx512F.Shuffle(p45, p67, Even) + Avx512F.Shuffle(p45, p67, Odd);

        // lanes: [c0..3 (L0+L1), c0..3 (L2+L3), c4..7 (L0+L1), c4..7 (L2+L3)]
        var t = Avx512F.Shuffle4x128(s0123, s4567, Even) + Avx512F.Shuffle4x128(s0123, s4567, Odd);

        // lane 0: c0..3 (L0+L1)+(L2+L3); lane 1: c4..7
        var u = Avx512F.Shuffle4x128(t, t, Even) + Avx512F.Shuffle4x128(t, t, Odd);
        return u.GetLower();
    }

    /// <summary>y[r] = sums[r] plus the columns past the last full vector of W row r against x, in ascending order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish8(Vector256<float> sums, float* w, float* x, int cols, int kEnd, float* y)
    {
        sums.Store(y);
        if (kEnd != cols)
        {
            for (var r = 0; r < 8; r++)
            {
                y[r] = Tail(w + ((long)r * cols), x, kEnd, cols, y[r]);
            }
        }
    }
}
