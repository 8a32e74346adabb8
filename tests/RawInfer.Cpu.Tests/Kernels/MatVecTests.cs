using RawInfer.Cpu.Kernels;
using RawInfer.Models;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>F32 matrix-vector rows, every width, odd shapes, partial row ranges; type dispatch.</summary>
public unsafe class MatVecTests
{
    private static readonly (int Rows, int Cols)[] Shapes =
    {
        (1, 1), (1, 17), (17, 1), (17, 17), (3, 257), (257, 33), (5, 1025), (1025, 257), (7, 31), (6, 48),
    };

    public static TheoryData<Width, int, int> Cases()
    {
        var data = new TheoryData<Width, int, int>();
        foreach (var width in SupportedWidths())
        {
            foreach (var (rows, cols) in Shapes)
            {
                data.Add(width, rows, cols);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rows_match_reference(Width width, int rows, int cols)
    {
        var w = Random(rows * cols, (rows * 7919) + cols);
        var x = Random(cols, cols + 17);
        var (expected, magnitude) = Reference(w, x, rows, cols);

        var y = new float[rows];
        Run(width, w, x, y, rows, cols, 0, rows);

        // Relative to Σ|w·x| per row (float accumulation error bound, with ~100x slack for typical error).
        AssertClose(expected, y, r => (1e-5 * magnitude[r]) + 1e-7);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Row_range_writes_only_its_rows(Width width, int rows, int cols)
    {
        var w = Random(rows * cols, rows + (cols * 31));
        var x = Random(cols, cols + 5);
        var (expected, magnitude) = Reference(w, x, rows, cols);
        var start = rows / 3;
        var end = rows - (rows / 4);

        var y = new float[rows];
        Array.Fill(y, float.NaN);
        Run(width, w, x, y, rows, cols, start, end);

        for (var r = 0; r < rows; r++)
        {
            if (r >= start && r < end)
            {
                Assert.InRange(Math.Abs(y[r] - expected[r]), 0, (1e-5 * magnitude[r]) + 1e-7);
            }
            else
            {
                Assert.True(float.IsNaN(y[r]), $"row {r} outside [{start}, {end}) was written");
            }
        }
    }

    [Theory]
    [InlineData(TensorType.F16)]
    [InlineData(TensorType.BF16)]
    [InlineData(TensorType.Q8_0)]
    public void Types_without_a_kernel_throw_NotSupported(TensorType type)
    {
        if (MatVec.Supports(type))
        {
            return; // a kernel for this type has been added; its own tests cover it
        }

        var bytes = new byte[64];
        fixed (byte* p = bytes)
        {
            var w = new WeightTensor(p, type, 1, 16);
            var error = Assert.Throws<NotSupportedException>(() => MatVec.Multiply(w, new float[16], new float[1]));
            Assert.Contains(type.ToString(), error.Message, StringComparison.Ordinal);
        }
    }

    private static (double[] Y, double[] Magnitude) Reference(float[] w, float[] x, int rows, int cols)
    {
        var y = new double[rows];
        var magnitude = new double[rows];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < cols; c++)
            {
                var term = (double)w[(r * cols) + c] * x[c];
                y[r] += term;
                magnitude[r] += Math.Abs(term);
            }
        }

        return (y, magnitude);
    }

    private static void Run(Width width, float[] w, float[] x, float[] y, int rows, int cols, int start, int end)
    {
        fixed (float* pw = w)
        fixed (float* px = x)
        fixed (float* py = y)
        {
            switch (width)
            {
                case Width.Scalar: MatVecF32.Scalar(pw, cols, px, py, start, end); break;
                case Width.V128: MatVecF32.Vector128Path(pw, cols, px, py, start, end); break;
                case Width.V256: MatVecF32.Vector256Path(pw, cols, px, py, start, end); break;
                case Width.V512: MatVecF32.Vector512Path(pw, cols, px, py, start, end); break;
                default:
                    var tensor = new WeightTensor((byte*)pw, TensorType.F32, rows, cols);
                    MatVec.Rows(tensor, x, y, start, end);
                    break;
            }
        }
    }
}
