using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// The packed tiles (<see cref="Packed"/>, <see cref="Packed256"/>) made from the interleaved rows
/// (<see cref="WeightTensor.Interleaved"/>) where a tensor has them. A group's column quad of eight rows is one
/// 32-byte load that, sign-extended, already holds the eight rows' two column pairs side by side: one permutation
/// sorts them into the packed layout, with no transpose. Rows past the tile's whole groups (the last rows of a matrix
/// whose rows are not a multiple of eight) are read in the file's layout; rows past the tile, zero. The tile and its
/// scales are the file layout's packing value for value, so every output keeps its bits.
/// </summary>
internal static unsafe partial class GemmQ8_0
{
    /// <summary>
    /// True: packed tiles are made from the interleaved rows where the tensor has them and the range starts on a
    /// group (settable for benchmarks: the same bits either way, between products). Rows rewritten in place are
    /// always packed from the groups, whatever this says and wherever the range starts.
    /// </summary>
    internal static bool PackFromGroups { get; set; } = true;

    /// <summary>True when the packed tile starting at row <paramref name="r0"/> of <paramref name="w"/> is made from its interleaved rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool PacksGroups(in WeightTensor w, int r0) =>
        w.Interleaved is not null && ((PackFromGroups && (r0 & 7) == 0) || w.InterleavedInPlace);

    /// <summary>
    /// Packs the tile of rows [r0, r0 + rows) into the layout <see cref="Pack"/> writes (packed[((b·16 + p)·32) + j]
    /// = row j's columns 32b + 2p and 32b + 2p + 1 as two int16): rows in the matrix's whole groups from the
    /// interleaved rows, its last rows past them from the file's layout, zero past <paramref name="rows"/>; a slot of
    /// eight tile rows that is not one whole group (r0 not a multiple of 8, or the matrix's last rows) row by row.
    /// packed: (blocks, 16, 32) int32
    /// </summary>
    private static void PackGroups(in WeightTensor w, int r0, int rows, int blocks, int* packed)
    {
        var rowBytes = (long)blocks * MatVecQ8_0.BlockBytes;
        var groupsEnd = w.Rows & ~7;
        var wide = Wide;
        for (var s = 0; s < TileRows / 8; s++)
        {
            var first = r0 + (s * 8);
            var valid = Math.Clamp(rows - (s * 8), 0, 8); // rows of the tile in this slot; the rest are zero
            var whole = valid > 0 && (first & 7) == 0 && first + 8 <= groupsEnd;
            for (var b = 0; b < blocks; b++)
            {
                var dst = packed + (b * Pairs * TileRows) + (s * 8);
                if (whole)
                {
                    var quads = w.Interleaved + (first * rowBytes) + ((long)b * GroupQuantBytes);
                    if (wide)
                    {
                        GroupBlock512(quads, dst);
                    }
                    else
                    {
                        GroupBlock256(quads, dst);
                    }

                    for (var j = valid; j < 8; j++)
                    {
                        for (var p = 0; p < Pairs; p++)
                        {
                            dst[(p * TileRows) + j] = 0;
                        }
                    }

                    continue;
                }

                for (var p = 0; p < Pairs; p++)
                {
                    Vector256<int>.Zero.Store(dst + (p * TileRows));
                }

                // a slot that is not one whole group (the matrix's last rows, past its whole groups, in the file's
                // layout; or rows of two groups, where a range starts inside one), row by row
                for (var j = 0; j < valid; j++)
                {
                    var row = first + j;
                    for (var p = 0; p < Pairs; p++)
                    {
                        uint low, high;
                        if (row < groupsEnd)
                        {
                            var at = w.Interleaved + ((row & ~7) * rowBytes) + ((long)b * GroupQuantBytes) + ((p >> 1) * QuadBytes) + ((row & 7) * 4) + ((p & 1) * 2);
                            low = (ushort)(sbyte)(at[0] ^ 0x80);
                            high = (ushort)(sbyte)(at[1] ^ 0x80);
                        }
                        else
                        {
                            var q = (sbyte*)(w.Data + (row * rowBytes) + (b * MatVecQ8_0.BlockBytes) + 2);
                            low = (ushort)q[2 * p];
                            high = (ushort)q[(2 * p) + 1];
                        }

                        dst[(p * TileRows) + j] = (int)(low | (high << 16));
                    }
                }
            }
        }
    }

    /// <summary>
    /// One block of one group into the packed layout, 512 bits: each quad's eight rows widened to sixteen int32
    /// (row j's pair 2k at lane 2j, pair 2k + 1 at 2j + 1), the even lanes then the odd ones. dst: the group's first
    /// row in the block's pair 0
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupBlock512(byte* quads, int* dst)
    {
        var excess = Vector256.Create((byte)0x80);
        var evenOdd = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
        for (var k = 0; k < 8; k++)
        {
            var q = (Vector256.Load(quads + (k * QuadBytes)) ^ excess).AsSByte();
            var pairs = Avx512F.PermuteVar16x32(Avx512BW.ConvertToVector512Int16(q).AsInt32(), evenOdd);
            pairs.GetLower().Store(dst + (2 * k * TileRows));
            pairs.GetUpper().Store(dst + (((2 * k) + 1) * TileRows));
        }
    }

    /// <summary>As <see cref="GroupBlock512"/> on AVX2: rows 0–3 and 4–7 widened apart, then their lanes sorted and joined.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void GroupBlock256(byte* quads, int* dst)
    {
        var excess = Vector256.Create((byte)0x80);
        var evenOdd = Vector256.Create(0, 2, 4, 6, 1, 3, 5, 7);
        for (var k = 0; k < 8; k++)
        {
            var q = (Vector256.Load(quads + (k * QuadBytes)) ^ excess).AsSByte();
            var low = Avx2.PermuteVar8x32(Avx2.ConvertToVector256Int16(q.GetLower()).AsInt32(), evenOdd);  // rows 0–3: pair 2k, then 2k + 1
            var high = Avx2.PermuteVar8x32(Avx2.ConvertToVector256Int16(q.GetUpper()).AsInt32(), evenOdd); // rows 4–7
            Avx2.Permute2x128(low, high, 0x20).Store(dst + (2 * k * TileRows));
            Avx2.Permute2x128(low, high, 0x31).Store(dst + (((2 * k) + 1) * TileRows));
        }
    }

    /// <summary>
    /// Row <paramref name="row"/>'s fp16 scale of block <paramref name="b"/> as float32, from its group when the row is
    /// in one of the interleaved rows' whole groups, else from the file's layout.
    /// </summary>
    private static float RowScale(in WeightTensor w, int row, int blocks, int b) => HalfConversion.FiniteHalfToSingle(RowScaleBits(in w, row, blocks, b));

    /// <summary>
    /// The fp16 bits of row <paramref name="row"/>'s scale of block <paramref name="b"/>: among its group's scales
    /// when the row is in one of the interleaved rows' whole groups, else in the file's block.
    /// </summary>
    internal static ushort RowScaleBits(in WeightTensor w, int row, int blocks, int b)
    {
        var rowBytes = (long)blocks * MatVecQ8_0.BlockBytes;
        return row < (w.Rows & ~7)
            ? *(ushort*)(w.Interleaved + ((row & ~7) * rowBytes) + ((long)blocks * GroupQuantBytes) + (b * 16) + ((row & 7) * 2))
            : *(ushort*)(w.Data + (row * rowBytes) + (b * MatVecQ8_0.BlockBytes));
    }

    /// <summary>
    /// The scales of the tile's group slot <paramref name="slot"/> for block <paramref name="b"/> from the group's own
    /// fp16 scales. r0: the tile's first row, a multiple of 8
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GroupScales(in WeightTensor w, int r0, int slot, int blocks, int b)
    {
        var group = w.Interleaved + ((r0 + (slot * 8)) * (long)blocks * MatVecQ8_0.BlockBytes);
        return HalfConversion.FiniteHalfToSingle(Avx2.ConvertToVector256Int32((ushort*)(group + ((long)blocks * GroupQuantBytes) + (b * 16))).AsUInt32());
    }
}
