using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// The Q8_0 matrix-vector rows (four rows at a time, block scales converted in vectors ahead of the dot loop)
/// must give every row the bits of the one-row kernel <see cref="MatVecQ8_0.DotAvx2"/>, whatever the row range,
/// the block count (whole groups of eight gathered scales or not) and the scale bits (subnormal, negative, zero);
/// and the same bits again when the tensor carries its scales decoded once (<see cref="WeightTensor.DecodedScales"/>),
/// and again one row at a time (<see cref="DecodeRowGrouping"/>), with the scales read from the decoded table or
/// looked up by their halves (<see cref="MatVecQ8_0.ScaleLookup"/>). In the grouping's collection: the switches are global.
/// </summary>
[Collection(KernelSwitches.Name)] // sets MatVecQ8_0.ScaleLookup and DecodeRowGrouping.FourRows
public sealed unsafe class Q8_0ScaledRowsTests
{
    /// <summary>Row counts, block counts and first rows, each with the scales converted per product and read
    /// from the decoded table, four rows at a time and one.</summary>
    public static TheoryData<int, int, int, bool, bool, bool> Cases()
    {
        var cases = new TheoryData<int, int, int, bool, bool, bool>();
        foreach (var fourRows in new[] { true, false })
        {
            foreach (var (decoded, lookup) in new[] { (false, false), (true, false), (false, true), (true, true) })
            {
                foreach (var (rows, blocks, rowStart) in new[] { (1, 1, 0), (7, 7, 1), (9, 8, 3), (13, 9, 2), (33, 24, 5), (10, 64, 0), (6, 65, 1) })
                {
                    cases.Add(rows, blocks, rowStart, decoded, fourRows, lookup);
                }
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rows_give_the_bits_of_the_one_row_kernel(int rows, int blocks, int rowStart, bool decoded, bool fourRows, bool lookup)
    {
        using var grouping = Kernels.RowGrouping.Set(fourRows);
        var savedLookup = MatVecQ8_0.ScaleLookup;
        MatVecQ8_0.ScaleLookup = lookup;
        try
        {
            CheckRows(rows, blocks, rowStart, decoded);
        }
        finally
        {
            MatVecQ8_0.ScaleLookup = savedLookup;
        }
    }

    [Fact]
    public void Decoded_scales_are_the_blocks_halves_as_floats_and_bad_tables_are_refused()
    {
        const int Rows = 3;
        const int Blocks = 12;
        var random = new Random(7);
        var data = (byte*)NativeMemory.AllocZeroed(Rows * Blocks * MatVecQ8_0.BlockBytes);
        try
        {
            for (var b = 0; b < Rows * Blocks; b++)
            {
                *(ushort*)(data + (b * MatVecQ8_0.BlockBytes)) = ScaleBits(random, b);
            }

            var tensor = new WeightTensor(data, TensorType.Q8_0, Rows, Blocks * MatVecQ8_0.BlockElements);
            var table = new float[Rows * Blocks];
            MatVecQ8_0.DecodeScales(tensor, table);
            for (var b = 0; b < table.Length; b++)
            {
                var expected = (float)BitConverter.UInt16BitsToHalf(*(ushort*)(data + (b * MatVecQ8_0.BlockBytes)));
                Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(table[b]), $"block {b}: {table[b]} vs {expected}");
            }

            var shortTable = Assert.Throws<ArgumentException>(() => MatVecQ8_0.DecodeScales(tensor, new float[table.Length - 1]));
            Assert.Contains("36 block scales", shortTable.Message);
            var f32 = new WeightTensor(data, TensorType.F32, 1, 8);
            Assert.Throws<ArgumentException>(() => MatVecQ8_0.DecodeScales(f32, new float[1]));
            fixed (float* pt = table)
            {
                var withTable = tensor.WithDecodedScales(pt);
                Assert.True(withTable.DecodedScales == pt && withTable.Data == data && withTable.Rows == Rows && withTable.Cols == tensor.Cols);
                Assert.True(tensor.DecodedScales == null);
            }
        }
        finally
        {
            NativeMemory.Free(data);
        }
    }

    private static void CheckRows(int rows, int blocks, int rowStart, bool decoded)
    {
        var cols = blocks * MatVecQ8_0.BlockElements;
        var rowBytes = blocks * MatVecQ8_0.BlockBytes;
        var random = new Random((rows * 1000) + blocks);
        var data = (byte*)NativeMemory.Alloc((nuint)(rows * rowBytes));
        try
        {
            for (var b = 0; b < rows * blocks; b++)
            {
                var block = data + (b * MatVecQ8_0.BlockBytes);
                *(ushort*)block = ScaleBits(random, b);
                for (var i = 0; i < MatVecQ8_0.BlockElements; i++)
                {
                    ((sbyte*)block)[2 + i] = (sbyte)random.Next(-127, 128);
                }
            }

            var x = new float[cols];
            for (var i = 0; i < cols; i++)
            {
                x[i] = (float)((random.NextDouble() * 2) - 1) * (i % 3 == 0 ? 10f : 1f);
            }

            var q = new sbyte[cols];
            var xScales = new float[blocks];
            MatVecQ8_0.QuantizeActivations(x, q, xScales);
            var tensor = new WeightTensor(data, TensorType.Q8_0, rows, cols);
            var table = GC.AllocateArray<float>(rows * blocks, pinned: true);
            MatVecQ8_0.DecodeScales(tensor, table);
            var y = new float[rows];
            fixed (float* pt = table)
            {
                MatVecQ8_0.Rows(decoded ? tensor.WithDecodedScales(pt) : tensor, q, xScales, y, rowStart, rows);
            }

            fixed (sbyte* pq = q)
            fixed (float* ps = xScales)
            {
                for (var r = rowStart; r < rows; r++)
                {
                    var expected = Avx2.IsSupported && Fma.IsSupported
                        ? MatVecQ8_0.DotAvx2(data + (r * rowBytes), pq, ps, blocks)
                        : MatVecQ8_0.DotScalar(data + (r * rowBytes), pq, ps, blocks);
                    Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(y[r]),
                        $"row {r}: {y[r]} vs the one-row kernel's {expected}");
                }
            }

            for (var r = 0; r < rowStart; r++)
            {
                Assert.Equal(0f, y[r]); // outside the range: untouched
            }
        }
        finally
        {
            NativeMemory.Free(data);
        }
    }

    /// <summary>Mostly ordinary positive scales, with zero, negative and subnormal ones mixed in (all finite).</summary>
    private static ushort ScaleBits(Random random, int block) => (block % 11) switch
    {
        3 => 0,                                             // an all-zero block's scale
        5 => (ushort)random.Next(1, 0x400),                 // subnormal
        7 => (ushort)(0x8000 | random.Next(0x0400, 0x3C00)), // negative
        _ => (ushort)random.Next(0x1000, 0x2C00),            // 2^-11 .. 2^-4, as trained weights give
    };
}
