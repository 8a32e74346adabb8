using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// IEEE half and bfloat16 bit patterns → float32 inside vector registers. .NET exposes no F16C/VCVTPH2PS
/// intrinsic, so halves are converted with integer ops: shift the exponent and mantissa into float position and
/// rebias the exponent. <see cref="HalfToSingle(Vector512{uint})"/> (every half, Inf/NaN included) rebiases by
/// multiplying by 2^112; the kernels' <see cref="FiniteHalfToSingle(Vector512{uint})"/> avoids that multiply
/// (see <c>FromMagnitude</c>), on Intel; AMD cores take the multiply at full speed (<see cref="IHalfRebias"/>).
/// </summary>
internal static class HalfConversion
{
    private const uint SignMask = 0x8000;
    private const uint MagnitudeMask = 0x7FFF;
    private const uint HalfInfinity = 0x7C00;
    private const uint FloatExponentMask = 0x7F800000;
    /// <summary>2^112 = 2^(127 - 15): a half's bits moved into float position, times this, give its value.</summary>
    internal const float Rebias = 5.192296858534828e33f;

    /// <summary>127 − 15 in a float's exponent field: a normal half's exponent and mantissa in float position plus this are its float.</summary>
    private const uint NormalRebiasBits = 112 << 23;

    /// <summary>Exponent field 1: magnitudes below it have a zero exponent.</summary>
    private const uint FloatImplicitOne = 1 << 23;

    /// <summary>Exponent 113 (2^-14, the half's smallest normal binade) in a float's exponent field.</summary>
    private const uint SmallExponentBits = 113 << 23;

    /// <summary>2^-14, the smallest normal half, whose bits are <see cref="SmallExponentBits"/>.</summary>
    private const float SmallestNormalHalf = 6.1035156e-05f;

    private const uint FloatSignBit = 0x80000000;

    /// <summary>After a lane is shifted right by 3: its high half's exponent and mantissa, in float position.</summary>
    private const uint HighHalfMagnitude = 0x0FFFE000;

    /// <summary>Lanes hold half bits in their low 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> HalfToSingle(Vector512<uint> h)
    {
        var sign = (h & Vector512.Create(SignMask)) << 16;
        var magnitude = h & Vector512.Create(MagnitudeMask);
        var shifted = magnitude << 13;
        var finite = (shifted.AsSingle() * Vector512.Create(Rebias)).AsUInt32();
        var special = shifted | Vector512.Create(FloatExponentMask);
        var isSpecial = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(HalfInfinity));
        return (Vector512.ConditionalSelect(isSpecial, special, finite) | sign).AsSingle();
    }

    /// <summary>Lanes hold half bits in their low 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> HalfToSingle(Vector256<uint> h)
    {
        var sign = (h & Vector256.Create(SignMask)) << 16;
        var magnitude = h & Vector256.Create(MagnitudeMask);
        var shifted = magnitude << 13;
        var finite = (shifted.AsSingle() * Vector256.Create(Rebias)).AsUInt32();
        var special = shifted | Vector256.Create(FloatExponentMask);
        var isSpecial = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(HalfInfinity));
        return (Vector256.ConditionalSelect(isSpecial, special, finite) | sign).AsSingle();
    }

    /// <summary>
    /// Lanes hold half bits in their low 16 bits (anything above is ignored) → float, exact for every finite
    /// half (normal, subnormal, ±0) and without a float operation on a denormal (see
    /// <see cref="FromMagnitude(Vector512{uint}, Vector512{uint})"/>). Inf/NaN come out finite (magnitude
    /// 2^16..2^17): for weights, which the GGUF loader has checked are finite (<c>GgufFile.GetWeight</c>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FiniteHalfToSingle(Vector512<uint> h) => FromMagnitude((h << 17) >> 4, h << 16);

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FiniteHalfToSingle(Vector256<uint> h) => FromMagnitude((h << 17) >> 4, h << 16);

    /// <summary>
    /// As <see cref="FiniteHalfToSingle(Vector512{uint})"/> for lanes holding a half sign-extended to 32 bits (as
    /// VPMOVSXWD widens them): the sign is already in bit 31, one operation fewer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FiniteSignExtendedHalfToSingle(Vector512<int> h) =>
        FromMagnitude((h.AsUInt32() << 17) >> 4, h.AsUInt32());

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FiniteSignExtendedHalfToSingle(Vector256<int> h) =>
        FromMagnitude((h.AsUInt32() << 17) >> 4, h.AsUInt32());

    /// <summary>As <see cref="FiniteHalfToSingle(Vector512{uint})"/> for the half in each lane's high 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FiniteHighHalfToSingle(Vector512<uint> h) => FromMagnitude((h >> 3) & Vector512.Create(HighHalfMagnitude), h);

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FiniteHighHalfToSingle(Vector256<uint> h) => FromMagnitude((h >> 3) & Vector256.Create(HighHalfMagnitude), h);

    /// <summary>
    /// A half's exponent and mantissa in float position (bits 23..27 and 13..22) and its sign in bit 31 of
    /// <paramref name="signSource"/> → its value. A normal half (exponent 1..30) only needs its exponent rebiased
    /// by 127 − 15, an integer add. A zero or subnormal one gets exponent 113 instead, which reads as
    /// 2^-14·(1 + m/1024), and 2^-14 is subtracted, leaving 2^-14·m/1024 exactly (the subtraction merges into
    /// the normal result under the lane mask, one instruction); the sign goes on last. Every
    /// float operand here is normal. The shorter "reinterpret, multiply by 2^112" (or, in the row kernel, feeding
    /// the reinterpreted half, its value times 2^-112, straight to the FMA) hands the float unit a denormal for
    /// each subnormal half, and on Intel cores a denormal operand costs a microcode assist of ~120 cycles per
    /// instruction. About 0.3% of F16 weights are subnormal (|w| &lt; 6.1e-5; 3.3% of 16-lane vectors of a
    /// synthetic 110m model hold one): on the 2-core Xeon VM a one-thread row sweep over that model's weights ran
    /// at 4.4–5.4 GB/s the old way and 11–12 GB/s this way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> FromMagnitude(Vector512<uint> magnitude, Vector512<uint> signSource)
    {
        var normal = magnitude + Vector512.Create(NormalRebiasBits);
        var small = Vector512.LessThan(magnitude, Vector512.Create(FloatImplicitOne));
        var lifted = (magnitude | Vector512.Create(SmallExponentBits)).AsSingle() - Vector512.Create(SmallestNormalHalf);
        var value = Vector512.ConditionalSelect(small.AsSingle(), lifted, normal.AsSingle());
        return (value.AsUInt32() | (signSource & Vector512.Create(FloatSignBit))).AsSingle();
    }

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> FromMagnitude(Vector256<uint> magnitude, Vector256<uint> signSource)
    {
        var normal = magnitude + Vector256.Create(NormalRebiasBits);
        var small = Vector256.LessThan(magnitude, Vector256.Create(FloatImplicitOne));
        var lifted = (magnitude | Vector256.Create(SmallExponentBits)).AsSingle() - Vector256.Create(SmallestNormalHalf);
        var value = Vector256.ConditionalSelect(small.AsSingle(), lifted, normal.AsSingle());
        return (value.AsUInt32() | (signSource & Vector256.Create(FloatSignBit))).AsSingle();
    }

    /// <summary>A half's exponent field 31 (Inf/NaN) in float position, as <c>FromMagnitude</c> takes it.</summary>
    private const uint SpecialMagnitude = 0x0F800000;

    /// <summary>
    /// As <see cref="FiniteSignExtendedHalfToSingle(Vector512{int})"/>, and exact for Inf and NaN too (one compare
    /// and a masked OR more): every half gives the float <c>(float)(Half)bits</c> gives, a NaN's payload moved up.
    /// For the KV cache, whose halves come from activations, not from a loader that has checked them.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SignExtendedHalfToSingle(Vector512<int> h)
    {
        var magnitude = (h.AsUInt32() << 17) >> 4;
        var value = FromMagnitude(magnitude, h.AsUInt32());
        var special = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(SpecialMagnitude));
        return Vector512.ConditionalSelect(special.AsSingle(), (value.AsUInt32() | Vector512.Create(FloatExponentMask)).AsSingle(), value);
    }

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SignExtendedHalfToSingle(Vector256<int> h)
    {
        var magnitude = (h.AsUInt32() << 17) >> 4;
        var value = FromMagnitude(magnitude, h.AsUInt32());
        var special = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(SpecialMagnitude));
        return Vector256.ConditionalSelect(special.AsSingle(), (value.AsUInt32() | Vector256.Create(FloatExponentMask)).AsSingle(), value);
    }

    /// <summary>
    /// destination[i] = (float)source[i] for i &lt; count: every half exactly, Inf and NaN included, 32 (or 16)
    /// at a time without a float operation on a denormal.
    /// </summary>
    public static unsafe void HalvesToSingles(ushort* source, float* destination, int count)
    {
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= count; i += 32)
            {
                var h = Vector512.Load((short*)source + i);
                SignExtendedHalfToSingle(Vector512.WidenLower(h)).Store(destination + i);
                SignExtendedHalfToSingle(Vector512.WidenUpper(h)).Store(destination + i + 16);
            }
        }

        if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= count; i += 16)
            {
                var h = Vector256.Load((short*)source + i);
                SignExtendedHalfToSingle(Vector256.WidenLower(h)).Store(destination + i);
                SignExtendedHalfToSingle(Vector256.WidenUpper(h)).Store(destination + i + 8);
            }
        }

        for (; i < count; i++)
        {
            destination[i] = (float)BitConverter.UInt16BitsToHalf(source[i]);
        }
    }

    /// <summary>Magnitude bits from which a float rounds to ±Inf as a half: 65520, half-way past 65504.</summary>
    private const uint HalfOverflowBits = 0x477FF000;

    /// <summary>2^-14 as float bits: below it a float rounds to a subnormal half (or zero).</summary>
    private const uint HalfNormalBits = SmallExponentBits;

    /// <summary>0.5f: adding it to a magnitude below 2^-14 rounds it to a multiple of 2^-24 (nearest-even) in the low bits.</summary>
    private const uint HalfSubnormalMagicBits = 126 << 23;

    /// <summary>(15 − 127) in a float's exponent field plus the 0xFFF half-ulp-minus-one of round-to-nearest-even.</summary>
    private const uint HalfRebiasRound = unchecked((uint)(-112 << 23) + 0xFFF);

    /// <summary>
    /// Float32 lanes → half bits in each lane's low 16 bits, rounded to nearest-even as <c>(Half)x</c> rounds:
    /// overflow (≥ 65520 in magnitude) gives ±Inf, results below 2^-14 subnormal halves or ±0, NaN a quiet NaN.
    /// A normal result adds the exponent rebias and the rounding increment (0xFFF plus the lowest kept bit)
    /// before shifting; a subnormal one lets the float adder round it, added to 0.5 (whose ulp is 2^-24, the
    /// half's smallest step).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> SingleToHalf(Vector512<float> x)
    {
        var u = x.AsUInt32();
        var a = u & Vector512.Create(0x7FFFFFFFu);
        var normal = (a + Vector512.Create(HalfRebiasRound) + ((a >> 13) & Vector512<uint>.One)) >> 13;
        var subnormal = (a.AsSingle() + Vector512.Create(HalfSubnormalMagicBits).AsSingle()).AsUInt32() - Vector512.Create(HalfSubnormalMagicBits);
        var h = Vector512.ConditionalSelect(Vector512.LessThan(a, Vector512.Create(HalfNormalBits)), subnormal, normal);
        h = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(a, Vector512.Create(HalfOverflowBits)), Vector512.Create(HalfInfinity), h);
        h = Vector512.ConditionalSelect(Vector512.GreaterThan(a, Vector512.Create(FloatExponentMask)), Vector512.Create(0x7E00u) | ((a >> 13) & Vector512.Create(0x3FFu)), h);
        return h | ((u >> 16) & Vector512.Create(SignMask));
    }

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> SingleToHalf(Vector256<float> x)
    {
        var u = x.AsUInt32();
        var a = u & Vector256.Create(0x7FFFFFFFu);
        var normal = (a + Vector256.Create(HalfRebiasRound) + ((a >> 13) & Vector256<uint>.One)) >> 13;
        var subnormal = (a.AsSingle() + Vector256.Create(HalfSubnormalMagicBits).AsSingle()).AsUInt32() - Vector256.Create(HalfSubnormalMagicBits);
        var h = Vector256.ConditionalSelect(Vector256.LessThan(a, Vector256.Create(HalfNormalBits)), subnormal, normal);
        h = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(a, Vector256.Create(HalfOverflowBits)), Vector256.Create(HalfInfinity), h);
        h = Vector256.ConditionalSelect(Vector256.GreaterThan(a, Vector256.Create(FloatExponentMask)), Vector256.Create(0x7E00u) | ((a >> 13) & Vector256.Create(0x3FFu)), h);
        return h | ((u >> 16) & Vector256.Create(SignMask));
    }

    /// <summary>destination[i] = (Half)source[i] for every i, 32 (or 16) at a time; the lengths must match.</summary>
    public static unsafe void SinglesToHalves(ReadOnlySpan<float> source, Span<Half> destination)
    {
        if (source.Length != destination.Length)
        {
            throw new ArgumentException($"{source.Length} floats into {destination.Length} halves", nameof(destination));
        }

        var count = source.Length;
        fixed (float* s = source)
        fixed (Half* d = destination)
        {
            var dst = (ushort*)d;
            var i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 32 <= count; i += 32)
                {
                    Vector512.Narrow(SingleToHalf(Vector512.Load(s + i)), SingleToHalf(Vector512.Load(s + i + 16))).Store(dst + i);
                }
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 16 <= count; i += 16)
                {
                    Vector256.Narrow(SingleToHalf(Vector256.Load(s + i)), SingleToHalf(Vector256.Load(s + i + 8))).Store(dst + i);
                }
            }

            for (; i < count; i++)
            {
                d[i] = (Half)s[i];
            }
        }
    }

    /// <summary>
    /// Float32 lanes → bfloat16 bits in each lane's low 16 bits, rounded to nearest-even (adding 0x7FFF plus the
    /// lowest kept bit carries into the kept bits exactly when the dropped half is above, or at and odd); a NaN
    /// keeps its sign and top payload bits and is made quiet so rounding cannot turn it into Inf.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> SingleToBFloat16(Vector512<float> x)
    {
        var u = x.AsUInt32();
        var rounded = (u + Vector512.Create(0x7FFFu) + ((u >> 16) & Vector512<uint>.One)) >> 16;
        var nan = Vector512.GreaterThan(u & Vector512.Create(0x7FFFFFFFu), Vector512.Create(FloatExponentMask));
        return Vector512.ConditionalSelect(nan, (u >> 16) | Vector512.Create(0x40u), rounded);
    }

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> SingleToBFloat16(Vector256<float> x)
    {
        var u = x.AsUInt32();
        var rounded = (u + Vector256.Create(0x7FFFu) + ((u >> 16) & Vector256<uint>.One)) >> 16;
        var nan = Vector256.GreaterThan(u & Vector256.Create(0x7FFFFFFFu), Vector256.Create(FloatExponentMask));
        return Vector256.ConditionalSelect(nan, (u >> 16) | Vector256.Create(0x40u), rounded);
    }

    /// <summary>Scalar <see cref="SingleToBFloat16(Vector512{float})"/>.</summary>
    public static ushort SingleToBFloat16(float x)
    {
        var u = BitConverter.SingleToUInt32Bits(x);
        return (u & 0x7FFFFFFF) > FloatExponentMask
            ? (ushort)((u >> 16) | 0x40)
            : (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
    }

    /// <summary>destination[i] = source[i] rounded to bfloat16 bits, 32 (or 16) at a time; the lengths must match.</summary>
    public static unsafe void SinglesToBFloat16s(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (source.Length != destination.Length)
        {
            throw new ArgumentException($"{source.Length} floats into {destination.Length} bfloat16s", nameof(destination));
        }

        var count = source.Length;
        fixed (float* s = source)
        fixed (ushort* d = destination)
        {
            var i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i + 32 <= count; i += 32)
                {
                    Vector512.Narrow(SingleToBFloat16(Vector512.Load(s + i)), SingleToBFloat16(Vector512.Load(s + i + 16))).Store(d + i);
                }
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (; i + 16 <= count; i += 16)
                {
                    Vector256.Narrow(SingleToBFloat16(Vector256.Load(s + i)), SingleToBFloat16(Vector256.Load(s + i + 8))).Store(d + i);
                }
            }

            for (; i < count; i++)
            {
                d[i] = SingleToBFloat16(s[i]);
            }
        }
    }

    /// <summary>Scalar half bits → float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>
    /// Scalar half bits → float, exact for every finite half (normal, subnormal, ±0), the same float as the
    /// vector <see cref="FiniteHalfToSingle(Vector512{uint})"/> and, like it, without a float operation on a
    /// denormal; the exponent of Inf/NaN is not special-cased, so they come out as finite values of magnitude
    /// 2^16..2^17. For Q8_0 block scales, which the loader has checked are finite.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FiniteHalfToSingle(uint bits)
    {
        var magnitude = (bits & MagnitudeMask) << 13;
        var value = magnitude >= FloatImplicitOne
            ? BitConverter.UInt32BitsToSingle(magnitude + NormalRebiasBits)
            : BitConverter.UInt32BitsToSingle(magnitude | SmallExponentBits) - SmallestNormalHalf;
        return BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(value) | ((bits & SignMask) << 16));
    }

    /// <summary>
    /// FiniteTable[h] = <see cref="FiniteHalfToSingle(uint)"/>(h) for all 65,536 bit patterns (256 KiB, pinned, built
    /// once): Q8_0 block scales looked up by their bits (<see cref="MatVecQ8_0.ScaleLookup"/>). A matrix's scales take
    /// few distinct values, so the lookups keep a few of its lines in L1.
    /// </summary>
    public static unsafe float* FiniteTable => (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(s_finiteTable));

    private static readonly float[] s_finiteTable = BuildFiniteTable();

    private static float[] BuildFiniteTable()
    {
        var table = GC.AllocateUninitializedArray<float>(1 << 16, pinned: true);
        for (var h = 0; h < table.Length; h++)
        {
            table[h] = FiniteHalfToSingle((uint)h);
        }

        return table;
    }

    /// <summary>bfloat16 bits → float: the bits are the high half of the float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
