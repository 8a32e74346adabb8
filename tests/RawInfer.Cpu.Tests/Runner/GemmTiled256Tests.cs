using System.Runtime.Intrinsics;
using RawInfer.Cpu.Kernels;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// The 3×4 tiled 256-bit F32 GEMM (<see cref="GemmF32.Tiled256"/>, the product on AVX2 machines): against a
/// double-precision scalar reference on odd shapes, and bit for bit against the 256-bit
/// <see cref="GemmF32.Vector256Kernel.Dot"/> for every (X row, W row) pair whatever the batch size (3-, 2-row
/// tiles, two 2-row tiles for four rows left, a 1-row tile), the X block, the probe's place in the batch, the
/// W-row split or a prefetch range. Skipped where the machine has no 256-bit vectors.
/// </summary>
public unsafe class GemmTiled256Tests
{
    public static TheoryData<int, int, int> Shapes()
    {
        var data = new TheoryData<int, int, int>();
        foreach (var rows in new[] { 1, 2, 3, 4, 7, 64 })
        {
            foreach (var cols in new[] { 8, 9, 257, 1025 })
            {
                foreach (var outs in new[] { 1, 6, 17 })
                {
                    data.Add(rows, cols, outs);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Product_matches_the_scalar_reference_and_the_256_bit_dot(int rows, int cols, int outs)
    {
        Require256();
        var w = Random(outs * cols, (outs * 7919) + cols);
        var x = Random(rows * cols, (rows * 31) + cols);
        var y = new float[rows * outs];
        Run(w, cols, x, rows, y, outs, 0, outs);

        for (var i = 0; i < rows; i++)
        {
            for (var o = 0; o < outs; o++)
            {
                // Float sums of up to 1025 terms in [-1, 1)² vs double: 1e-5 of Σ|w·x| is ~100× the expected error.
                double sum = 0, magnitude = 0;
                for (var j = 0; j < cols; j++)
                {
                    var term = (double)w[(o * cols) + j] * x[(i * cols) + j];
                    sum += term;
                    magnitude += Math.Abs(term);
                }

                var actual = y[(i * outs) + o];
                Assert.True(
                    Math.Abs(actual - sum) <= (1e-5 * magnitude) + 1e-7,
                    $"row {i}, column {o}: {actual:R} vs {sum:R}");

                float dot;
                fixed (float* pw = &w[o * cols])
                fixed (float* px = &x[i * cols])
                {
                    dot = GemmF32.Vector256Kernel.Dot(pw, px, cols);
                }

                Assert.Equal(BitConverter.SingleToInt32Bits(dot), BitConverter.SingleToInt32Bits(actual));
            }
        }
    }

    [Theory]
    [InlineData(8)]
    [InlineData(17)]
    [InlineData(257)]
    [InlineData(1025)]
    [InlineData(2051)] // wide rows: X blocks of 24 rows, so 64 and 200 rows take several
    public void A_rows_bits_do_not_depend_on_the_batch_the_split_or_the_prefetches(int cols)
    {
        Require256();
        const int Outs = 23; // five 4-row tiles and three rows left over
        var w = Random(Outs * cols, cols + 101);
        var probe = Random(cols, cols + 202);
        var alone = new float[Outs];
        Run(w, cols, probe, 1, alone, Outs, 0, Outs);

        foreach (var batchRows in new[] { 2, 3, 4, 5, 6, 7, 10, 13, 64, 200 })
        {
            var x = Random(batchRows * cols, (batchRows * 977) + cols);
            foreach (var at in new[] { 0, batchRows / 2, batchRows - 1 })
            {
                probe.CopyTo(x, at * cols);
                var y = new float[batchRows * Outs];

                // split the W rows the way two and three workers would, at the runner's granule of 8
                foreach (var parts in new[] { 1, 2, 3 })
                {
                    for (var part = 0; part < parts; part++)
                    {
                        var start = (Outs * part / parts) & ~7;
                        var end = part == parts - 1 ? Outs : (Outs * (part + 1) / parts) & ~7;
                        Run(w, cols, x, batchRows, y, Outs, start, end, inMemory: parts != 2); // with and without prefetches
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

    [Fact]
    public void A_row_range_writes_only_its_columns()
    {
        Require256();
        const int Cols = 33, Outs = 30, Rows = 7;
        var w = Random(Outs * Cols, 5);
        var x = Random(Rows * Cols, 6);
        var y = new float[Rows * Outs];
        Array.Fill(y, float.NaN);
        Run(w, Cols, x, Rows, y, Outs, 9, 26); // neither end on a 4-row tile

        for (var i = 0; i < Rows; i++)
        {
            for (var o = 0; o < Outs; o++)
            {
                Assert.True(
                    float.IsNaN(y[(i * Outs) + o]) == (o < 9 || o >= 26),
                    $"row {i}, column {o}: {y[(i * Outs) + o]}");
            }
        }
    }

    private static void Require256()
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            Assert.Skip("this machine has no 256-bit vectors");
        }
    }

    private static void Run(float[] w, int cols, float[] x, int rows, float[] y, int outs, int start, int end, bool inMemory = true)
    {
        fixed (float* pw = w)
        fixed (float* px = x)
        fixed (float* py = y)
        {
            GemmF32.Tiled256(pw, cols, px, rows, py, outs, start, end, inMemory);
        }
    }
}
