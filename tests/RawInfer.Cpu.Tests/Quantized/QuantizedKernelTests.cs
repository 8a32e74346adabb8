using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// F16, BF16 and Q8_0 row kernels against a scalar float64 reference on odd sizes, fixed seed. Tolerances:
/// F16/BF16 convert exactly, so only summation order differs: |y − ref| ≤ 1e-5·Σ|w·x| + 1e-6. Q8_0 is exact
/// integer arithmetic per block against the reference built from the dequantized weights and the dequantized
/// quantized x (same 1e-5 bound); against the unquantized float32 x it must stay within the worst case of the
/// activation rounding, Σ|w_i|·d_x/2.
/// </summary>
public sealed unsafe class QuantizedKernelTests
{
    public static TheoryData<TensorType, int, int> Shapes()
    {
        var data = new TheoryData<TensorType, int, int>();
        foreach (int rows in new[] { 1, 17, 257 })
        {
            foreach (int cols in new[] { 1, 17, 257, 1025 })
            {
                data.Add(TensorType.F16, rows, cols);
                data.Add(TensorType.BF16, rows, cols);
            }

            foreach (int cols in new[] { 32, 96, 1024 })
            {
                data.Add(TensorType.Q8_0, rows, cols);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Rows_match_the_scalar_reference(TensorType type, int rows, int cols)
    {
        var (weights, x) = RandomProblem(rows, cols, seed: rows * 7919 + cols);
        using var matrix = new EncodedMatrix(weights, type, rows, cols);
        // F16 and BF16 products take the engine's one-row kernel where it runs (MatVec, ViaGemm); their own kernels too.
        foreach (var own in type is TensorType.F16 or TensorType.BF16 ? [false, true] : new[] { false })
        {
            CheckRows(type, rows, cols, matrix, x, own);
        }
    }

    private static void CheckRows(TensorType type, int rows, int cols, EncodedMatrix matrix, float[] x, bool own)
    {
        var y = new float[rows];
        y.AsSpan().Fill(float.NaN);

        // Two ranges, as the worker pool would split them.
        int split = rows / 2;
        RunRows(matrix.Tensor, x, y, 0, split, own);
        RunRows(matrix.Tensor, x, y, split, rows, own);

        float[] xUsed = type == TensorType.Q8_0 ? QuantizedRoundTrip(x) : x;
        var row = new float[cols];
        for (int r = 0; r < rows; r++)
        {
            TensorEncoding.DecodeRow(matrix.Row(r), type, row);
            double reference = 0, magnitude = 0, activationError = 0;
            for (int c = 0; c < cols; c++)
            {
                reference += (double)row[c] * xUsed[c];
                magnitude += Math.Abs((double)row[c] * xUsed[c]);
                activationError += Math.Abs(row[c]) * Math.Abs(xUsed[c] - x[c]);
            }

            Assert.True(Math.Abs(y[r] - reference) <= (1e-5 * magnitude) + 1e-6, $"{type} row {r} (own kernel: {own}): {y[r]} vs {reference}");
            if (type == TensorType.Q8_0)
            {
                double unquantized = 0;
                for (int c = 0; c < cols; c++)
                {
                    unquantized += (double)row[c] * x[c];
                }

                Assert.True(Math.Abs(y[r] - unquantized) <= activationError + (1e-5 * magnitude) + 1e-6, $"row {r} vs float32 x");
            }
        }
    }

    [Theory]
    [InlineData(TensorType.F16, 1025)]
    [InlineData(TensorType.BF16, 257)]
    [InlineData(TensorType.Q8_0, 96)]
    public void DequantizeRow_equals_the_reference_decoder(TensorType type, int cols)
    {
        var (weights, _) = RandomProblem(3, cols, seed: 11);
        using var matrix = new EncodedMatrix(weights, type, 3, cols);
        var expected = new float[cols];
        var actual = new float[cols];
        for (int r = 0; r < 3; r++)
        {
            TensorEncoding.DecodeRow(matrix.Row(r), type, expected);
            Dequantize(matrix.Tensor, r, actual);
            Assert.Equal(expected, actual);
        }
    }

    [Fact]
    public void Half_conversion_handles_zero_subnormal_infinity_and_nan()
    {
        float[] values =
        {
            0f, -0f, 1f, -2.5f, 65504f, -65504f, 6.1035156e-05f, 5.9604645e-08f, -5.9604645e-08f, 3e-06f,
            float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1e-9f, 0.333f, 1000.5f,
        };
        using var matrix = new EncodedMatrix(values, TensorType.F16, 1, values.Length);
        var actual = new float[values.Length];
        MatVecF16.DequantizeRow(matrix.Tensor, 0, actual);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(BitConverter.SingleToInt32Bits((float)(Half)values[i]), BitConverter.SingleToInt32Bits(actual[i]));
        }
    }

    [Fact]
    public void Finite_half_conversion_is_exact_for_every_finite_half_in_both_widths_and_scalar()
    {
        var bits512 = new uint[16];
        var bits256 = new uint[8];
        for (var h = 0; h < 0x10000; h += 16)
        {
            for (var i = 0; i < 16; i++)
            {
                bits512[i] = (uint)(h + i);
            }

            Array.Copy(bits512, bits256, 8);
            var wide = HalfConversion.FiniteHalfToSingle(System.Runtime.Intrinsics.Vector512.Create(bits512));
            var narrow = HalfConversion.FiniteHalfToSingle(System.Runtime.Intrinsics.Vector256.Create(bits256));
            for (var i = 0; i < 16; i++)
            {
                var half = BitConverter.UInt16BitsToHalf((ushort)(h + i));
                if (!Half.IsFinite(half))
                {
                    continue; // Inf/NaN: refused by the loader, not converted
                }

                var expected = ExpectedFiniteBits(half);
                Assert.True(expected == BitConverter.SingleToInt32Bits(wide[i]), $"half 0x{h + i:X4}: {(float)half} vs {wide[i]}");
                var scalar = HalfConversion.FiniteHalfToSingle((uint)(h + i));
                Assert.True(expected == BitConverter.SingleToInt32Bits(scalar), $"half 0x{h + i:X4} (scalar): {(float)half} vs {scalar}");
                if (i < 8)
                {
                    Assert.True(expected == BitConverter.SingleToInt32Bits(narrow[i]), $"half 0x{h + i:X4} (256-bit): {(float)half} vs {narrow[i]}");
                }
            }
        }
    }

    /// <summary>
    /// The conversion picks per lane between the normal rebias and the zero/subnormal one: vectors mixing both
    /// kinds (the common case in real weights, where ~0.3% of halves are subnormal) must convert each lane by its
    /// own kind, in both widths, for a half in the low and in the high 16 bits of a lane (<see cref="MatVecF16"/>'s pairs).
    /// </summary>
    [Fact]
    public void Finite_half_conversion_is_exact_in_vectors_mixing_normal_subnormal_and_zero_lanes()
    {
        var random = new Random(5);
        var low = new uint[16];
        var pairs = new int[16];
        for (var round = 0; round < 4096; round++)
        {
            for (var i = 0; i < 16; i++)
            {
                low[i] = RandomFiniteHalf(random);
                pairs[i] = (int)((RandomFiniteHalf(random) << 16) | low[i]);
            }

            var wide = HalfConversion.FiniteHalfToSingle(System.Runtime.Intrinsics.Vector512.Create(low));
            var signExtended = HalfConversion.FiniteSignExtendedHalfToSingle(System.Runtime.Intrinsics.Vector512.Create(low).AsInt32() << 16 >> 16);
            var narrow = HalfConversion.FiniteHalfToSingle(System.Runtime.Intrinsics.Vector256.Create(low.AsSpan(0, 8)));
            var pairVector = System.Runtime.Intrinsics.Vector512.Create(pairs).AsUInt32();
            var even = HalfConversion.FiniteHalfToSingle(pairVector);
            var odd = HalfConversion.FiniteHighHalfToSingle(pairVector);
            var oddNarrow = HalfConversion.FiniteHighHalfToSingle(System.Runtime.Intrinsics.Vector256.Create(pairs.AsSpan(0, 8)).AsUInt32());
            for (var i = 0; i < 16; i++)
            {
                var half = BitConverter.UInt16BitsToHalf((ushort)low[i]);
                Assert.True(ExpectedFiniteBits(half) == BitConverter.SingleToInt32Bits(wide[i]), $"round {round} lane {i}: half 0x{low[i]:X4} → {wide[i]}");
                Assert.True(ExpectedFiniteBits(half) == BitConverter.SingleToInt32Bits(signExtended[i]), $"round {round} lane {i} (sign-extended): half 0x{low[i]:X4} → {signExtended[i]}");
                if (i < 8)
                {
                    Assert.True(ExpectedFiniteBits(half) == BitConverter.SingleToInt32Bits(narrow[i]), $"round {round} lane {i} (256-bit): half 0x{low[i]:X4} → {narrow[i]}");
                }

                Assert.True(ExpectedFiniteBits(half) == BitConverter.SingleToInt32Bits(even[i]), $"round {round} lane {i} (low half of a pair): 0x{low[i]:X4} → {even[i]}");
                var oddHalf = BitConverter.UInt16BitsToHalf((ushort)((uint)pairs[i] >> 16));
                Assert.True(ExpectedFiniteBits(oddHalf) == BitConverter.SingleToInt32Bits(odd[i]), $"round {round} lane {i} (high half): 0x{(uint)pairs[i] >> 16:X4} → {odd[i]}");
                if (i < 8)
                {
                    Assert.True(ExpectedFiniteBits(oddHalf) == BitConverter.SingleToInt32Bits(oddNarrow[i]), $"round {round} lane {i} (high half, 256-bit): 0x{(uint)pairs[i] >> 16:X4} → {oddNarrow[i]}");
                }
            }
        }
    }

    /// <summary>
    /// F16 rows whose weights are mostly subnormal or zero (the lanes the conversion handles apart) against the
    /// exact float64 reference, with no absolute slack: a subnormal converted as if it had the implicit leading
    /// one, or with its exponent off by one, is wrong by about its own size, far past the bound.
    /// </summary>
    [Theory]
    [InlineData(1, 1025)]
    [InlineData(17, 257)]
    [InlineData(3, 64)]
    public void F16_rows_with_subnormal_and_zero_weights_match_the_exact_reference(int rows, int cols)
    {
        var random = new Random((rows * 31) + cols);
        var bits = new ushort[rows * cols];
        var x = new float[cols];
        for (var i = 0; i < bits.Length; i++)
        {
            bits[i] = (ushort)RandomFiniteHalf(random, maxExponent: 2); // normals of at most 2^-12 leave the subnormals a large share of each sum
        }

        for (var i = 0; i < cols; i++)
        {
            x[i] = (random.NextSingle() * 8) - 4;
        }

        var data = (ushort*)NativeMemory.Alloc((nuint)(bits.Length * sizeof(ushort)));
        try
        {
            bits.AsSpan().CopyTo(new Span<ushort>(data, bits.Length));
            var tensor = new WeightTensor((byte*)data, TensorType.F16, rows, cols);
            var y = new float[rows];
            var own = new float[rows];
            MatVec.Rows(tensor, x, y, 0, rows);
            MatVecF16.Rows(tensor, x, own, 0, rows);
            for (var r = 0; r < rows; r++)
            {
                double reference = 0, magnitude = 0;
                for (var c = 0; c < cols; c++)
                {
                    var w = (double)(float)BitConverter.UInt16BitsToHalf(bits[(r * cols) + c]);
                    reference += w * x[c];
                    magnitude += Math.Abs(w * x[c]);
                }

                Assert.True(Math.Abs(y[r] - reference) <= 1e-5 * magnitude, $"row {r}: {y[r]} vs {reference} (Σ|w·x| {magnitude})");
                Assert.True(Math.Abs(own[r] - reference) <= 1e-5 * magnitude, $"row {r}, own kernel: {own[r]} vs {reference} (Σ|w·x| {magnitude})");
            }
        }
        finally
        {
            NativeMemory.Free(data);
        }
    }

    /// <summary>The finite conversion's bits for a half: the half's float.</summary>
    private static int ExpectedFiniteBits(Half half) => BitConverter.SingleToInt32Bits((float)half);

    /// <summary>A finite half: subnormal (40%), ±0 (10%) or normal (50%, exponent field 1..maxExponent), either sign.</summary>
    private static uint RandomFiniteHalf(Random random, int maxExponent = 30)
    {
        var sign = (uint)random.Next(2) << 15;
        var kind = random.Next(10);
        return kind switch
        {
            < 4 => sign | (uint)random.Next(1, 0x400),
            4 => sign,
            _ => sign | ((uint)random.Next(1, maxExponent + 1) << 10) | (uint)random.Next(0x400),
        };
    }

    /// <summary>
    /// Where the engine's one-row kernel runs, F16 and BF16 matrix-vector products (<c>rawinfer generate</c>'s)
    /// are its bits exactly: those of an engine step of one sequence (<see cref="Gemm.Rows"/> with one X row),
    /// whatever the split of the rows, leftover columns and rows past the last 8-row tile included.
    /// </summary>
    [Theory]
    [InlineData(TensorType.F16, 37, 768)]
    [InlineData(TensorType.F16, 64, 2048)]
    [InlineData(TensorType.F16, 13, 1025)]
    [InlineData(TensorType.BF16, 37, 768)]
    [InlineData(TensorType.BF16, 13, 1025)]
    public void Half_width_rows_give_the_bits_of_an_engine_step_of_one_sequence(TensorType type, int rows, int cols)
    {
        var takesGemm = type == TensorType.F16 ? MatVecF16.TakesGemm(cols) : MatVecBF16.TakesGemm(cols);
        Assert.SkipUnless(takesGemm, "the engine's in-register kernel needs AVX-512 here");
        var (weights, x) = RandomProblem(rows, cols, seed: (rows * 131) + cols);
        using var matrix = new EncodedMatrix(weights, type, rows, cols);
        var matVec = new float[rows];
        var split = rows / 3;
        RunRows(matrix.Tensor, x, matVec, 0, split);
        RunRows(matrix.Tensor, x, matVec, split, rows);
        var step = new float[rows];
        fixed (float* px = x)
        fixed (float* py = step)
        {
            Gemm.Rows(matrix.Tensor, px, 1, py, 0, rows);
        }

        Assert.Equal(step.Select(BitConverter.SingleToInt32Bits), matVec.Select(BitConverter.SingleToInt32Bits));
    }

    /// <summary>
    /// Where the engine's Q8_0 kernel runs, Q8_0 matrix-vector products (<c>rawinfer generate</c>'s) are its bits
    /// exactly, from the span and from the prepared input (as <see cref="CpuTransformer"/>'s jobs call it), whatever
    /// the split of the rows: those of an engine step of one sequence (<see cref="Gemm.Rows"/> with one X row).
    /// </summary>
    [Theory]
    [InlineData(37, 768)]
    [InlineData(64, 2048)]
    [InlineData(13, 96)]
    public void Q8_0_rows_give_the_bits_of_an_engine_step_of_one_sequence(int rows, int cols)
    {
        Assert.SkipUnless(MatVecQ8_0.TakesGemm, "the engine's integer Q8_0 kernel needs AVX2 here");
        var (weights, x) = RandomProblem(rows, cols, seed: (rows * 17) + cols);
        using var matrix = new EncodedMatrix(weights, TensorType.Q8_0, rows, cols);
        var split = rows / 3;
        var matVec = new float[rows];
        MatVec.Rows(matrix.Tensor, x, matVec, 0, split);
        MatVec.Rows(matrix.Tensor, x, matVec, split, rows);
        var prepared = new float[rows];
        var input = new MatVecInput();
        fixed (float* px = x)
        fixed (float* py = prepared)
        {
            input.Reset(px, cols);
            input.Prepare(TensorType.Q8_0);
            MatVec.Rows(matrix.Tensor, input, py, 0, split);
            MatVec.Rows(matrix.Tensor, input, py, split, rows);
        }

        var step = new float[rows];
        fixed (float* px = x)
        fixed (float* py = step)
        {
            Gemm.Rows(matrix.Tensor, px, 1, py, 0, rows);
        }

        Assert.Equal(step.Select(BitConverter.SingleToInt32Bits), matVec.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(step.Select(BitConverter.SingleToInt32Bits), prepared.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void Q8_0_simd_and_scalar_dot_products_agree()
    {
        const int cols = 1024;
        var (weights, x) = RandomProblem(1, cols, seed: 3);
        using var matrix = new EncodedMatrix(weights, TensorType.Q8_0, 1, cols);
        var q = new sbyte[cols];
        var scales = new float[cols / 32];
        MatVecQ8_0.QuantizeActivations(x, q, scales);
        fixed (sbyte* pq = q)
        fixed (float* ps = scales)
        {
            float scalar = MatVecQ8_0.DotScalar(matrix.Tensor.Data, pq, ps, cols / 32);
            float simd = System.Runtime.Intrinsics.X86.Avx2.IsSupported ? MatVecQ8_0.DotAvx2(matrix.Tensor.Data, pq, ps, cols / 32) : scalar;
            Assert.True(Math.Abs(scalar - simd) <= 1e-5 * Math.Max(1, Math.Abs(scalar)), $"{scalar} vs {simd}");
        }
    }

    private static void RunRows(in WeightTensor w, float[] x, float[] y, int start, int end, bool own = false)
    {
        switch (w.Type)
        {
            case TensorType.F16 or TensorType.BF16 when !own: MatVec.Rows(w, x, y, start, end); break;
            case TensorType.F16: MatVecF16.Rows(w, x, y, start, end); break;
            case TensorType.BF16: MatVecBF16.Rows(w, x, y, start, end); break;
            default: MatVecQ8_0.Rows(w, x, y, start, end); break;
        }
    }

    private static void Dequantize(in WeightTensor w, int row, float[] dst)
    {
        switch (w.Type)
        {
            case TensorType.F16: MatVecF16.DequantizeRow(w, row, dst); break;
            case TensorType.BF16: MatVecBF16.DequantizeRow(w, row, dst); break;
            default: MatVecQ8_0.DequantizeRow(w, row, dst); break;
        }
    }

    private static float[] QuantizedRoundTrip(float[] x)
    {
        var q = new sbyte[x.Length];
        var scales = new float[x.Length / 32];
        MatVecQ8_0.QuantizeActivations(x, q, scales);
        var back = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            back[i] = q[i] * scales[i / 32];
        }

        return back;
    }

    private static (float[] Weights, float[] X) RandomProblem(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var w = new float[rows * cols];
        var x = new float[cols];
        for (int i = 0; i < w.Length; i++)
        {
            w[i] = (random.NextSingle() * 2) - 1;
        }

        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (random.NextSingle() * 8) - 4;
        }

        return (w, x);
    }

    /// <summary>A matrix encoded row by row into native memory, as it would sit in a mapped GGUF file.</summary>
    private sealed class EncodedMatrix : IDisposable
    {
        private readonly byte* _data;
        private readonly int _rowBytes;

        public EncodedMatrix(float[] weights, TensorType type, int rows, int cols)
        {
            _rowBytes = TensorEncoding.RowBytes(type, cols);
            _data = (byte*)NativeMemory.Alloc((nuint)(_rowBytes * rows));
            for (int r = 0; r < rows; r++)
            {
                TensorEncoding.EncodeRow(weights.AsSpan(r * cols, cols), type, new Span<byte>(_data + ((long)r * _rowBytes), _rowBytes));
            }

            Tensor = new WeightTensor(_data, type, rows, cols);
        }

        public WeightTensor Tensor { get; }

        public ReadOnlySpan<byte> Row(int r) => new(_data + ((long)r * _rowBytes), _rowBytes);

        public void Dispose() => NativeMemory.Free(_data);
    }
}
