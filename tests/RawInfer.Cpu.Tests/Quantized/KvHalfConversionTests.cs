using RawInfer.Cpu.Kernels.Quantized;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// The conversions of a 16-bit KV cache. Half against .NET's scalar <c>(Half)x</c> and <c>(float)h</c>: float → half
/// rounded to nearest-even bit for bit (ties, overflow to Inf, subnormal results, signed zeros; NaN stays NaN with
/// its sign), and half → float exact for all 65,536 bit patterns. Lengths that are not a multiple of the vector
/// width exercise the scalar tails. bfloat16 (which .NET lacks) against the nearer of its two neighbours in double.
/// </summary>
public unsafe class KvHalfConversionTests
{
    [Fact]
    public void Rounding_to_half_matches_the_scalar_cast_on_every_boundary()
    {
        var inputs = new List<float>();
        for (var bits = 0; bits < 0x7C00; bits++)
        {
            // every finite half, its neighbours in float, and the midpoint to the next half with its neighbours
            var value = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            var next = (float)BitConverter.UInt16BitsToHalf((ushort)(bits + 1));
            var middle = (value + next) / 2; // exact in float: halves have 11 significant bits
            foreach (var x in new[] { value, MathF.BitDecrement(value), MathF.BitIncrement(value), middle, MathF.BitDecrement(middle), MathF.BitIncrement(middle) })
            {
                inputs.Add(x);
                inputs.Add(-x);
            }
        }

        inputs.AddRange([65504f, 65519.996f, 65520f, 70000f, 1e30f, float.MaxValue, float.PositiveInfinity, float.NegativeInfinity, 0f, -0f,
            float.Epsilon, -float.Epsilon, 1e-40f, 2.9802322e-8f, 2.9802326e-8f, 5.9604645e-8f, 8.940697e-8f, 6.1035156e-05f, 6.1032e-05f]);
        var random = new Random(5);
        for (var i = 0; i < 100_000; i++)
        {
            inputs.Add(BitConverter.Int32BitsToSingle(random.Next(int.MinValue, int.MaxValue))); // every exponent, NaNs included
        }

        inputs.Add(1.5f); // an odd total length: the tail after the last full vector
        var source = inputs.ToArray();
        var actual = new Half[source.Length];
        HalfConversion.SinglesToHalves(source, actual);
        for (var i = 0; i < source.Length; i++)
        {
            var expected = (Half)source[i];
            if (float.IsNaN(source[i]))
            {
                Assert.True(Half.IsNaN(actual[i]), $"{source[i]:R} (0x{BitConverter.SingleToUInt32Bits(source[i]):X8}) gave {actual[i]}");
                Assert.Equal(float.IsNegative(source[i]), Half.IsNegative(actual[i]));
                continue;
            }

            Assert.True(
                BitConverter.HalfToUInt16Bits(expected) == BitConverter.HalfToUInt16Bits(actual[i]),
                $"{source[i]:R} (0x{BitConverter.SingleToUInt32Bits(source[i]):X8}): expected 0x{BitConverter.HalfToUInt16Bits(expected):X4}, got 0x{BitConverter.HalfToUInt16Bits(actual[i]):X4}");
        }
    }

    [Fact]
    public void Every_half_converts_back_exactly()
    {
        var source = new ushort[65536 + 5]; // and a tail of five
        for (var i = 0; i < source.Length; i++)
        {
            source[i] = (ushort)i;
        }

        var actual = new float[source.Length];
        fixed (ushort* s = source)
        fixed (float* d = actual)
        {
            HalfConversion.HalvesToSingles(s, d, source.Length);
        }

        for (var i = 0; i < source.Length; i++)
        {
            var expected = (float)BitConverter.UInt16BitsToHalf(source[i]);
            if (float.IsNaN(expected))
            {
                Assert.True(float.IsNaN(actual[i]), $"half 0x{source[i]:X4} gave {actual[i]:R}");
                Assert.Equal(float.IsNegative(expected), float.IsNegative(actual[i]));
                continue;
            }

            Assert.True(
                BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual[i]),
                $"half 0x{source[i]:X4}: expected {expected:R}, got {actual[i]:R}");
        }
    }

    [Fact]
    public void Rounding_to_bfloat16_picks_the_nearer_neighbour_and_the_even_one_on_a_tie()
    {
        var inputs = new List<float>();
        var random = new Random(9);
        for (var i = 0; i < 200_000; i++)
        {
            var bits = (uint)random.Next(int.MinValue, int.MaxValue);
            inputs.Add(BitConverter.UInt32BitsToSingle(bits));
            inputs.Add(BitConverter.UInt32BitsToSingle((bits & 0xFFFF0000) | 0x8000)); // exactly half-way
        }

        inputs.AddRange([0f, -0f, float.Epsilon, float.MaxValue, -float.MaxValue, float.PositiveInfinity, float.NegativeInfinity,
            BitConverter.UInt32BitsToSingle(0x7F7FFFFF), BitConverter.UInt32BitsToSingle(0x3F80_8000), BitConverter.UInt32BitsToSingle(0x3F81_8000)]);
        inputs.Add(3f); // an odd length: the scalar tail
        var source = inputs.ToArray();
        var actual = new ushort[source.Length];
        HalfConversion.SinglesToBFloat16s(source, actual);
        for (var i = 0; i < source.Length; i++)
        {
            var x = source[i];
            var got = BitConverter.UInt32BitsToSingle((uint)actual[i] << 16);
            if (float.IsNaN(x))
            {
                Assert.True(float.IsNaN(got), $"NaN 0x{BitConverter.SingleToUInt32Bits(x):X8} gave 0x{actual[i]:X4}");
                Assert.Equal(float.IsNegative(x), float.IsNegative(got));
                continue;
            }

            Assert.Equal(ReferenceBFloat16(x), actual[i]);
        }
    }

    [Fact]
    public void Mismatched_lengths_are_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => HalfConversion.SinglesToHalves(new float[3], new Half[2]));
        Assert.Contains("3 floats into 2 halves", error.Message);
        Assert.Throws<ArgumentException>(() => HalfConversion.SinglesToBFloat16s(new float[3], new ushort[4]));
    }

    /// <summary>
    /// The bfloat16 nearest to x by exact (double) distance between its two neighbours toward zero and away from it,
    /// ties to the one with an even last bit; beyond the largest finite bfloat16 the round-away neighbour is ±Inf,
    /// which IEEE rounding picks from half an ulp past it on.
    /// </summary>
    private static ushort ReferenceBFloat16(float x)
    {
        var bits = BitConverter.SingleToUInt32Bits(x);
        var down = (ushort)(bits >> 16);
        if ((bits & 0xFFFF) == 0)
        {
            return down;
        }

        var up = (ushort)(down + 1);
        var toward = (double)BitConverter.UInt32BitsToSingle((uint)down << 16);
        var away = (up & 0x7FFF) == 0x7F80
            ? Math.CopySign(Math.Pow(2, 128), x) // past float's largest: the "next" value is 2^128 (rounds to Inf)
            : (double)BitConverter.UInt32BitsToSingle((uint)up << 16);
        var distanceDown = Math.Abs(x - toward);
        var distanceUp = Math.Abs(away - x);
        return distanceDown < distanceUp ? down : distanceUp < distanceDown ? up : (down & 1) == 0 ? down : up;
    }
}
