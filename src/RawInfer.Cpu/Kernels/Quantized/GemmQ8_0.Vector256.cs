using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// The packed tiles on AVX2 alone (no AVX-512 BW): the same packed layout, each 32-row tile multiplied as two
/// halves of 16 W rows (two 8-lane registers) against up to <see cref="XStep256"/> X rows, so that the integer
/// accumulators, the W pair and the X broadcast fit the 16 registers; the float chains live in a small buffer,
/// touched once a block. Every output is the definition's (<see cref="DotReference"/>): the integer block sums
/// are exact whatever the register width, and each chain takes its blocks in order with the same operations, so
/// this path gives the 512-bit path's bits. Without it, a machine without AVX-512 widened Q8_0 to float32 for
/// the engine while <see cref="MatVecQ8_0"/> quantized X for <c>CpuTransformer</c>, and the two disagreed by the
/// quantization error (found on the 2-core EPYC VM of family 17h, Zen 1, 2026-12-06).
/// </summary>
internal static unsafe partial class GemmQ8_0
{
    /// <summary>X rows per AVX2 register tile: 2·4 integer accumulators, two W registers and a broadcast.</summary>
    private const int XStep256 = 4;

    /// <summary>W rows in one 8-lane register.</summary>
    private const int Lanes256 = 8;

    /// <summary>As <see cref="Packed"/>, with 256-bit registers. pX: X quantized and widened to int16.</summary>
    private static void Packed256(in WeightTensor w, short* pX, float* pXScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        var cols = w.Cols;
        var blocks = cols / Block;
        var pPacked = LineAligned.Start(LineAligned.Scratch(ref t_packed, blocks * Pairs * TileRows));
        var pScales = LineAligned.Start(LineAligned.Scratch(ref t_tileScales, blocks * TileRows));
        var chains = stackalloc float[XStep256 * Half];
        var rowBytes = (long)blocks * MatVecQ8_0.BlockBytes;
        var groups = PacksGroups(in w, rowStart);
        var source = groups ? w.Interleaved : w.Data;
        for (var r0 = rowStart; r0 < rowEnd; r0 += TileRows)
        {
            var rows = Math.Min(TileRows, rowEnd - r0);
            if (groups)
            {
                PackGroups(in w, r0, rows, blocks, pPacked);
            }
            else
            {
                Pack256(w.Data + (r0 * rowBytes), rowBytes, rows, blocks, pPacked);
            }

            TileScales(in w, r0, rows, blocks, pScales, groups);

            var ahead = new PrefetchAhead(source + ((r0 + rows) * rowBytes), Math.Min(TileRows, rowEnd - r0 - rows) * rowBytes);
            var halves = rows > Half ? 2 : 1;
            var perHalf = (xRows + XStep256 - 1) / XStep256;
            var call = 0;
            for (var half = 0; half < halves; half++)
            {
                var valid = Math.Min(Half, rows - (half * Half));
                var pw = pPacked + (half * Half);
                var pd = pScales + (half * Half);
                var t = 0;
                for (; t + XStep256 <= xRows; t += XStep256, call++)
                {
                    Tile256<Four>(pw, pd, blocks, pX + ((long)t * cols), pXScales + ((long)t * blocks), cols, y + ((long)t * yStride) + r0 + (half * Half), yStride, valid, chains, ahead.Part(call, halves * perHalf));
                }

                if (t == xRows)
                {
                    continue;
                }

                var px = pX + ((long)t * cols);
                var ps = pXScales + ((long)t * blocks);
                var py = y + ((long)t * yStride) + r0 + (half * Half);
                var part = ahead.Part(call++, halves * perHalf);
                switch (xRows - t)
                {
                    case 3:
                        Tile256<Three>(pw, pd, blocks, px, ps, cols, py, yStride, valid, chains, part);
                        break;
                    case 2:
                        Tile256<Two>(pw, pd, blocks, px, ps, cols, py, yStride, valid, chains, part);
                        break;
                    default:
                        Tile256<One>(pw, pd, blocks, px, ps, cols, py, yStride, valid, chains, part);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// As <see cref="Pack"/>, on AVX2: for each block, eight rows' eight column pairs at a time, each row's 16 quants
    /// widened to int16 straight from W (eight int32 pairs) and the 8×8 block transposed into place; zero for rows
    /// past <paramref name="count"/>. rows: W bytes from the tile's first row; packed: (blocks, 16, 32) int32
    /// </summary>
    private static void Pack256(byte* rows, long rowBytes, int count, int blocks, int* packed)
    {
        var a = stackalloc Vector256<int>[Lanes256];
        for (var b = 0; b < blocks; b++)
        {
            var src = rows + 2 + (b * MatVecQ8_0.BlockBytes);
            for (var group = 0; group < TileRows / Lanes256; group++)
            {
                for (var pairs = 0; pairs < Pairs; pairs += Lanes256)
                {
                    for (var r = 0; r < Lanes256; r++)
                    {
                        var j = (group * Lanes256) + r;
                        a[r] = j < count
                            ? Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(src + (j * rowBytes) + (2 * pairs)))).AsInt32()
                            : Vector256<int>.Zero;
                    }

                    Transpose8(a, packed + (((b * Pairs) + pairs) * TileRows) + (group * Lanes256));
                }
            }
        }
    }

    /// <summary>An 8×8 int32 transpose: dst[k·32 + r] = a[r][k] (dst rows 32 ints apart, the packed layout's pair stride).</summary>
    private static void Transpose8(Vector256<int>* a, int* dst)
    {
        var t0 = Avx2.UnpackLow(a[0], a[1]);  // r0c0 r1c0 r0c1 r1c1 | r0c4 r1c4 r0c5 r1c5
        var t1 = Avx2.UnpackHigh(a[0], a[1]); // columns 2, 3 | 6, 7
        var t2 = Avx2.UnpackLow(a[2], a[3]);
        var t3 = Avx2.UnpackHigh(a[2], a[3]);
        var t4 = Avx2.UnpackLow(a[4], a[5]);
        var t5 = Avx2.UnpackHigh(a[4], a[5]);
        var t6 = Avx2.UnpackLow(a[6], a[7]);
        var t7 = Avx2.UnpackHigh(a[6], a[7]);
        var u0 = Avx2.UnpackLow(t0.AsInt64(), t2.AsInt64()).AsInt32();  // rows 0..3 of column 0 | of column 4
        var u1 = Avx2.UnpackHigh(t0.AsInt64(), t2.AsInt64()).AsInt32(); // column 1 | 5
        var u2 = Avx2.UnpackLow(t1.AsInt64(), t3.AsInt64()).AsInt32();  // column 2 | 6
        var u3 = Avx2.UnpackHigh(t1.AsInt64(), t3.AsInt64()).AsInt32(); // column 3 | 7
        var u4 = Avx2.UnpackLow(t4.AsInt64(), t6.AsInt64()).AsInt32();  // rows 4..7 likewise
        var u5 = Avx2.UnpackHigh(t4.AsInt64(), t6.AsInt64()).AsInt32();
        var u6 = Avx2.UnpackLow(t5.AsInt64(), t7.AsInt64()).AsInt32();
        var u7 = Avx2.UnpackHigh(t5.AsInt64(), t7.AsInt64()).AsInt32();
        Avx2.Permute2x128(u0, u4, 0x20).Store(dst);
        Avx2.Permute2x128(u1, u5, 0x20).Store(dst + TileRows);
        Avx2.Permute2x128(u2, u6, 0x20).Store(dst + (2 * TileRows));
        Avx2.Permute2x128(u3, u7, 0x20).Store(dst + (3 * TileRows));
        Avx2.Permute2x128(u0, u4, 0x31).Store(dst + (4 * TileRows));
        Avx2.Permute2x128(u1, u5, 0x31).Store(dst + (5 * TileRows));
        Avx2.Permute2x128(u2, u6, 0x31).Store(dst + (6 * TileRows));
        Avx2.Permute2x128(u3, u7, 0x31).Store(dst + (7 * TileRows));
    }

    /// <summary>
    /// One AVX2 register tile: 16 packed W rows (two registers) against <typeparamref name="TRows"/> X rows, every
    /// block's 16 pairs into int32 accumulators, then each block's sums converted and scaled into the float chains
    /// (<paramref name="chains"/>, 16 floats per X row). packed, scales: the tile's layout from its 16-row half;
    /// qx: TRows rows of (cols) int16; xScales: TRows rows of (blocks); y: TRows rows of yStride, columns
    /// [0, valid) written.
    /// </summary>
    private static void Tile256<TRows>(
        int* packed, float* scales, int blocks, short* qx, float* xScales, int cols, float* y, int yStride, int valid, float* chains, PrefetchAhead ahead)
        where TRows : IRowCount
    {
        var line = ahead.Start;
        var linesPerBlock = (int)((ahead.Bytes + ((long)blocks * PrefetchAhead.LineBytes) - 1) / ((long)blocks * PrefetchAhead.LineBytes));
        var n = TRows.Value;
        var x0 = (int*)qx;
        var x1 = (int*)(qx + (n > 1 ? 1 * cols : 0));
        var x2 = (int*)(qx + (n > 2 ? 2 * cols : 0));
        var x3 = (int*)(qx + (n > 3 ? 3 * cols : 0));
        var s1 = xScales + (n > 1 ? 1 * blocks : 0);
        var s2 = xScales + (n > 2 ? 2 * blocks : 0);
        var s3 = xScales + (n > 3 ? 3 * blocks : 0);
        new Span<float>(chains, n * Half).Clear();
        for (var b = 0; b < blocks; b++)
        {
            Vector256<int> i00 = default, i01 = default, i10 = default, i11 = default;
            Vector256<int> i20 = default, i21 = default, i30 = default, i31 = default;
            var pw = packed + (b * Pairs * TileRows);
            var c = b * Pairs;
            for (var i = 0; i < linesPerBlock && line < ahead.End; i++, line += PrefetchAhead.LineBytes)
            {
                Simd.PrefetchL2(line);
            }

            for (var p = 0; p < Pairs; p++)
            {
                var w0 = Vector256.Load(pw + (p * TileRows)).AsInt16();
                var w1 = Vector256.Load(pw + (p * TileRows) + Lanes256).AsInt16();
                var v = Vector256.Create(x0[c + p]).AsInt16();
                i00 += Avx2.MultiplyAddAdjacent(w0, v);
                i01 += Avx2.MultiplyAddAdjacent(w1, v);
                if (n > 1)
                {
                    v = Vector256.Create(x1[c + p]).AsInt16();
                    i10 += Avx2.MultiplyAddAdjacent(w0, v);
                    i11 += Avx2.MultiplyAddAdjacent(w1, v);
                }

                if (n > 2)
                {
                    v = Vector256.Create(x2[c + p]).AsInt16();
                    i20 += Avx2.MultiplyAddAdjacent(w0, v);
                    i21 += Avx2.MultiplyAddAdjacent(w1, v);
                }

                if (n > 3)
                {
                    v = Vector256.Create(x3[c + p]).AsInt16();
                    i30 += Avx2.MultiplyAddAdjacent(w0, v);
                    i31 += Avx2.MultiplyAddAdjacent(w1, v);
                }
            }

            var d0 = Vector256.Load(scales + (b * TileRows));
            var d1 = Vector256.Load(scales + (b * TileRows) + Lanes256);
            Scale256(i00, i01, d0, d1, xScales[b], chains);
            if (n > 1)
            {
                Scale256(i10, i11, d0, d1, s1[b], chains + Half);
            }

            if (n > 2)
            {
                Scale256(i20, i21, d0, d1, s2[b], chains + (2 * Half));
            }

            if (n > 3)
            {
                Scale256(i30, i31, d0, d1, s3[b], chains + (3 * Half));
            }
        }

        for (var t = 0; t < n; t++)
        {
            new ReadOnlySpan<float>(chains + (t * Half), valid).CopyTo(new Span<float>(y + ((long)t * yStride), valid));
        }
    }

    /// <summary>The definition's step for one block of 16 W rows: chain + (float)dot · (d_w·d_x), lane by lane. chain: (16)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale256(Vector256<int> low, Vector256<int> high, Vector256<float> dLow, Vector256<float> dHigh, float dx, float* chain)
    {
        var x = Vector256.Create(dx);
        Fma.MultiplyAdd(Avx.ConvertToVector256Single(low), dLow * x, Vector256.Load(chain)).Store(chain);
        Fma.MultiplyAdd(Avx.ConvertToVector256Single(high), dHigh * x, Vector256.Load(chain + Lanes256)).Store(chain + Lanes256);
    }
}
