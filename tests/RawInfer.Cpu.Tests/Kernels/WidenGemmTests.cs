using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// The batched path for F16, BF16 and Q8_0 weights: rows widened to float32 exactly as the file format decodes
/// them, then the F32 GEMM. Checked against the format's reference decoder, against a double-precision product,
/// and for batch invariance (a row's result must not depend on how many X rows share the step or on the split).
/// In the row grouping's collection: the few-row cases switch it.
/// </summary>
[Collection(KernelSwitches.Name)] // sets DecodeRowGrouping.FourRows
public sealed unsafe class WidenGemmTests
{
    public static TheoryData<TensorType, int> WidenCases()
    {
        var data = new TheoryData<TensorType, int>();
        foreach (var cols in new[] { 1, 17, 257, 1025 })
        {
            data.Add(TensorType.F16, cols);
            data.Add(TensorType.BF16, cols);
        }

        foreach (var cols in new[] { 32, 96, 1056 })
        {
            data.Add(TensorType.Q8_0, cols);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(WidenCases))]
    public void Widened_rows_equal_the_format_decoder(TensorType type, int cols)
    {
        const int rows = 5;
        using var w = Encoded.Random(type, rows, cols, seed: cols);
        var widened = new float[rows * cols];
        fixed (float* dst = widened)
        {
            Widen.Rows(w.Tensor, 1, rows - 1, dst); // rows 1..4 into the start of dst
        }

        var expected = new float[cols];
        for (var r = 1; r < rows; r++)
        {
            TensorEncoding.DecodeRow(w.Row(r), type, expected);
            Assert.Equal(expected, widened.AsSpan((r - 1) * cols, cols).ToArray());
        }
    }

    [Theory]
    [InlineData(64)]
    [InlineData(2048)]
    public void Q8_0_rows_widened_from_decoded_scales_equal_the_format_decoder(int cols)
    {
        const int rows = 5;
        using var w = Encoded.Random(TensorType.Q8_0, rows, cols, seed: cols + 1);
        var table = GC.AllocateArray<float>(rows * cols / MatVecQ8_0.BlockElements, pinned: true);
        MatVecQ8_0.DecodeScales(w.Tensor, table);
        var widened = new float[rows * cols];
        fixed (float* dst = widened)
        fixed (float* pt = table)
        {
            Widen.Rows(w.Tensor.WithDecodedScales(pt), 1, rows - 1, dst);
        }

        var expected = new float[cols];
        for (var r = 1; r < rows; r++)
        {
            TensorEncoding.DecodeRow(w.Row(r), TensorType.Q8_0, expected);
            Assert.Equal(expected, widened.AsSpan((r - 1) * cols, cols).ToArray());
        }
    }

    [Theory]
    [InlineData(TensorType.F16, 33, 257)]
    [InlineData(TensorType.BF16, 17, 1025)]
    [InlineData(TensorType.Q8_0, 70, 96)]
    [InlineData(TensorType.Q8_0, 9, 2048)]
    public void Gemm_on_widened_rows_matches_a_double_reference_and_is_batch_invariant(TensorType type, int outRows, int cols)
    {
        using var w = Encoded.Random(type, outRows, cols, seed: 7);
        var decoded = new float[outRows * cols];
        for (var r = 0; r < outRows; r++)
        {
            TensorEncoding.DecodeRow(w.Row(r), type, decoded.AsSpan(r * cols, cols));
        }

        const int xRows = 13;
        var random = new Random(3);
        var x = new float[xRows * cols];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)((random.NextDouble() * 2) - 1);
        }

        var full = new float[xRows * outRows];
        var single = new float[outRows];
        var split = new float[xRows * outRows];
        fixed (float* px = x)
        fixed (float* pFull = full)
        fixed (float* pSingle = single)
        fixed (float* pSplit = split)
        {
            Gemm.Widened(w.Tensor, px, xRows, pFull, 0, outRows);
            Gemm.Widened(w.Tensor, px + (5 * cols), 1, pSingle, 0, outRows); // X row 5 alone
            var cut = outRows / 3;
            Gemm.Widened(w.Tensor, px, xRows, pSplit, 0, cut);               // the rows split as two workers would
            Gemm.Widened(w.Tensor, px, xRows, pSplit, cut, outRows);
        }

        Assert.Equal(full.AsSpan(5 * outRows, outRows).ToArray(), single);
        Assert.Equal(full, split);
        for (var i = 0; i < xRows; i++)
        {
            for (var o = 0; o < outRows; o++)
            {
                double sum = 0, magnitude = 0;
                for (var k = 0; k < cols; k++)
                {
                    var term = (double)decoded[(o * cols) + k] * x[(i * cols) + k];
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                Assert.True(Math.Abs(full[(i * outRows) + o] - sum) <= (1e-5 * magnitude) + 1e-6,
                    $"row {i}, output {o}: {full[(i * outRows) + o]} vs {sum}");
            }
        }
    }

    public static TheoryData<TensorType, int, int, bool, bool> FewRowCases()
    {
        var data = new TheoryData<TensorType, int, int, bool, bool>();
        foreach (var fourRows in new[] { true, false })
        {
            foreach (var (outRows, cols) in new[] { (8, 16), (19, 17), (21, 23), (37, 257), (9, 300), (16, 768), (11, 2048) })
            {
                data.Add(TensorType.F32, outRows, cols, false, fourRows);
                data.Add(TensorType.F16, outRows, cols, false, fourRows);
                data.Add(TensorType.BF16, outRows, cols, false, fourRows);
            }

            foreach (var (outRows, cols) in new[] { (8, 32), (27, 96), (64, 768), (13, 2048) })
            {
                data.Add(TensorType.Q8_0, outRows, cols, false, fourRows);
                data.Add(TensorType.Q8_0, outRows, cols, true, fourRows);
            }
        }

        return data;
    }

    /// <summary>
    /// Up to <see cref="WidenInRegisters.MaxRows"/> X rows take the in-register path (decode steps: 4 for F16 and 32
    /// for BF16 on 512 bits, in register tiles of three; 3 on 256), more take the widened tile: every X row must
    /// get the same bits either way, for whole 8-row W tiles, the edge rows past them, leftover columns and any
    /// split of the W rows between workers; for Q8_0 also when the few-row products read the tensor's decoded
    /// block scales (<see cref="WeightTensor.DecodedScales"/>) and the tile path converts the halves; and for one X
    /// row whether its W rows are walked in lockstep or one after another (<see cref="DecodeRowGrouping"/>).
    /// F32 weights take the F32 GEMM's own few-row tiles. On AVX2 machines F16 and BF16 take the 256-bit in-register
    /// tiles (<see cref="WidenInRegisters.RowsNarrow"/>); Q8_0, whose products there run the integer kernel, widens
    /// tiles at every count.
    /// </summary>
    [Theory]
    [MemberData(nameof(FewRowCases))]
    public void Up_to_the_in_register_limit_x_rows_give_the_bits_of_the_batched_tile_path(TensorType type, int outRows, int cols, bool decodedScales, bool fourRows)
    {
        using var grouping = RowGrouping.Set(fourRows);
        CheckFewRows(type, outRows, cols, decodedScales);
    }

    /// <summary>The widening path for F16, BF16 and Q8_0 (Q8_0's integer kernel has its own tests), the F32 GEMM for F32.</summary>
    private static void Product(in WeightTensor w, float* x, int xRows, float* y, int rowStart, int rowEnd)
    {
        if (w.Type == TensorType.F32)
        {
            Gemm.Rows(in w, x, xRows, y, rowStart, rowEnd);
        }
        else
        {
            Gemm.Widened(in w, x, xRows, y, rowStart, rowEnd);
        }
    }

    private static void CheckFewRows(TensorType type, int outRows, int cols, bool decodedScales)
    {
        using var w = Encoded.Random(type, outRows, cols, seed: outRows + cols);
        var table = GC.AllocateArray<float>(decodedScales ? outRows * cols / MatVecQ8_0.BlockElements : 0, pinned: true);
        var few = w.Tensor;
        if (decodedScales)
        {
            MatVecQ8_0.DecodeScales(w.Tensor, table);
            few = w.Tensor.WithDecodedScales((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(table)));
        }

        var xRows = WidenInRegisters.MaxRows(type) + 3; // past the in-register limit: the tile path
        var random = new Random(outRows);
        var x = new float[xRows * cols];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (float)((random.NextDouble() * 2) - 1) * (i % 5 == 0 ? 8f : 1f);
        }

        var batched = new float[xRows * outRows];
        fixed (float* px = x)
        fixed (float* pBatched = batched)
        {
            Product(w.Tensor, px, xRows, pBatched, 0, outRows);
            for (var count = 1; count <= WidenInRegisters.MaxRows(type); count++)
            {
                for (var first = 0; first + count <= xRows; first += count)
                {
                    var y = new float[count * outRows];
                    fixed (float* py = y)
                    {
                        var cut = Math.Min(outRows, 9); // a split inside the second 8-row tile
                        Product(few, px + (first * cols), count, py, 0, cut);
                        Product(few, px + (first * cols), count, py, cut, outRows);
                    }

                    for (var i = 0; i < count; i++)
                    {
                        var expected = batched.AsSpan((first + i) * outRows, outRows).ToArray();
                        var actual = y.AsSpan(i * outRows, outRows).ToArray();
                        Assert.True(expected.AsSpan().SequenceEqual(actual),
                            $"{count} X rows from {first}, row {i}: first difference at output {FirstDifference(expected, actual)}");
                    }
                }
            }
        }

        Assert.True(type == TensorType.F32 || WidenInRegisters.Supports(type, cols) || !System.Runtime.Intrinsics.X86.Avx512F.IsSupported,
            "this AVX-512 machine should exercise the in-register path");
        Assert.True(
            type is not (TensorType.F16 or TensorType.BF16) || WidenInRegisters.Supports(type, cols)
            || WidenInRegisters.SupportsNarrow(type, cols) || !System.Runtime.Intrinsics.X86.Avx2.IsSupported,
            "this AVX2 machine should exercise an in-register path for F16 and BF16");
    }

    private static int FirstDifference(float[] a, float[] b)
    {
        for (var i = 0; i < a.Length; i++)
        {
            if (BitConverter.SingleToInt32Bits(a[i]) != BitConverter.SingleToInt32Bits(b[i]))
            {
                return i;
            }
        }

        return -1;
    }
}
