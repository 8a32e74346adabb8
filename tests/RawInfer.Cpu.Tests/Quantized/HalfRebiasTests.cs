using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// The two rebias strategies of the F16 kernels (<see cref="IHalfRebias"/>) give every finite half its exact float,
/// whatever else shares its lane, and every F16 kernel the same bits whichever one the process picks. In the row
/// grouping's collection: the kernel test switches <see cref="IHalfRebias.UseMultiply"/>.
/// </summary>
[Collection(KernelSwitches.Name)] // sets IHalfRebias.UseMultiply and DecodeRowGrouping.FourRows
public sealed unsafe class HalfRebiasTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_finite_half_converts_exactly_sign_extended_and_in_either_half_of_a_pair(bool multiply)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            return; // the 512-bit kernels that use these never run without it
        }

        var random = new Random(multiply ? 2 : 1);
        var lanes = new int[16];
        var low = new uint[16];
        var high = new uint[16];
        for (var h = 0; h < 0x10000; h += 16)
        {
            for (var i = 0; i < 16; i++)
            {
                var half = (uint)(h + i);
                lanes[i] = (short)half; // as VPMOVSXWD leaves it
                var other = (uint)random.Next(0x10000); // any bits at all in the other half of the pair
                low[i] = (other << 16) | half;
                high[i] = (half << 16) | other;
            }

            var (signExtended, even, odd) = multiply
                ? Convert<MultiplyRebias>(lanes, low, high)
                : Convert<IntegerRebias>(lanes, low, high);
            for (var i = 0; i < 16; i++)
            {
                var half = BitConverter.UInt16BitsToHalf((ushort)(h + i));
                if (!Half.IsFinite(half))
                {
                    continue; // Inf/NaN: refused by the loader, not converted
                }

                var expected = BitConverter.SingleToInt32Bits((float)half);
                Assert.True(expected == BitConverter.SingleToInt32Bits(signExtended[i]), $"half 0x{h + i:X4} sign-extended: {(float)half} vs {signExtended[i]}");
                Assert.True(expected == BitConverter.SingleToInt32Bits(even[i]), $"half 0x{h + i:X4} low in 0x{low[i]:X8}: {(float)half} vs {even[i]}");
                Assert.True(expected == BitConverter.SingleToInt32Bits(odd[i]), $"half 0x{h + i:X4} high in 0x{high[i]:X8}: {(float)half} vs {odd[i]}");
            }
        }
    }

    /// <summary>
    /// The 256-bit overloads the AVX2 kernels take (the row kernel's pairs, the in-register tiles' sign-extended
    /// halves): every finite half exact.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_finite_half_converts_exactly_sign_extended_and_in_either_half_of_a_pair_on_256_bits(bool multiply)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            return; // the AVX2 kernel that uses these never runs without it
        }

        var random = new Random(multiply ? 4 : 3);
        var lanes = new int[8];
        var low = new uint[8];
        var high = new uint[8];
        for (var h = 0; h < 0x10000; h += 8)
        {
            for (var i = 0; i < 8; i++)
            {
                var half = (uint)(h + i);
                lanes[i] = (short)half; // as VPMOVSXWD leaves it
                var other = (uint)random.Next(0x10000);
                low[i] = (other << 16) | half;
                high[i] = (half << 16) | other;
            }

            var (signExtended, even, odd) = multiply ? Convert256<MultiplyRebias>(lanes, low, high) : Convert256<IntegerRebias>(lanes, low, high);
            for (var i = 0; i < 8; i++)
            {
                var half = BitConverter.UInt16BitsToHalf((ushort)(h + i));
                if (!Half.IsFinite(half))
                {
                    continue;
                }

                var expected = BitConverter.SingleToInt32Bits((float)half);
                Assert.True(expected == BitConverter.SingleToInt32Bits(signExtended[i]), $"half 0x{h + i:X4} sign-extended: {(float)half} vs {signExtended[i]}");
                Assert.True(expected == BitConverter.SingleToInt32Bits(even[i]), $"half 0x{h + i:X4} low in 0x{low[i]:X8}: {(float)half} vs {even[i]}");
                Assert.True(expected == BitConverter.SingleToInt32Bits(odd[i]), $"half 0x{h + i:X4} high in 0x{high[i]:X8}: {(float)half} vs {odd[i]}");
            }
        }
    }

    /// <summary>
    /// Every F16 kernel (the decode rows, through the engine's kernel and on their own, the in-register path for one
    /// to three X rows under both row groupings, the tile widening for more) on weights rich in subnormals and
    /// zeros: the same bits with either rebias.
    /// </summary>
    [Theory]
    [InlineData(37, 1025)]
    [InlineData(19, 768)]
    [InlineData(8, 64)]
    public void F16_kernels_give_the_same_bits_with_either_rebias(int rows, int cols)
    {
        var random = new Random((rows * 7) + cols);
        var data = (ushort*)NativeMemory.Alloc((nuint)rows * (nuint)cols * sizeof(ushort));
        var savedMultiply = IHalfRebias.UseMultiply;
        var savedGrouping = DecodeRowGrouping.FourRows;
        try
        {
            for (var i = 0; i < rows * cols; i++)
            {
                // a third subnormal or zero, the rest normal weights of the size models have
                data[i] = random.Next(3) == 0
                    ? (ushort)((random.Next(2) << 15) | random.Next(0x400))
                    : BitConverter.HalfToUInt16Bits((Half)((random.NextSingle() - 0.5f) * 0.1f));
            }

            var tensor = new WeightTensor((byte*)data, TensorType.F16, rows, cols);
            var x = new float[13 * cols];
            for (var i = 0; i < x.Length; i++)
            {
                x[i] = (random.NextSingle() * 4) - 2;
            }

            float[] Run(bool multiply, bool fourRows)
            {
                IHalfRebias.UseMultiply = multiply;
                DecodeRowGrouping.FourRows = fourRows;
                var results = new List<float>();
                var y = new float[rows];
                MatVec.Rows(tensor, x.AsSpan(0, cols), y, 0, rows);
                results.AddRange(y);
                MatVecF16.Rows(tensor, x.AsSpan(0, cols), y, 0, rows);
                results.AddRange(y);
                var widened = new float[rows * cols];
                fixed (float* pw = widened)
                {
                    Widen.Rows(tensor, 0, rows, pw);
                }

                results.AddRange(widened);
                foreach (var xRows in new[] { 1, 2, 3, 13 })
                {
                    var products = new float[xRows * rows];
                    fixed (float* px = x)
                    fixed (float* py = products)
                    {
                        Gemm.Widened(tensor, px, xRows, py, 0, rows);
                    }

                    results.AddRange(products);
                }

                return [.. results];
            }

            foreach (var fourRows in new[] { false, true })
            {
                var integer = Run(multiply: false, fourRows);
                var multiplied = Run(multiply: true, fourRows);
                Assert.Equal(integer.Select(BitConverter.SingleToInt32Bits), multiplied.Select(BitConverter.SingleToInt32Bits));
            }
        }
        finally
        {
            IHalfRebias.UseMultiply = savedMultiply;
            DecodeRowGrouping.FourRows = savedGrouping;
            NativeMemory.Free(data);
        }
    }

    private static (Vector512<float> SignExtended, Vector512<float> Low, Vector512<float> High) Convert<TRebias>(int[] lanes, uint[] low, uint[] high)
        where TRebias : struct, IHalfRebias =>
        (TRebias.SignExtended(Vector512.Create(lanes)), TRebias.Low(Vector512.Create(low)), TRebias.High(Vector512.Create(high)));

    private static (Vector256<float> SignExtended, Vector256<float> Low, Vector256<float> High) Convert256<TRebias>(int[] lanes, uint[] low, uint[] high)
        where TRebias : struct, IHalfRebias =>
        (TRebias.SignExtended(Vector256.Create(lanes)), TRebias.Low(Vector256.Create(low)), TRebias.High(Vector256.Create(high)));
}
