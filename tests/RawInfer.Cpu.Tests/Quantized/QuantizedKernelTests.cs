using System.Runtime.InteropServices;
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
        var y = new float[rows];
        y.AsSpan().Fill(float.NaN);

        // Two ranges, as the worker pool would split them.
        int split = rows / 2;
        RunRows(matrix.Tensor, x, y, 0, split);
        RunRows(matrix.Tensor, x, y, split, rows);

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

            Assert.True(Math.Abs(y[r] - reference) <= (1e-5 * magnitude) + 1e-6, $"{type} row {r}: {y[r]} vs {reference}");
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
    public void Finite_half_conversion_is_exact_for_every_finite_half_in_both_widths()
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

                var expected = BitConverter.SingleToInt32Bits((float)half);
                Assert.True(expected == BitConverter.SingleToInt32Bits(wide[i]), $"half 0x{h + i:X4}: {(float)half} vs {wide[i]}");
                if (i < 8)
                {
                    Assert.True(expected == BitConverter.SingleToInt32Bits(narrow[i]), $"half 0x{h + i:X4} (256-bit): {(float)half} vs {narrow[i]}");
                }
            }
        }
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

    private static void RunRows(in WeightTensor w, float[] x, float[] y, int start, int end)
    {
        switch (w.Type)
        {
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
