using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Tests.Kernels;
using RawInfer.Models;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// The F32 GEMM against a double-precision reference on odd shapes, and its determinism: a row's bits never
/// depend on the batch it is in, on the W-row range a worker was given, or on the tile it fell into.
/// </summary>
public unsafe class GemmTests
{
    private static readonly int[] XRows = { 1, 3, 17 };
    private static readonly int[] Ins = { 1, 17, 257, 1025 };
    private static readonly int[] Outs = { 1, 17, 257 };

    public static TheoryData<Width, int, int, int> Cases()
    {
        var data = new TheoryData<Width, int, int, int>();
        foreach (var width in SupportedWidths())
        {
            foreach (var rows in XRows)
            {
                foreach (var cols in Ins)
                {
                    foreach (var outs in Outs)
                    {
                        data.Add(width, rows, cols, outs);
                    }
                }
            }
        }

        return data;
    }

    public static TheoryData<Width, int> WidthsAndIns()
    {
        var data = new TheoryData<Width, int>();
        foreach (var width in SupportedWidths())
        {
            foreach (var cols in Ins)
            {
                data.Add(width, cols);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Product_matches_the_reference(Width width, int rows, int cols, int outs)
    {
        var w = Random(outs * cols, (outs * 7919) + cols);
        var x = Random(rows * cols, (rows * 31) + cols);
        var y = new float[rows * outs];

        Run(width, w, cols, x, rows, y, outs, 0, outs);

        // Float accumulation of up to 1025 terms vs double: relative to Σ|w·x| per element, with ~100× slack.
        var (expected, magnitude) = Reference(w, x, rows, cols, outs);
        AssertClose(expected, y, i => (1e-5 * magnitude[i]) + 1e-7);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Row_range_writes_only_its_columns(Width width, int rows, int cols, int outs)
    {
        var w = Random(outs * cols, outs + (cols * 13));
        var x = Random(rows * cols, rows + (cols * 3));
        var start = outs / 3;     // deliberately not a multiple of the 4-row tile
        var end = outs - (outs / 5);
        var y = new float[rows * outs];
        Array.Fill(y, float.NaN);

        Run(width, w, cols, x, rows, y, outs, start, end);

        var full = new float[rows * outs];
        Run(width, w, cols, x, rows, full, outs, 0, outs);
        for (var i = 0; i < rows; i++)
        {
            for (var o = 0; o < outs; o++)
            {
                var actual = y[(i * outs) + o];
                if (o >= start && o < end)
                {
                    Assert.Equal(BitConverter.SingleToInt32Bits(full[(i * outs) + o]), BitConverter.SingleToInt32Bits(actual));
                }
                else
                {
                    Assert.True(float.IsNaN(actual), $"row {i}, column {o} outside [{start}, {end}) was written");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(WidthsAndIns))]
    public void A_rows_bits_do_not_depend_on_the_batch_around_it(Width width, int cols)
    {
        const int Outs = 45; // 11 four-row tiles and one left over
        var w = Random(Outs * cols, cols + 101);
        var probe = Random(cols, cols + 202);
        var alone = new float[Outs];
        Run(width, w, cols, probe, 1, alone, Outs, 0, Outs);

        foreach (var batchRows in new[] { 2, 3, 4, 5, 8, 9, 17, 64 })
        {
            var x = Random(batchRows * cols, (batchRows * 977) + cols);
            foreach (var at in new[] { 0, batchRows / 2, batchRows - 1 })
            {
                probe.CopyTo(x, at * cols);
                var y = new float[batchRows * Outs];

                // split the W rows the way two and three workers would, at a granule of 4
                foreach (var parts in new[] { 1, 2, 3 })
                {
                    for (var part = 0; part < parts; part++)
                    {
                        var start = (Outs * part / parts) & ~3;
                        var end = part == parts - 1 ? Outs : (Outs * (part + 1) / parts) & ~3;
                        Run(width, w, cols, x, batchRows, y, Outs, start, end);
                    }

                    for (var o = 0; o < Outs; o++)
                    {
                        Assert.True(
                            BitConverter.SingleToInt32Bits(alone[o]) == BitConverter.SingleToInt32Bits(y[(at * Outs) + o]),
                            $"batch of {batchRows}, probe at row {at}, {parts} parts, column {o}: {alone[o]:R} vs {y[(at * Outs) + o]:R}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(257)]
    [InlineData(1025)]
    public void The_dispatched_product_sums_in_the_order_of_Dot(int cols)
    {
        // One summation order for every dot product in the runner: the GEMM's and the attention scores' agree.
        var w = Random(5 * cols, cols + 7);
        var x = Random(cols, cols + 8);
        var y = new float[5];
        Run(Width.Dispatch, w, cols, x, 1, y, 5, 0, 5);
        for (var o = 0; o < 5; o++)
        {
            var expected = Dot.Compute(w.AsSpan(o * cols, cols), x);
            Assert.Equal(BitConverter.SingleToInt32Bits(expected), BitConverter.SingleToInt32Bits(y[o]));
        }
    }

    [Fact]
    public void Block_rows_fit_the_tile_and_the_cache_budget()
    {
        foreach (var cols in new[] { 1, 17, 768, 2048, 1 << 20 })
        {
            var rows = GemmF32.BlockRows(cols);
            Assert.True(rows >= 4 && rows % 4 == 0, $"cols {cols}: {rows} rows");
            Assert.True(rows == 4 || (long)rows * cols * sizeof(float) <= 256 * 1024, $"cols {cols}: {rows} rows");
        }
    }

    internal static void Run(Width width, float[] w, int cols, float[] x, int rows, float[] y, int outs, int start, int end)
    {
        fixed (float* pw = w)
        fixed (float* px = x)
        fixed (float* py = y)
        {
            switch (width)
            {
                case Width.Scalar:
                    GemmF32.Blocked<GemmF32.ScalarKernel>(pw, cols, px, rows, py, outs, start, end);
                    break;
                case Width.V128:
                    GemmF32.Blocked<GemmF32.Vector128Kernel>(pw, cols, px, rows, py, outs, start, end);
                    break;
                case Width.V256:
                    GemmF32.Blocked<GemmF32.Vector256Kernel>(pw, cols, px, rows, py, outs, start, end);
                    break;
                case Width.V512:
                    GemmF32.Blocked<GemmF32.Vector512Kernel>(pw, cols, px, rows, py, outs, start, end);
                    break;
                default:
                    var tensor = new WeightTensor((byte*)pw, TensorType.F32, outs, cols);
                    Gemm.Rows(in tensor, px, rows, py, start, end);
                    break;
            }
        }
    }

    private static (double[] Values, double[] Magnitudes) Reference(float[] w, float[] x, int rows, int cols, int outs)
    {
        var values = new double[rows * outs];
        var magnitudes = new double[rows * outs];
        for (var i = 0; i < rows; i++)
        {
            for (var o = 0; o < outs; o++)
            {
                double sum = 0, magnitude = 0;
                for (var j = 0; j < cols; j++)
                {
                    var term = (double)w[(o * cols) + j] * x[(i * cols) + j];
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                values[(i * outs) + o] = sum;
                magnitudes[(i * outs) + o] = magnitude;
            }
        }

        return (values, magnitudes);
    }
}
