using System.Runtime.InteropServices;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Tests.Kernels;
using RawInfer.Models;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// The Q8_0 rows' interleaved layout (<see cref="GemmQ8_0.Interleave"/>) and the products that read it: the layout
/// holds each quant and scale where it says, every output equals the definition bit for bit for any W-row range
/// (a group the range cuts is read from the group too; rows past the last whole group in the file's layout) and any
/// number of X rows (the group kernel, or packed tiles made from the groups), whether the rows are a copy or were
/// rewritten in place (<see cref="CpuWeightLayout"/>); and the runners' copies (<see cref="InterleavedCopies"/>) go
/// to the product matrices alone, and only where they fit.
/// </summary>
[Collection(KernelSwitches.Name)] // the products read MatVecQ8_0.ScaleLookup and DecodeRowGrouping's switches
public sealed unsafe class GemmQ8_0InterleavedTests
{
    [Fact]
    public void The_copy_holds_each_quant_plus_128_and_each_scale_where_the_layout_says()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: the CPU backends make no interleaved copy");
        const int rows = 19, cols = 96; // two whole groups, three rows left in the file's layout
        using var w = Encoded.Random(TensorType.Q8_0, rows, cols, seed: 3);
        var copy = Interleaved(w.Tensor);
        Assert.Equal(2 * 8 * 3 * MatVecQ8_0.BlockBytes, copy.Length);
        var blocks = cols / MatVecQ8_0.BlockElements;
        for (var r = 0; r < 16; r++)
        {
            var row = w.Row(r);
            var group = copy.AsSpan(r / 8 * 8 * blocks * MatVecQ8_0.BlockBytes);
            var j = r % 8;
            for (var b = 0; b < blocks; b++)
            {
                var block = row.Slice(b * MatVecQ8_0.BlockBytes, MatVecQ8_0.BlockBytes);
                Assert.Equal(block[0], group[(blocks * 256) + (b * 16) + (j * 2)]);
                Assert.Equal(block[1], group[(blocks * 256) + (b * 16) + (j * 2) + 1]);
                for (var i = 0; i < MatVecQ8_0.BlockElements; i++)
                {
                    Assert.Equal((byte)((sbyte)block[2 + i] + 128), group[(b * 256) + (i / 4 * 32) + (j * 4) + (i % 4)]);
                }
            }
        }
    }

    public static TheoryData<int, int, int, int, int> Ranges() => new()
    {
        // outRows, cols, xRows, rowStart, rowEnd
        { 64, 768, 1, 0, 64 },
        { 64, 768, 2, 0, 64 },
        { 64, 768, 3, 0, 64 },
        { 70, 96, 1, 0, 70 },      // blocks not a multiple of eight; six rows past the last group
        { 45, 2048, 3, 5, 45 },    // starts inside the first group
        { 100, 1056, 2, 3, 93 },   // starts and ends inside groups
        { 33, 320, 1, 9, 15 },     // inside one group: the file's layout alone
        { 7, 64, 2, 0, 7 },        // no whole group: no copy
        { 48, 256, 4, 0, 48 },     // X rows in tiles of three and one
        { 40, 96, 5, 3, 37 },      // three and two
        { 45, 256, 5, 3, 45 },     // whole groups of eight blocks: rows outside the groups take the unpacked path, five X rows
        { 21, 768, 7, 0, 21 },     // five rows past the last group, seven X rows
        { 24, 768, GemmQ8_0.InterleavedRows, 0, 24 },     // the most X rows the copy serves
        { 48, 256, GemmQ8_0.InterleavedRows + 1, 0, 48 }, // one more: the packed path, same bits
    };

    [Theory]
    [MemberData(nameof(Ranges))]
    public void Every_output_read_from_the_copy_equals_the_definition(int outRows, int cols, int xRows, int rowStart, int rowEnd)
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: the CPU backends make no interleaved copy");
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: outRows + cols + xRows);
        CheckAgainstDefinition(w, cols, xRows, rowStart, rowEnd);
    }

    public static TheoryData<int, int, int, int, int> PackedRanges() => new()
    {
        // outRows, cols, xRows, rowStart, rowEnd: more X rows than the copy's own kernel takes, so packed tiles
        { 77, 768, 64, 0, 77 },     // tiles of 32, 32 and 13 rows: the last one group and five rows past the groups
        { 100, 1056, 50, 8, 96 },   // starts on a group, so its tiles are made from the groups
        { 100, 1056, 50, 8, 92 },   // ends inside a group: its first rows from the group, the rest of the tile zero
        { 100, 1056, 50, 3, 93 },   // starts inside a group: tiles from the file's layout
        { 40, 96, 55, 16, 40 },     // three blocks: no whole group of eight blocks
        { 13, 256, 49, 0, 13 },     // one group and five rows past it in a single tile
    };

    /// <summary>
    /// Packed tiles made from the groups (<see cref="GemmQ8_0.PackFromGroups"/>) equal the definition, on 512 and 256
    /// bits, with the scales from the groups or from a decoded table; and they did read the groups.
    /// </summary>
    [Theory]
    [MemberData(nameof(PackedRanges))]
    public void Packed_tiles_made_from_the_groups_equal_the_definition(int outRows, int cols, int xRows, int rowStart, int rowEnd)
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: the CPU backends make no interleaved copy");
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: outRows + cols + xRows);
        var savedWide = GemmQ8_0.Wide;
        try
        {
            foreach (var wide in savedWide ? new[] { true, false } : [false])
            {
                GemmQ8_0.Wide = wide;
                CheckAgainstDefinition(w, cols, xRows, rowStart, rowEnd, decodedScales: false);
                CheckAgainstDefinition(w, cols, xRows, rowStart, rowEnd, decodedScales: true);
            }
        }
        finally
        {
            GemmQ8_0.Wide = savedWide;
        }
    }

    /// <summary>
    /// Rows rewritten in place (<see cref="CpuWeightLayout"/>: the groups in the tensor's own bytes, the rows past the
    /// last group in the file's layout) give the definition's outputs for every range and X-row count, including
    /// ranges that cut groups on the packed path, and whatever the benchmark switches say: a tensor rewritten in
    /// place has no file layout to fall back to, so its products read the groups regardless.
    /// </summary>
    [Theory]
    [MemberData(nameof(Ranges))]
    [MemberData(nameof(PackedRanges))]
    public void Rows_rewritten_in_place_give_the_definitions_outputs_whatever_the_switches(int outRows, int cols, int xRows, int rowStart, int rowEnd)
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var w = Encoded.Random(TensorType.Q8_0, outRows, cols, seed: outRows + cols + xRows);
        var bytes = checked((int)(w.Tensor.ElementCount / MatVecQ8_0.BlockElements * MatVecQ8_0.BlockBytes));
        var rewritten = GC.AllocateArray<byte>(bytes, pinned: true);
        new ReadOnlySpan<byte>(w.Tensor.Data, bytes).CopyTo(rewritten);
        var x = GemmQ8_0Tests.Activations(xRows, cols, seed: xRows + 1);
        var expected = GemmQ8_0Tests.Reference(w, x, xRows, outRows, cols);
        var (useInterleaved, maxRows, packFromGroups, wide) = (GemmQ8_0.UseInterleaved, GemmQ8_0.MaxInterleavedRows, GemmQ8_0.PackFromGroups, GemmQ8_0.Wide);
        try
        {
            fixed (byte* p = rewritten)
            fixed (float* px = x)
            {
                var tensor = new WeightTensor(p, TensorType.Q8_0, outRows, cols);
                CpuWeightLayout.InterleaveRows(in tensor);
                tensor = tensor.WithInterleaved(p);
                Assert.True(tensor.InterleavedInPlace);
                Assert.True(outRows < 8 || !rewritten.AsSpan(0, 8 * cols / 32 * 34).SequenceEqual(new ReadOnlySpan<byte>(w.Tensor.Data, 8 * cols / 32 * 34)));
                var table = new float[outRows * (cols / MatVecQ8_0.BlockElements)];
                var decodedFromFile = new float[table.Length];
                MatVecQ8_0.DecodeScales(in tensor, table);
                MatVecQ8_0.DecodeScales(w.Tensor, decodedFromFile);
                Assert.Equal(decodedFromFile, table); // the rewritten scales decode to the file's values
                for (var r = 0; r < outRows; r++)
                {
                    // the row lookup of an embedding table the classifier shares
                    var fromFile = new float[cols];
                    var fromGroups = new float[cols];
                    MatVecQ8_0.DequantizeRow(w.Tensor, r, fromFile);
                    MatVecQ8_0.DequantizeRow(in tensor, r, fromGroups);
                    Assert.Equal(fromFile, fromGroups);
                }

                fixed (float* pTable = table)
                {
                    // (not GemmQ8_0.Enabled: off, it changes other tests' Q8_0 bits, and the tests of other classes run
                    // beside this one)
                    foreach (var (interleaved, rows, groups, wideTiles, decoded) in new[]
                    {
                        (true, GemmQ8_0.InterleavedRows, true, wide, false),
                        (false, GemmQ8_0.MaxDirectRows, false, wide, false),
                        (false, GemmQ8_0.MaxDirectRows, false, false, true),
                        (true, GemmQ8_0.InterleavedRows, false, wide, true),
                    })
                    {
                        (GemmQ8_0.UseInterleaved, GemmQ8_0.MaxInterleavedRows, GemmQ8_0.PackFromGroups, GemmQ8_0.Wide) = (interleaved, rows, groups, wideTiles);
                        var read = decoded ? tensor.WithDecodedScales(pTable) : tensor;
                        var y = new float[xRows * outRows];
                        fixed (float* py = y)
                        {
                            Gemm.Rows(in read, px, xRows, py, rowStart, rowEnd);
                        }

                        for (var t = 0; t < xRows; t++)
                        {
                            Assert.Equal(expected.AsSpan((t * outRows) + rowStart, rowEnd - rowStart).ToArray(), y.AsSpan((t * outRows) + rowStart, rowEnd - rowStart).ToArray());
                        }
                    }
                }
            }
        }
        finally
        {
            (GemmQ8_0.UseInterleaved, GemmQ8_0.MaxInterleavedRows, GemmQ8_0.PackFromGroups, GemmQ8_0.Wide) = (useInterleaved, maxRows, packFromGroups, wide);
        }
    }

    /// <summary>The kernels that read only the file's layout refuse a tensor rewritten in place instead of reading garbage.</summary>
    [Fact]
    public void File_layout_readers_refuse_rows_rewritten_in_place()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var w = Encoded.Random(TensorType.Q8_0, 16, 64, seed: 9);
        var tensor = w.Tensor.WithInterleaved(w.Tensor.Data); // only the flag matters here
        var x = new float[64];
        var y = new float[16];
        Assert.Throws<InvalidOperationException>(() => MatVecQ8_0.Rows(in tensor, x, y, 0, 16));
        Assert.Throws<InvalidOperationException>(() =>
        {
            fixed (float* px = x)
            fixed (float* py = y)
            {
                Gemm.Widened(in tensor, px, 1, py, 0, 16);
            }
        });
    }

    /// <summary>Quants at −128 and ±127 (the unsigned copy's 0 and 255) with X quants reaching ±127: exact sums still.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Quants_at_the_ends_of_the_int8_range_give_the_definitions_sums(int xRows)
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: the CPU backends make no interleaved copy");
        const int outRows = 24, cols = 512;
        using var w = GemmQ8_0Tests.WithQuantsAtTheEnds(outRows, cols, every: 2);
        CheckAgainstDefinition(w, cols, xRows, 0, outRows);
    }

    [Fact]
    public void The_runners_copy_the_product_matrices_alone_and_only_where_they_fit()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: the CPU backends make no interleaved copy");
        using var embedding = Encoded.Random(TensorType.Q8_0, 40, 64, seed: 1);
        using var norm = Encoded.Random(TensorType.F32, 1, 64, seed: 2);
        using var square = Encoded.Random(TensorType.Q8_0, 64, 64, seed: 3);
        using var f32 = Encoded.Random(TensorType.F32, 64, 64, seed: 4);
        var weights = new LlamaWeights
        {
            TokenEmbedding = embedding.Tensor,
            Layers =
            [
                new LayerWeights
                {
                    AttentionNorm = norm.Tensor, Wq = square.Tensor, Wk = square.Tensor, Wv = square.Tensor, Wo = square.Tensor,
                    FfnNorm = norm.Tensor, W1 = square.Tensor, W2 = f32.Tensor, W3 = square.Tensor,
                },
            ],
            FinalNorm = norm.Tensor,
            Classifier = embedding.Tensor,
        };
        var bytes = (6 * InterleavedCopies.Footprint(square.Tensor)) + InterleavedCopies.Footprint(embedding.Tensor);

        var copied = InterleavedCopies.Attach(weights, out var copies, availableBytes: (long)(bytes / InterleavedCopies.MemoryShare));
        using (copies)
        {
            Assert.NotNull(copies);
            Assert.Equal(bytes, copies.Bytes);
            Assert.Equal(OperatingSystem.IsLinux(), copies.Mapped); // on huge pages where the OS has them
            var layer = copied.Layers[0];
            foreach (var product in new[] { layer.Wq, layer.Wk, layer.Wv, layer.Wo, layer.W1, layer.W3, copied.Classifier })
            {
                Assert.True(product.Interleaved != null && (nint)product.Interleaved % 64 == 0);
                Assert.True(product.Data == square.Tensor.Data || product.Data == embedding.Tensor.Data);
            }

            Assert.True(layer.Wq.Interleaved != layer.Wk.Interleaved); // one copy per matrix, even of the same data
            Assert.True(layer.W2.Interleaved == null);                    // F32
            Assert.True(copied.TokenEmbedding.Interleaved == null);       // read by row, not multiplied
            Assert.True(copied.FinalNorm.Interleaved == null && layer.AttentionNorm.Interleaved == null);

            // the copies read as the file's layout does
            var x = GemmQ8_0Tests.Activations(1, 64, seed: 9);
            var expected = GemmQ8_0Tests.Reference(square, x, 1, 64, 64);
            var y = new float[64];
            fixed (float* px = x)
            fixed (float* py = y)
            {
                GemmQ8_0.Rows(layer.W3, px, 1, py, 64, 0, 64);
            }

            Assert.Equal(expected, y);
        }

        copies!.Dispose(); // twice: the second does nothing

        // one byte short of room: no copy at all
        var kept = InterleavedCopies.Attach(weights, out var none, availableBytes: (long)(bytes / InterleavedCopies.MemoryShare) - 4);
        Assert.Null(none);
        Assert.True(kept.Layers[0].Wq.Interleaved == null && kept.Classifier.Interleaved == null);
    }

    private static byte[] Interleaved(WeightTensor w)
    {
        var copy = GC.AllocateArray<byte>(checked((int)GemmQ8_0.InterleavedBytes(w)), pinned: true);
        fixed (byte* p = copy)
        {
            GemmQ8_0.Interleave(w, p);
        }

        return copy;
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) read with the copy equal the definition, for all the X rows together and for each alone;
    /// and they were read from the copy, not the file's layout.
    /// </summary>
    private static void CheckAgainstDefinition(Encoded w, int cols, int xRows, int rowStart, int rowEnd, bool decodedScales = false)
    {
        var outRows = w.Tensor.Rows;
        var copy = Interleaved(w.Tensor);
        var x = GemmQ8_0Tests.Activations(xRows, cols, seed: xRows + 1);
        var expected = GemmQ8_0Tests.Reference(w, x, xRows, outRows, cols);
        var table = new float[outRows * (cols / MatVecQ8_0.BlockElements)];
        MatVecQ8_0.DecodeScales(w.Tensor, table);
        fixed (byte* pCopy = copy)
        fixed (float* pTable = table)
        fixed (float* px = x)
        {
            var tensor = w.Tensor.WithInterleaved(pCopy);
            if (decodedScales)
            {
                tensor = tensor.WithDecodedScales(pTable);
            }

            var y = new float[xRows * outRows];
            fixed (float* py = y)
            {
                GemmQ8_0.Rows(in tensor, px, xRows, py, outRows, rowStart, rowEnd);
            }

            for (var t = 0; t < xRows; t++)
            {
                Assert.Equal(expected.AsSpan((t * outRows) + rowStart, rowEnd - rowStart).ToArray(), y.AsSpan((t * outRows) + rowStart, rowEnd - rowStart).ToArray());
                var single = new float[outRows];
                fixed (float* pSingle = single)
                {
                    GemmQ8_0.Rows(in tensor, px + (t * cols), 1, pSingle, outRows, rowStart, rowEnd);
                }

                Assert.Equal(expected.AsSpan((t * outRows) + rowStart, rowEnd - rowStart).ToArray(), single.AsSpan(rowStart, rowEnd - rowStart).ToArray());
            }

            // and the products did read the copy: with its quants cleared, the rows of whole groups in the range change
            var fromGroups = xRows <= GemmQ8_0.MaxInterleavedRows || (rowStart % 8 == 0 && GemmQ8_0.PackFromGroups);
            if (fromGroups && rowStart < Math.Min(rowEnd, outRows & ~7))
            {
                Array.Fill(copy, (byte)0);
                var cleared = new float[xRows * outRows];
                fixed (float* pCleared = cleared)
                {
                    GemmQ8_0.Rows(in tensor, px, xRows, pCleared, outRows, rowStart, rowEnd);
                }

                // the last X row's outputs (its tile read the copy too): every row in one of the matrix's whole groups
                // changed, also where the range cuts the group; the rows past the last group (the file's layout) did not
                var last = (xRows - 1) * outRows;
                var groupsEnd = Math.Min(rowEnd, outRows & ~7);
                for (var r = rowStart; r < groupsEnd; r++)
                {
                    Assert.True(expected[last + r] != cleared[last + r], $"row {r} did not read the copy");
                }

                Assert.Equal(expected.AsSpan(last + groupsEnd, rowEnd - groupsEnd).ToArray(), cleared.AsSpan(last + groupsEnd, rowEnd - groupsEnd).ToArray());
            }
        }
    }
}
