using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class GemmF32
{
    /// <summary>
    /// False routes the 256-bit path to <see cref="Blocked{TKernel}"/> (W blocks in L2, four X rows at a time, the
    /// rows left over one by one). Only for benchmarks and tests that compare both in one run: each pair sums in
    /// <see cref="Vector256Kernel.Dot"/>'s order either way, so the bits do not change.
    /// </summary>
    internal static bool UseTiled256 { get; set; } = true;

    /// <summary>
    /// The 256-bit GEMM (AVX2 machines): the loop nest of <see cref="Tiled512"/> with a 3 (X rows) × 4 (W rows)
    /// register tile of 12 accumulators, 7 vector loads per 12 FMA. X blocks that fit in L2 outermost; each 4-row W
    /// tile stays in L1 while every 3-row X group of the block passes it, so W streams from memory once per X
    /// block, and each iteration of the 3- and 2-row tiles asks for one line of the next W tile into L2 (F32 decode
    /// step of 8 sequences, Zen 1 VM: 0.84 of the time with it, <c>step-ab --switch prefetch</c>). Unlike the 512-bit
    /// path it does not prefetch a caller's range when W is a widened copy in L2: the next F16 tile's bytes made
    /// steps of 4, 16 and 64 sequences 1.04, 1.01 and 1.01 times as long there. The loop it replaces walked W in
    /// L2-sized blocks against four X rows at a time and took the rows left over (all of them for one to three X
    /// rows) one by one, each streaming the block again: on the Zen 1 VM a decode step of three sequences took
    /// longer than one of four. Every pair's accumulator is reduced by Vector256.Sum, then the leftover columns added in order, as
    /// <see cref="Vector256Kernel.Dot"/> does, so no tile shape changes a bit.
    /// w: (out, cols); x: (xRows, cols); y: (xRows, yStride), columns [rowStart, rowEnd) written. cols ≥ 8.
    /// <paramref name="inMemory"/>: W lies in memory as given (false: a copy already in cache, nothing prefetched).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Tiled256(
        float* w, int cols, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd, bool inMemory = true)
    {
        Debug.Assert(cols >= Vector256<float>.Count);
        var tileEnd = rowStart + ((rowEnd - rowStart) & ~3);
        var xBlock = XBlockRows(cols, xRows);
        for (var i0 = 0; i0 < xRows; i0 += xBlock)
        {
            var i1 = Math.Min(i0 + xBlock, xRows);
            for (var o = rowStart; o < tileEnd; o += 4)
            {
                var wo = w + ((long)o * cols);
                var next = PrefetchTiles && inMemory && o + 4 < tileEnd ? new PrefetchAhead(wo + (4L * cols), 4L * cols * sizeof(float)) : default;
                TileColumn256(wo, cols, x, i0, i1, y + o, yStride, next);
            }
        }

        // the W rows left over (fewer than 4): one pair at a time, same order
        for (var o = tileEnd; o < rowEnd; o++)
        {
            var wo = w + ((long)o * cols);
            for (var i = 0; i < xRows; i++)
            {
                y[((long)i * yStride) + o] = Vector256Kernel.Dot(wo, x + ((long)i * cols), cols);
            }
        }
    }

    /// <summary>
    /// One 4-row W tile against X rows [i0, i1): 3-row tiles, then a 2-row tile (two where four rows are left) or a
    /// 1-row tile. y points at column o.
    /// </summary>
    private static void TileColumn256(float* wo, int cols, float* x, int i0, int i1, float* y, int yStride, PrefetchAhead next)
    {
        var i = i0;
        var prefetch = next.Start;
        for (; i + 3 <= i1 && i1 - i != 4; i += 3)
        {
            prefetch = Tile3x4(wo, x + ((long)i * cols), cols, y + ((long)i * yStride), yStride, prefetch, next.End);
        }

        // four rows left: two 2-row tiles, as the 1-row tile's four accumulators wait on the FMA latency
        for (; i + 2 <= i1; i += 2)
        {
            prefetch = Tile2x4(wo, x + ((long)i * cols), cols, y + ((long)i * yStride), yStride, prefetch, next.End);
        }

        if (i1 - i == 1)
        {
            Vector256Kernel.Tile4x1(wo, x + ((long)i * cols), cols, y + ((long)i * yStride));
        }
    }

    /// <summary>
    /// y[i·yStride + r] = w_r·x_i for r in 0..3, i in 0..2. w: 4 rows, x: 3 rows, both of stride cols. Each
    /// iteration asks for one line of [prefetch, prefetchEnd) into L2; returns where the next call goes on.
    /// </summary>
    private static byte* Tile3x4(float* w, float* x, int cols, float* y, int yStride, byte* prefetch, byte* prefetchEnd)
    {
        const int N = 8; // Vector256<float>.Count
        var x0 = x;
        var x1 = x0 + cols;
        var x2 = x1 + cols;

        // cIR: x row I against w row R
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        var kEnd = cols & ~(N - 1);
        for (var j = 0; j < kEnd; j += N)
        {
            if (prefetch < prefetchEnd)
            {
                Simd.PrefetchL2(prefetch);
                prefetch += PrefetchAhead.LineBytes;
            }

            var a0 = Vector256.Load(x0 + j);
            var a1 = Vector256.Load(x1 + j);
            var a2 = Vector256.Load(x2 + j);
            var wj = w + j;

            var b = Vector256.Load(wj);
            c00 = Simd.MulAdd(b, a0, c00);
            c10 = Simd.MulAdd(b, a1, c10);
            c20 = Simd.MulAdd(b, a2, c20);
            b = Vector256.Load(wj + cols);
            c01 = Simd.MulAdd(b, a0, c01);
            c11 = Simd.MulAdd(b, a1, c11);
            c21 = Simd.MulAdd(b, a2, c21);
            b = Vector256.Load(wj + (2L * cols));
            c02 = Simd.MulAdd(b, a0, c02);
            c12 = Simd.MulAdd(b, a1, c12);
            c22 = Simd.MulAdd(b, a2, c22);
            b = Vector256.Load(wj + (3L * cols));
            c03 = Simd.MulAdd(b, a0, c03);
            c13 = Simd.MulAdd(b, a1, c13);
            c23 = Simd.MulAdd(b, a2, c23);
        }

        Finish4(c00, c01, c02, c03, w, x0, cols, kEnd, y);
        Finish4(c10, c11, c12, c13, w, x1, cols, kEnd, y + yStride);
        Finish4(c20, c21, c22, c23, w, x2, cols, kEnd, y + (2L * yStride));
        return prefetch;
    }

    /// <summary>y[i·yStride + r] = w_r·x_i for r in 0..3, i in 0..1, asking for a line of the range per iteration (see <see cref="Tile3x4"/>).</summary>
    private static byte* Tile2x4(float* w, float* x, int cols, float* y, int yStride, byte* prefetch, byte* prefetchEnd)
    {
        const int N = 8;
        var x0 = x;
        var x1 = x0 + cols;
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        var kEnd = cols & ~(N - 1);
        for (var j = 0; j < kEnd; j += N)
        {
            if (prefetch < prefetchEnd)
            {
                Simd.PrefetchL2(prefetch);
                prefetch += PrefetchAhead.LineBytes;
            }

            var a0 = Vector256.Load(x0 + j);
            var a1 = Vector256.Load(x1 + j);
            var wj = w + j;
            var b = Vector256.Load(wj);
            c00 = Simd.MulAdd(b, a0, c00);
            c10 = Simd.MulAdd(b, a1, c10);
            b = Vector256.Load(wj + cols);
            c01 = Simd.MulAdd(b, a0, c01);
            c11 = Simd.MulAdd(b, a1, c11);
            b = Vector256.Load(wj + (2L * cols));
            c02 = Simd.MulAdd(b, a0, c02);
            c12 = Simd.MulAdd(b, a1, c12);
            b = Vector256.Load(wj + (3L * cols));
            c03 = Simd.MulAdd(b, a0, c03);
            c13 = Simd.MulAdd(b, a1, c13);
        }

        Finish4(c00, c01, c02, c03, w, x0, cols, kEnd, y);
        Finish4(c10, c11, c12, c13, w, x1, cols, kEnd, y + yStride);
        return prefetch;
    }

    /// <summary>y[r] = Sum(c_r) plus the columns past kEnd of W row r against x, in ascending order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish4(
        Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3, float* w, float* x, int cols, int kEnd, float* y)
    {
        y[0] = Tail(w, x, kEnd, cols, Vector256.Sum(c0));
        y[1] = Tail(w + cols, x, kEnd, cols, Vector256.Sum(c1));
        y[2] = Tail(w + (2L * cols), x, kEnd, cols, Vector256.Sum(c2));
        y[3] = Tail(w + (3L * cols), x, kEnd, cols, Vector256.Sum(c3));
    }
}
