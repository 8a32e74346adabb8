using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class GemmF32
{
    /// <summary>Columns per K chunk on the wide-row path: an 8-row W tile chunk is 16 KiB, a 3-row X chunk 6 KiB.</summary>
    private const int KChunk = 512;

    /// <summary>
    /// Bytes of X one block keeps in L2 on the wide-row path. Tried and dropped (2026-12-03, Xeon VM, 2 MiB L2):
    /// 768 KiB, which makes the 64 rows of a batched step one block at the 2,048-wide down projection so each W
    /// tile is packed once, took that product from 106 to 120 GFLOP/s on one thread, but a whole 64-sequence step
    /// on two threads only 0.98–1.01 of the time (<c>step-ab</c>, F32, F16, Q8_0) and a 512-token prefill 1.06.
    /// </summary>
    private const int XBlockBytesWide = 384 * 1024;

    /// <summary>Per-thread scratch: a packed 8-row W tile, then the block's partial accumulators; grown on demand, never freed.</summary>
    [ThreadStatic]
    private static float[]? t_scratch;

    /// <summary>X rows per L2 block on the wide-row path: balanced as in <see cref="XBlockRows"/>, a multiple of 3.</summary>
    internal static int XBlockRowsWide(int cols, int xRows) => BalancedBlock(xRows, Math.Max(3, XBlockBytesWide / (cols * sizeof(float))));

    /// <summary>
    /// The wide-row path of <see cref="Tiled512"/> (an 8-row W tile larger than L1) for twelve or more X rows (below that, packing costs more than it saves).
    /// Rows of 1,280+ floats overflow L1 within one tile, and rows a multiple of 4 KiB apart compete for the
    /// same L1 sets. So per L2-sized X block and 8-row W tile: the tile is packed into a per-thread buffer with
    /// its rows' 16-float chunks interleaved (one sequential stream), and K is walked in chunks of
    /// <see cref="KChunk"/> columns, each chunk of the tile (16 KiB, in L1) passing every 3-row X group of the
    /// block, whose 24 accumulators are parked in a per-thread buffer between chunks. Parking a vector and
    /// reloading it changes no bit, so every pair still sums in <see cref="Tile3x8"/>'s order. The next tile (or
    /// the caller's <paramref name="ahead"/> range) is prefetched as in <see cref="Tiled512"/>, a step per group and chunk.
    /// W rows [rowStart, tileEnd), a whole number of 8-row tiles.
    /// <para>
    /// Tried and dropped (2026-12-05, Zen 5 VM): reading W as it lies instead of packing it (same K chunks, X copied
    /// once per block to a stride of cols + 16 so 8 KiB rows do not share L1 sets; widened tiles kept packed). One
    /// thread on the down projection (768×2,048, same bits): 16 X rows 141–145 against 109–110 GFLOP/s, 64 rows 168–171
    /// against 145, 512 rows 170 against 161, since packing a tile streamed from memory costs about a third of this
    /// path's time. But this path is about a tenth of a batched step, and a whole step on two threads
    /// (<c>step-ab</c>, ABBA) took 0.98 of the time at 16 F32 sequences and 0.98–1.02 at 64, F16 0.99–1.11: not a
    /// change a step could show on this VM.
    /// </para>
    /// </summary>
    private static void PackedWide512(
        float* w, int cols, float* x, int xRows, float* y, int yStride, int rowStart, int tileEnd, PrefetchAhead? ahead)
    {
        const int N = 16; // Vector512<float>.Count
        var kEnd = cols & ~(N - 1);
        var xBlock = XBlockRowsWide(cols, xRows);
        var tileFloats = 8 * kEnd;
        var partialFloats = xBlock / 3 * 24 * N;
        var packed = LineAligned.Start(LineAligned.Scratch(ref t_scratch, tileFloats + partialFloats));
        var partials = (Vector512<float>*)(packed + tileFloats);
        var columns = ((xRows + xBlock - 1) / xBlock) * ((tileEnd - rowStart) / 8);
        var column = 0;
        for (var xStart = 0; xStart < xRows; xStart += xBlock)
        {
            var xEnd = Math.Min(xStart + xBlock, xRows);
            var groups = (xEnd - xStart) / 3;
            for (var o = rowStart; o < tileEnd; o += 8, column++)
            {
                var wo = w + ((long)o * cols);
                var next = NextTile(wo, cols, o + 8 < tileEnd, ahead, column, columns);
                var prefetch = next.Start;
                PackTile(wo, cols, kEnd, packed);
                for (var j0 = 0; j0 < kEnd; j0 += KChunk)
                {
                    var j1 = Math.Min(j0 + KChunk, kEnd);
                    var mode = (j0 == 0 ? 0 : ChunkLoad) | (j1 == kEnd ? ChunkFinal : 0);
                    var wChunk = packed + (j0 * 8);
                    for (var g = 0; g < groups; g++)
                    {
                        var i = xStart + (3 * g);
                        prefetch = Tile3x8Chunk(
                            wChunk, wo, x + ((long)i * cols), cols, j0, j1, kEnd, partials + (24 * g), mode, y + ((long)i * yStride) + o, yStride,
                            prefetch, next.End);
                    }
                }

                TileColumn(wo, cols, x, xStart + (3 * groups), xEnd, y + o, yStride, new PrefetchAhead(prefetch, next.End - prefetch), oneRowStep: false);
            }
        }
    }

    private const int ChunkLoad = 1;  // the accumulators start from the parked partials (else from zero)
    private const int ChunkFinal = 2; // the last chunk: reduce and write y (else park the accumulators)

    /// <summary>Copies one 8-row W tile (first kEnd columns) into packed: chunk j of row r at (j/16)·128 + r·16.</summary>
    private static void PackTile(float* w, int cols, int kEnd, float* packed)
    {
        const int N = 16; // Vector512<float>.Count
        var dst = packed;
        for (var j = 0; j < kEnd; j += N, dst += 8 * N)
        {
            for (var r = 0; r < 8; r++)
            {
                Vector512.Load(w + ((long)r * cols) + j).StoreAligned(dst + (r * N));
            }
        }
    }

    /// <summary>
    /// Columns [j0, j1) of <see cref="Tile3x8"/>: wp is the packed tile at chunk j0 (chunk j of row r at
    /// ((j−j0)/16)·128 + r·16); x the three X rows as they lie; acc the group's 24 parked accumulators. On the
    /// final chunk the sums are reduced, the tail columns past kEnd added from w and x, and y written. Each
    /// iteration asks for one line of [prefetch, prefetchEnd) into L2; returns where the next call goes on.
    /// </summary>
    private static byte* Tile3x8Chunk(
        float* wp, float* w, float* x, int cols, int j0, int j1, int kEnd, Vector512<float>* acc, int mode, float* y, int yStride,
        byte* prefetch, byte* prefetchEnd)
    {
        const int N = 16; // Vector512<float>.Count
        Debug.Assert(((nint)wp & 63) == 0);
        var x0 = x;
        var x1 = x0 + cols;
        var x2 = x1 + cols;
        Vector512<float> c00 = default, c01 = default, c02 = default, c03 = default, c04 = default, c05 = default, c06 = default, c07 = default;
        Vector512<float> c10 = default, c11 = default, c12 = default, c13 = default, c14 = default, c15 = default, c16 = default, c17 = default;
        Vector512<float> c20 = default, c21 = default, c22 = default, c23 = default, c24 = default, c25 = default, c26 = default, c27 = default;
        if ((mode & ChunkLoad) != 0)
        {
            c00 = acc[0]; c01 = acc[1]; c02 = acc[2]; c03 = acc[3]; c04 = acc[4]; c05 = acc[5]; c06 = acc[6]; c07 = acc[7];
            c10 = acc[8]; c11 = acc[9]; c12 = acc[10]; c13 = acc[11]; c14 = acc[12]; c15 = acc[13]; c16 = acc[14]; c17 = acc[15];
            c20 = acc[16]; c21 = acc[17]; c22 = acc[18]; c23 = acc[19]; c24 = acc[20]; c25 = acc[21]; c26 = acc[22]; c27 = acc[23];
        }

        var b0 = wp;
        for (var j = j0; j < j1; j += N, b0 += 8 * N)
        {
            if (prefetch < prefetchEnd)
            {
                Simd.PrefetchL2(prefetch);
                prefetch += PrefetchAhead.LineBytes;
            }

            var a0 = Vector512.Load(x0 + j);
            var a1 = Vector512.Load(x1 + j);
            var a2 = Vector512.Load(x2 + j);

            var b = Vector512.LoadAligned(b0);
            c00 = Avx512F.FusedMultiplyAdd(b, a0, c00);
            c10 = Avx512F.FusedMultiplyAdd(b, a1, c10);
            c20 = Avx512F.FusedMultiplyAdd(b, a2, c20);
            b = Vector512.LoadAligned(b0 + N);
            c01 = Avx512F.FusedMultiplyAdd(b, a0, c01);
            c11 = Avx512F.FusedMultiplyAdd(b, a1, c11);
            c21 = Avx512F.FusedMultiplyAdd(b, a2, c21);
            b = Vector512.LoadAligned(b0 + (2 * N));
            c02 = Avx512F.FusedMultiplyAdd(b, a0, c02);
            c12 = Avx512F.FusedMultiplyAdd(b, a1, c12);
            c22 = Avx512F.FusedMultiplyAdd(b, a2, c22);
            b = Vector512.LoadAligned(b0 + (3 * N));
            c03 = Avx512F.FusedMultiplyAdd(b, a0, c03);
            c13 = Avx512F.FusedMultiplyAdd(b, a1, c13);
            c23 = Avx512F.FusedMultiplyAdd(b, a2, c23);
            b = Vector512.LoadAligned(b0 + (4 * N));
            c04 = Avx512F.FusedMultiplyAdd(b, a0, c04);
            c14 = Avx512F.FusedMultiplyAdd(b, a1, c14);
            c24 = Avx512F.FusedMultiplyAdd(b, a2, c24);
            b = Vector512.LoadAligned(b0 + (5 * N));
            c05 = Avx512F.FusedMultiplyAdd(b, a0, c05);
            c15 = Avx512F.FusedMultiplyAdd(b, a1, c15);
            c25 = Avx512F.FusedMultiplyAdd(b, a2, c25);
            b = Vector512.LoadAligned(b0 + (6 * N));
            c06 = Avx512F.FusedMultiplyAdd(b, a0, c06);
            c16 = Avx512F.FusedMultiplyAdd(b, a1, c16);
            c26 = Avx512F.FusedMultiplyAdd(b, a2, c26);
            b = Vector512.LoadAligned(b0 + (7 * N));
            c07 = Avx512F.FusedMultiplyAdd(b, a0, c07);
            c17 = Avx512F.FusedMultiplyAdd(b, a1, c17);
            c27 = Avx512F.FusedMultiplyAdd(b, a2, c27);
        }

        if ((mode & ChunkFinal) != 0)
        {
            Finish8(Reduce8(c00, c01, c02, c03, c04, c05, c06, c07), w, x0, cols, kEnd, y);
            Finish8(Reduce8(c10, c11, c12, c13, c14, c15, c16, c17), w, x1, cols, kEnd, y + yStride);
            Finish8(Reduce8(c20, c21, c22, c23, c24, c25, c26, c27), w, x2, cols, kEnd, y + (2L * yStride));
        }
        else
        {
            acc[0] = c00; acc[1] = c01; acc[2] = c02; acc[3] = c03; acc[4] = c04; acc[5] = c05; acc[6] = c06; acc[7] = c07;
            acc[8] = c10; acc[9] = c11; acc[10] = c12; acc[11] = c13; acc[12] = c14; acc[13] = c15; acc[14] = c16; acc[15] = c17;
            acc[16] = c20; acc[17] = c21; acc[18] = c22; acc[19] = c23; acc[20] = c24; acc[21] = c25; acc[22] = c26; acc[23] = c27;
        }

        return prefetch;
    }
}
