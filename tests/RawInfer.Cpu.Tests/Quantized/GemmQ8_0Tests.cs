using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Tests.Kernels;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// The integer Q8_0 GEMM (<see cref="GemmQ8_0"/>): every output must equal its definition
/// (<see cref="GemmQ8_0.DotReference"/> on X quantized per block) bit for bit, for any number of X rows, any W-row
/// range (tile edges, partial tiles, splits between workers), with and without the decoded scale table or the
/// scales looked up by their halves; and be
/// within the bound that quantizing X allows of the exact product of the decoded weights. One to three X rows
/// take the unpacked path, eight W rows in lockstep or one row at a time (<see cref="DecodeRowGrouping"/>), more
/// the packed tiles, on 512 bits where AVX-512 BW runs and on 256 (<see cref="GemmQ8_0.Wide"/>): both groupings and
/// both widths run here, so the test shares the grouping's collection.
/// </summary>
[Collection(KernelSwitches.Name)] // sets MatVecQ8_0.ScaleLookup and DecodeRowGrouping.FourRows
public sealed unsafe class GemmQ8_0Tests
{
    /// <summary>Where the unpacked path finds the block scales: converted from the halves, the decoded table, or
    /// looked up by their bits (<see cref="MatVecQ8_0.ScaleLookup"/>, before the table where both are there).</summary>
    public enum Scales
    {
        Converted,
        Decoded,
        LookedUp,
    }

    public static TheoryData<int, int, int, Scales, bool> Cases()
    {
        var data = new TheoryData<int, int, int, Scales, bool>();
        foreach (var (outRows, cols, xRows) in new[] { (32, 32, 1), (8, 768, 4), (70, 96, 13), (45, 2048, 5), (100, 1056, 2), (33, 64, 3), (64, 256, 7), (21, 768, 3), (40, 128, 11), (24, 64, 9), (50, 160, 8), (64, 96, 10), (33, 320, 12) })
        {
            foreach (var fourRows in new[] { true, false })
            {
                data.Add(outRows, cols, xRows, Scales.Converted, fourRows);
                data.Add(outRows, cols, xRows, Scales.Decoded, fourRows);
                data.Add(outRows, cols, xRows, Scales.LookedUp, fourRows);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_output_equals_the_definition_for_any_rows_and_split(int outRows, int cols, int xRows, Scales scales, bool fourRows)
    {
        Assert.SkipUnless(GemmQ8_0.Supported, "no AVX2 here: Q8_0 products take the widening path");
        using var grouping = RowGrouping.Set(fourRows);
        var savedLookup = MatVecQ8_0.ScaleLookup;
        MatVecQ8_0.ScaleLookup = scales == Scales.LookedUp;
        var savedWide = GemmQ8_0.Wide;
        try
        {
            // the AVX2 tiles everywhere, and the 512-bit ones where the machine has them: the same bits
            foreach (var wide in savedWide ? new[] { true, false } : [false])
            {
                GemmQ8_0.Wide = wide;
                ForEachBlockDot(() => CheckAgainstDefinition(outRows, cols, xRows, decodedScales: scales != Scales.Converted));
            }
        }
        finally
        {
            MatVecQ8_0.ScaleLookup = savedLookup;
            GemmQ8_0.Wide = savedWide;
        }
    }

    /// <summary>
    /// W quants anywhere in the int8 range, −128 included (llama.cpp writes −127 to 127, but a file may hold −128),
    /// against X rows whose quants reach ±127: every block dot of the unpacked path still gives the definition's sums.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Quants_at_the_ends_of_the_int8_range_give_the_definitions_sums(int xRows)
    {
        Assert.SkipUnless(GemmQ8_0.Supported, "no AVX2 here: Q8_0 products take the widening path");
        const int outRows = 24, cols = 512;
        using var w = WithQuantsAtTheEnds(outRows, cols, every: 3);
        var x = Activations(xRows, cols, seed: 7);
        var expected = Reference(w, x, xRows, outRows, cols);
        using var grouping = RowGrouping.Set(false);
        ForEachBlockDot(() =>
        {
            var y = new float[xRows * outRows];
            fixed (float* px = x)
            fixed (float* py = y)
            {
                GemmQ8_0.Rows(w.Tensor, px, xRows, py, outRows, 0, outRows);
            }

            Assert.Equal(expected, y);
        });
    }

    /// <summary>
    /// A random Q8_0 matrix whose quants are, at every <paramref name="every"/>-th place, −128, −127, 0 or 127, and
    /// anywhere in the int8 range elsewhere.
    /// </summary>
    internal static Encoded WithQuantsAtTheEnds(int outRows, int cols, int every)
    {
        var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: 5);
        var random = new Random(6);
        var extremes = new sbyte[] { -128, 127, -127, -128, 0, 127 };
        for (var o = 0; o < outRows; o++)
        {
            var row = w.Tensor.Data + ((long)o * w.Row(o).Length);
            for (var b = 0; b < cols / MatVecQ8_0.BlockElements; b++)
            {
                var quants = (sbyte*)(row + (b * MatVecQ8_0.BlockBytes) + 2);
                for (var i = 0; i < MatVecQ8_0.BlockElements; i++)
                {
                    quants[i] = (o + b + i) % every == 0 ? extremes[random.Next(extremes.Length)] : (sbyte)random.Next(-128, 128);
                }
            }
        }

        return w;
    }

    /// <summary>
    /// Runs <paramref name="check"/> with the unpacked path's block dots by maddubs/madd, and where AVX-VNNI runs also
    /// by VPDPBUSD (<see cref="GemmQ8_0.Vnni"/>).
    /// </summary>
    private static void ForEachBlockDot(Action check)
    {
        var savedVnni = GemmQ8_0.Vnni;
        try
        {
            foreach (var vnni in AvxVnni.IsSupported ? new[] { true, false } : [false])
            {
                GemmQ8_0.Vnni = vnni;
                check();
            }
        }
        finally
        {
            GemmQ8_0.Vnni = savedVnni;
        }
    }

    private static void CheckAgainstDefinition(int outRows, int cols, int xRows, bool decodedScales)
    {
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: outRows + cols);
        var table = GC.AllocateArray<float>(decodedScales ? outRows * cols / MatVecQ8_0.BlockElements : 0, pinned: true);
        var tensor = w.Tensor;
        if (decodedScales)
        {
            MatVecQ8_0.DecodeScales(w.Tensor, table);
            tensor = w.Tensor.WithDecodedScales((float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(table)));
        }

        var x = Activations(xRows, cols, seed: xRows);
        var expected = Reference(w, x, xRows, outRows, cols);
        var full = new float[xRows * outRows];
        var split = new float[xRows * outRows];
        fixed (float* px = x)
        fixed (float* pFull = full)
        fixed (float* pSplit = split)
        {
            GemmQ8_0.Rows(in tensor, px, xRows, pFull, outRows, 0, outRows);

            // the W rows in 8-row shares of uneven size, as workers take them, and every X row alone
            var cut = Math.Min(outRows, 8 * ((outRows / 16) + 1));
            GemmQ8_0.Rows(in tensor, px, xRows, pSplit, outRows, 0, cut);
            GemmQ8_0.Rows(in tensor, px, xRows, pSplit, outRows, cut, outRows);
            Assert.Equal(expected, full);
            Assert.Equal(expected, split);
            for (var t = 0; t < xRows; t++)
            {
                var single = new float[outRows];
                fixed (float* pSingle = single)
                {
                    GemmQ8_0.Rows(in tensor, px + (t * cols), 1, pSingle, outRows, 0, outRows);
                }

                Assert.Equal(expected.AsSpan(t * outRows, outRows).ToArray(), single);
            }
        }
    }

    /// <summary>
    /// X quantized once by the caller (as the runner's jobs share it among products and workers), in whole or from
    /// any X row on: the bits of the kernel quantizing X itself.
    /// </summary>
    [Theory]
    [InlineData(64, 768, 1)]
    [InlineData(70, 96, 3)]
    [InlineData(45, 2048, 4)]
    [InlineData(33, 320, 13)]
    public void Products_of_X_quantized_by_the_caller_equal_the_kernels_own(int outRows, int cols, int xRows)
    {
        Assert.SkipUnless(GemmQ8_0.Supported, "no AVX2 here: Q8_0 products take the widening path");
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: outRows * cols);
        var x = Activations(xRows, cols, seed: 11);
        var q = new sbyte[xRows * cols];
        var scales = new float[xRows * cols / MatVecQ8_0.BlockElements];
        var own = new float[xRows * outRows];
        var shared = new float[xRows * outRows];
        var tail = new float[xRows * outRows];
        var skip = xRows / 2; // the last X rows alone, from pointers into the shared quantization
        fixed (float* px = x)
        fixed (sbyte* pq = q)
        fixed (float* ps = scales)
        fixed (float* pOwn = own)
        fixed (float* pShared = shared)
        fixed (float* pTail = tail)
        {
            GemmQ8_0.Quantize(px, xRows, cols, pq, ps);
            GemmQ8_0.Rows(w.Tensor, px, xRows, pOwn, outRows, 0, outRows);
            GemmQ8_0.RowsQuantized(w.Tensor, pq, ps, xRows, pShared, outRows, 0, outRows / 2);
            GemmQ8_0.RowsQuantized(w.Tensor, pq, ps, xRows, pShared, outRows, outRows / 2, outRows);
            GemmQ8_0.RowsQuantized(
                w.Tensor, pq + (skip * cols), ps + (skip * cols / MatVecQ8_0.BlockElements), xRows - skip, pTail + (skip * outRows), outRows, 0, outRows);
        }

        Assert.Equal(own, shared);
        Assert.Equal(own.AsSpan(skip * outRows).ToArray(), tail.AsSpan(skip * outRows).ToArray());
    }

    [Fact]
    public void Gemm_routes_Q8_0_to_the_integer_kernel_where_it_runs()
    {
        Assert.SkipUnless(GemmQ8_0.Supported, "no AVX2 here: Q8_0 products take the widening path");
        const int outRows = 40, cols = 128, xRows = 6;
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: 11);
        var x = Activations(xRows, cols, seed: 12);
        var y = new float[xRows * outRows];
        fixed (float* px = x)
        fixed (float* py = y)
        {
            Gemm.Rows(w.Tensor, px, xRows, py, 0, outRows);
        }

        Assert.Equal(Reference(w, x, xRows, outRows, cols), y);
    }

    /// <summary>
    /// Against the exact product of the decoded weights with the unquantized X: the error of quantizing X is at
    /// most half a step (d_x/2) per element, so a block contributes at most d_x/2·Σ|w| beyond float rounding.
    /// </summary>
    [Fact]
    public void Products_are_within_the_activation_quantization_bound_of_the_exact_product()
    {
        Assert.SkipUnless(GemmQ8_0.Supported, "no AVX2 here: Q8_0 products take the widening path");
        const int outRows = 48, cols = 768, xRows = 5;
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: 21);
        var x = Activations(xRows, cols, seed: 22);
        var y = new float[xRows * outRows];
        fixed (float* px = x)
        fixed (float* py = y)
        {
            GemmQ8_0.Rows(w.Tensor, px, xRows, py, outRows, 0, outRows);
        }

        var decoded = new float[cols];
        var blocks = cols / MatVecQ8_0.BlockElements;
        var scales = new float[blocks];
        var q = new sbyte[cols];
        for (var t = 0; t < xRows; t++)
        {
            var row = x.AsSpan(t * cols, cols);
            MatVecQ8_0.QuantizeActivationsScalar(row, q, scales);
            for (var o = 0; o < outRows; o++)
            {
                TensorEncoding.DecodeRow(w.Row(o), TensorType.Q8_0, decoded);
                double exact = 0, magnitude = 0, bound = 0;
                for (var b = 0; b < blocks; b++)
                {
                    double weight = 0;
                    for (var i = 0; i < MatVecQ8_0.BlockElements; i++)
                    {
                        var k = (b * MatVecQ8_0.BlockElements) + i;
                        exact += (double)decoded[k] * row[k];
                        magnitude += Math.Abs((double)decoded[k] * row[k]);
                        weight += Math.Abs(decoded[k]);
                    }

                    bound += scales[b] / 2 * weight;
                }

                var actual = y[(t * outRows) + o];
                Assert.True(Math.Abs(actual - exact) <= bound + (1e-5 * magnitude) + 1e-6, $"row {t}, output {o}: {actual} vs {exact} (bound {bound})");
            }
        }
    }

    /// <summary>Activations with a spread of block magnitudes, including an all-zero block (scale 0).</summary>
    internal static float[] Activations(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var x = new float[rows * cols];
        for (var i = 0; i < x.Length; i++)
        {
            var block = i / MatVecQ8_0.BlockElements;
            x[i] = block % 5 == 3 ? 0f : (float)((random.NextDouble() * 2) - 1) * (block % 3 == 0 ? 20f : 0.3f);
        }

        return x;
    }

    /// <summary>The definition, output by output: X quantized by the scalar quantizer, then <see cref="GemmQ8_0.DotReference"/>.</summary>
    internal static float[] Reference(Encoded w, float[] x, int xRows, int outRows, int cols)
    {
        var blocks = cols / MatVecQ8_0.BlockElements;
        var q = new sbyte[cols];
        var scales = new float[blocks];
        var y = new float[xRows * outRows];
        for (var t = 0; t < xRows; t++)
        {
            MatVecQ8_0.QuantizeActivationsScalar(x.AsSpan(t * cols, cols), q, scales);
            fixed (sbyte* pq = q)
            fixed (float* ps = scales)
            {
                for (var o = 0; o < outRows; o++)
                {
                    fixed (byte* row = w.Row(o))
                    {
                        y[(t * outRows) + o] = GemmQ8_0.DotReference(row, pq, ps, blocks);
                    }
                }
            }
        }

        return y;
    }
}
