using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// The GEMM's prefetch of the next tile (<see cref="PrefetchAhead"/>): a range is cut among tiles without gaps or
/// overlaps; and prefetching, a hint, changes no bit of any product path that uses it.
/// </summary>
[Collection(KernelSwitches.Name)] // sets GemmF32.PrefetchTiles
public sealed unsafe class PrefetchAheadTests
{
    [Fact]
    public void A_negative_length_is_an_empty_range()
    {
        var start = (byte*)0x1000_0000; // never dereferenced
        Assert.Equal(0, new PrefetchAhead(start, -64).Bytes);
        Assert.Equal(0, new PrefetchAhead(start, 0).Part(0, 3).Bytes);
    }

    [Theory]
    [InlineData(0, 4)]
    [InlineData(100, 7)]
    [InlineData(98_304, 8)] // a 64-row F16 tile of 768 columns cut among eight W tiles
    [InlineData(52_224, 128)]
    public void Parts_cut_the_range_without_gaps_or_overlaps(int bytes, int shares)
    {
        var start = (byte*)0x1000_0000; // never dereferenced: only the arithmetic of the cut is read
        var whole = new PrefetchAhead(start, bytes);
        var next = start;
        for (var share = 0; share < shares; share++)
        {
            var part = whole.Part(share, shares);
            Assert.True(part.Start == next, $"part {share} starts {part.Start - start} bytes in, not {next - start}");
            Assert.InRange(part.Bytes, (bytes / shares) - 1, (bytes / shares) + 1);
            next = part.End;
        }

        Assert.True(next == start + bytes, $"the parts end {next - start} bytes in, not {bytes}");
    }

    public static TheoryData<TensorType, int, int, int> Products() => new()
    {
        { TensorType.F32, 64, 96, 768 },   // 8-row W tiles in L1, the next one prefetched
        { TensorType.F32, 13, 40, 2048 },  // wide rows: packed tiles
        { TensorType.F32, 512, 24, 768 },  // several X blocks, W streamed once per block
        { TensorType.F16, 64, 136, 768 },  // widened tiles, the next tile's rows prefetched
        { TensorType.Q8_0, 66, 72, 2048 }, // widened wide rows
        { TensorType.BF16, 12, 200, 96 },
        { TensorType.Q8_0, 1, 44, 768 },   // widened in registers, the next 8-row tile's blocks prefetched
        { TensorType.F16, 3, 40, 1024 },   // likewise, three X rows
    };

    [Theory]
    [MemberData(nameof(Products))]
    public void Prefetching_changes_no_bit_of_a_product(TensorType type, int xRows, int outRows, int cols)
    {
        if (!Avx512F.IsSupported)
        {
            Assert.Skip("the prefetching tiled GEMM is the AVX-512 path; this machine has none");
        }

        var rowBytes = TensorEncoding.RowBytes(type, cols);
        var data = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * outRows), 64);
        try
        {
            var values = Random(outRows * cols, seed: cols + outRows);
            for (var r = 0; r < outRows; r++)
            {
                TensorEncoding.EncodeRow(values.AsSpan(r * cols, cols), type, new Span<byte>(data + ((long)r * rowBytes), rowBytes));
            }

            var w = new WeightTensor(data, type, outRows, cols);
            var x = Random(xRows * cols, seed: xRows);
            var with = Product(in w, x, xRows, prefetch: true);
            var without = Product(in w, x, xRows, prefetch: false);
            for (var i = 0; i < with.Length; i++)
            {
                Assert.True(
                    BitConverter.SingleToInt32Bits(with[i]) == BitConverter.SingleToInt32Bits(without[i]),
                    $"element {i}: {with[i]:R} with prefetching, {without[i]:R} without");
            }
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }

    /// <summary>Y = X·Wᵀ in two W-row shares, as two workers would compute it.</summary>
    private static float[] Product(in WeightTensor w, float[] x, int xRows, bool prefetch)
    {
        var y = new float[xRows * w.Rows];
        var split = w.Rows / 16 * 8;
        GemmF32.PrefetchTiles = prefetch;
        try
        {
            fixed (float* px = x)
            fixed (float* py = y)
            {
                Gemm.Rows(in w, px, xRows, py, 0, split);
                Gemm.Rows(in w, px, xRows, py, split, w.Rows);
            }
        }
        finally
        {
            GemmF32.PrefetchTiles = true;
        }

        return y;
    }
}
