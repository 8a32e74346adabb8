using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// F16 product matrices whose halves the CPU backend scaled by 2^10 in place (<see cref="CpuWeightLayout.ScaleHalves"/>,
/// <see cref="WeightTensor.HalvesScaled"/>): the scaling is exact and leaves no subnormal half; every product of the
/// scaled tensor gives the bits of the file's halves, through the in-register kernel (inputs scaled by 2^102), its
/// widening fallback for inputs of 2^25 or more, and the widened tiles of many X rows; kernels that read the file's
/// halves refuse the tensor. In the row grouping's collection: the few-row cases switch it.
/// </summary>
[Collection(KernelSwitches.Name)] // sets DecodeRowGrouping.FourRows
public sealed unsafe class ScaledHalvesTests
{
    /// <summary>A random F16 tensor with zeros, subnormals of either sign and halves just below 64 planted among its values.</summary>
    private static Encoded WithEdges(int rows, int cols, int seed)
    {
        var w = Encoded.Random(TensorType.F16, rows, cols, seed);
        var halves = (ushort*)w.Tensor.Data;
        var random = new Random(seed);
        for (long i = 0; i < w.Tensor.ElementCount; i += 1 + random.Next(9))
        {
            halves[i] = (random.Next(4)) switch
            {
                0 => (ushort)random.Next(1, 0x400),             // a positive subnormal
                1 => (ushort)(0x8000 | random.Next(1, 0x400)),  // a negative one
                2 => (ushort)(random.Next(2) << 15),            // ±0
                _ => (ushort)(0x53FF | (random.Next(2) << 15)), // ±63.97, the largest scalable magnitude
            };
        }

        return w;
    }

    [Theory]
    [InlineData(5, 333)]
    [InlineData(1031, 1021)] // two whole pieces of CpuWeightLayout.PieceHalves and a partial third
    public void Scaling_multiplies_every_half_by_1024_exactly_and_leaves_no_subnormal(int rows, int cols)
    {
        using var original = WithEdges(rows, cols, seed: 1);
        using var scaled = WithEdges(rows, cols, seed: 1);
        Assert.True(CpuWeightLayout.HalvesScalable(scaled.Tensor));
        CpuWeightLayout.ScaleHalves(scaled.Tensor);
        var before = (ushort*)original.Tensor.Data;
        var after = (ushort*)scaled.Tensor.Data;
        var subnormals = 0;
        for (long i = 0; i < original.Tensor.ElementCount; i++)
        {
            var value = (float)BitConverter.UInt16BitsToHalf(before[i]);
            subnormals += (before[i] & 0x7C00) == 0 && (before[i] & 0x3FF) != 0 ? 1 : 0;
            Assert.Equal(BitConverter.SingleToInt32Bits(value * 1024), BitConverter.SingleToInt32Bits((float)BitConverter.UInt16BitsToHalf(after[i])));
            Assert.True((after[i] & 0x7C00) != 0 || (after[i] & 0x3FF) == 0, $"half {i} is still subnormal: {after[i]:X4}");
        }

        Assert.True(subnormals > 100, "the test tensor should hold subnormal halves");
    }

    [Theory]
    [InlineData((ushort)0x5400, false)] // 64
    [InlineData((ushort)0xD400, false)] // -64
    [InlineData((ushort)0x7BFF, false)] // 65504
    [InlineData((ushort)0x53FF, true)]  // 63.97
    [InlineData((ushort)0xD3FF, true)]
    public void Only_tensors_whose_halves_are_all_below_64_are_scalable(ushort planted, bool scalable)
    {
        foreach (var at in new[] { 0, 37, 95 }) // in the vector loop and in the tail
        {
            using var w = Encoded.Random(TensorType.F16, 3, 32, seed: at);
            ((ushort*)w.Tensor.Data)[at] = planted;
            Assert.Equal(scalable, CpuWeightLayout.HalvesScalable(w.Tensor));
        }
    }

    [Fact]
    public void A_half_of_64_in_any_piece_of_a_large_matrix_makes_it_unscalable()
    {
        using var w = WithEdges(1031, 1021, seed: 2);
        var halves = (ushort*)w.Tensor.Data;
        Assert.True(CpuWeightLayout.HalvesScalable(w.Tensor));
        var pieceEnds = new[] { CpuWeightLayout.PieceHalves, 2 * CpuWeightLayout.PieceHalves, w.Tensor.ElementCount };
        foreach (var at in pieceEnds.SelectMany(end => new[] { end - 1, end - 40 }))
        {
            var kept = halves[at];
            halves[at] = 0xD400; // -64
            Assert.False(CpuWeightLayout.HalvesScalable(w.Tensor), $"a -64 at half {at} went unseen");
            halves[at] = kept;
        }
    }

    [Fact]
    public void Inputs_are_scaled_by_2_to_the_102_unless_one_reaches_2_to_the_25_or_is_not_finite()
    {
        var x = new float[37];
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (i - 18) * 1.5e6f;
        }

        var scaled = new float[x.Length];
        fixed (float* px = x)
        fixed (float* ps = scaled)
        {
            Assert.True(WidenInRegisters.ScaleInput(px, x.Length, ps));
            for (var i = 0; i < x.Length; i++)
            {
                Assert.Equal(x[i] * MathF.ScaleB(1, 102), scaled[i]);
            }

            foreach (var at in new[] { 3, 36 }) // in the vector loop and in the tail
            {
                foreach (var bad in new[] { 33554432f, -33554432f, float.NaN, float.PositiveInfinity })
                {
                    var saved = x[at];
                    x[at] = bad;
                    Assert.False(WidenInRegisters.ScaleInput(px, x.Length, ps), $"{bad} at {at}");
                    x[at] = saved;
                }
            }
        }
    }

    public static TheoryData<int, int, bool> ProductCases()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (var fourRows in new[] { true, false })
        {
            foreach (var (outRows, cols) in new[] { (8, 16), (19, 17), (21, 100), (16, 768), (11, 2048) })
            {
                data.Add(outRows, cols, fourRows);
            }
        }

        return data;
    }

    /// <summary>
    /// Every X row count from one past the in-register limit (the widened tiles), each split inside the second 8-row
    /// tile, with an input of 2^26 (the fallback) in one run: the scaled tensor's outputs are the file halves' bit for bit.
    /// </summary>
    [Theory]
    [MemberData(nameof(ProductCases))]
    public void Products_of_scaled_halves_give_the_bits_of_the_files_halves(int outRows, int cols, bool fourRows)
    {
        Assert.SkipUnless(WidenInRegisters.Supports(TensorType.F16, cols), "no AVX-512 in-register kernels here: halves are never scaled");
        using var grouping = RowGrouping.Set(fourRows);
        using var file = WithEdges(outRows, cols, seed: outRows + cols);
        using var copy = WithEdges(outRows, cols, seed: outRows + cols);
        CpuWeightLayout.ScaleHalves(copy.Tensor);
        var scaled = copy.Tensor.WithHalvesScaled();
        var random = new Random(cols);
        foreach (var huge in new[] { false, true })
        {
            for (var xRows = 1; xRows <= WidenInRegisters.MaxRows(TensorType.F16) + 3; xRows++)
            {
                var x = new float[xRows * cols];
                for (var i = 0; i < x.Length; i++)
                {
                    x[i] = (float)((random.NextDouble() * 2) - 1) * (i % 5 == 0 ? 8f : 1f);
                }

                if (huge)
                {
                    x[x.Length / 2] = 67108864f; // 2^26: the products take the widening path
                }

                var expected = new float[xRows * outRows];
                var actual = new float[xRows * outRows];
                fixed (float* px = x)
                fixed (float* pe = expected)
                fixed (float* pa = actual)
                {
                    var cut = Math.Min(outRows, 9);
                    Gemm.Widened(file.Tensor, px, xRows, pe, 0, cut);
                    Gemm.Widened(file.Tensor, px, xRows, pe, cut, outRows);
                    Gemm.Widened(scaled, px, xRows, pa, 0, cut);
                    Gemm.Widened(scaled, px, xRows, pa, cut, outRows);
                }

                for (var i = 0; i < expected.Length; i++)
                {
                    Assert.True(BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                        $"{xRows} X rows{(huge ? " with 2^26" : "")}: output {i} is {actual[i]:R}, the file's halves give {expected[i]:R}");
                }

                // the matrix-vector route (CpuTransformer's) takes the same kernel
                if (xRows == 1)
                {
                    var y = new float[outRows];
                    MatVec.Rows(scaled, x, y, 0, outRows);
                    Assert.Equal(expected, y);
                }
            }
        }
    }

    [Fact]
    public void Kernels_that_read_the_files_halves_refuse_a_scaled_tensor()
    {
        using var copy = Encoded.Random(TensorType.F16, 8, 64, seed: 3);
        CpuWeightLayout.ScaleHalves(copy.Tensor);
        var scaled = copy.Tensor.WithHalvesScaled();
        var x = new float[64];
        var y = new float[8];
        Assert.Throws<InvalidOperationException>(() => MatVecF16.DequantizeRow(scaled, 0, new float[64]));
        Assert.Throws<InvalidOperationException>(() =>
        {
            fixed (float* px = x)
            fixed (float* py = y)
            {
                MatVecF16.RowsPrepared(scaled, px, px, py, 0, 8);
            }
        });
        Assert.Throws<InvalidOperationException>(() =>
        {
            fixed (float* px = x)
            fixed (float* py = y)
            {
                WidenInRegisters.RowsNarrow(scaled, px, 1, py, 8, 0, 8);
            }
        });
    }
}
