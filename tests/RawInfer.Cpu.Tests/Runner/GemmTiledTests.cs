using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// The 3×8 tiled 512-bit F32 GEMM (<see cref="GemmF32.Tiled512"/>): against a double-precision scalar reference
/// on odd shapes, and bit for bit against <see cref="Dot"/> for every (X row, W row) pair whatever the batch
/// size, the probe's place in the batch, the W-row split or the tile (full, 1- or 2-row, leftover W rows) the
/// pair lands in. Skipped where the machine has no AVX-512.
/// </summary>
public unsafe class GemmTiledTests
{
    public static TheoryData<int, int, int> Shapes()
    {
        var data = new TheoryData<int, int, int>();
        foreach (var rows in new[] { 1, 3, 5, 63 })
        {
            foreach (var cols in new[] { 16, 17, 257, 1025, 1553 })
            {
                foreach (var outs in new[] { 1, 17, 257 })
                {
                    data.Add(rows, cols, outs);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Product_matches_the_scalar_reference_and_Dot(int rows, int cols, int outs)
    {
        RequireAvx512();
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

                // and exactly the single dot product of the runner's attention scores
                var dot = Dot.Compute(w.AsSpan(o * cols, cols), x.AsSpan(i * cols, cols));
                Assert.Equal(BitConverter.SingleToInt32Bits(dot), BitConverter.SingleToInt32Bits(actual));
            }
        }
    }

    [Theory]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(257)]
    [InlineData(1025)]
    [InlineData(1553)] // wide rows: the packed, K-chunked path (three chunks and a tail) from 12 X rows up
    public void A_rows_bits_do_not_depend_on_the_batch_or_the_split(int cols)
    {
        RequireAvx512();
        const int Outs = 45; // five 8-row tiles and five rows left over
        var w = Random(Outs * cols, cols + 101);
        var probe = Random(cols, cols + 202);
        var alone = new float[Outs];
        Run(w, cols, probe, 1, alone, Outs, 0, Outs);

        foreach (var batchRows in new[] { 2, 3, 4, 5, 8, 12, 13, 63, 64, 200 })
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
                        Run(w, cols, x, batchRows, y, Outs, start, end);
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
    public void The_shuffle_reduction_is_Vector512_Sum()
    {
        RequireAvx512();
        var random = new Random(17);
        var c = new Vector512<float>[8];
        for (var trial = 0; trial < 2000; trial++)
        {
            for (var r = 0; r < 8; r++)
            {
                var lanes = new float[16];
                for (var i = 0; i < 16; i++)
                {
                    // magnitudes over six decades so that the order of additions shows in the bits
                    lanes[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-3, 4)));
                }

                c[r] = Vector512.Create(lanes);
            }

            var sums = GemmF32.Reduce8(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]);
            for (var r = 0; r < 8; r++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(Vector512.Sum(c[r])), BitConverter.SingleToInt32Bits(sums[r]));
            }
        }
    }

    [Fact]
    public void X_blocks_are_whole_tiles_as_few_as_the_cache_budget_allows_and_even()
    {
        foreach (var cols in new[] { 16, 17, 768, 2048, 1 << 20 })
        {
            var budget = Math.Max(3, 192 * 1024 / (cols * sizeof(float)));
            foreach (var xRows in new[] { 1, 2, 3, 4, 63, 64, 65, 100, 128, 512, 2048 })
            {
                var rows = GemmF32.XBlockRows(cols, xRows);
                var blocks = (xRows + rows - 1) / rows;
                Assert.True(rows >= 3 && rows % 3 == 0, $"cols {cols}, {xRows} rows: blocks of {rows}");
                Assert.True(rows <= budget + 2, $"cols {cols}, {xRows} rows: blocks of {rows} over the budget of {budget}");
                Assert.Equal((xRows + budget - 1) / budget, blocks); // the fewest blocks the budget allows
                Assert.True(xRows - ((blocks - 1) * rows) >= Math.Min(xRows, rows - (3 * blocks)), $"cols {cols}, {xRows} rows: last block too short"); // near-equal sizes
            }
        }

        Assert.Equal(66, GemmF32.XBlockRows(768, 64)); // 64 decode rows of a 768-wide model: one block
    }

    private static void RequireAvx512()
    {
        if (!Avx512F.IsSupported)
        {
            Assert.Skip("this machine has no AVX-512");
        }
    }

    private static void Run(float[] w, int cols, float[] x, int rows, float[] y, int outs, int start, int end)
    {
        fixed (float* pw = w)
        fixed (float* px = x)
        fixed (float* py = y)
        {
            GemmF32.Tiled512(pw, cols, px, rows, py, outs, start, end);
        }
    }
}
