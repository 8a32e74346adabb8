using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// IEEE half and bfloat16 bit patterns → float32 inside vector registers. .NET exposes no F16C/VCVTPH2PS
/// intrinsic, so halves are converted with integer ops: shift the exponent and mantissa into float position and
/// multiply by 2^112 to rebias the exponent (exact for normals and subnormals alike), then patch Inf/NaN.
/// </summary>
internal static class HalfConversion
{
    private const uint SignMask = 0x8000;
    private const uint MagnitudeMask = 0x7FFF;
    private const uint HalfInfinity = 0x7C00;
    private const uint FloatExponentMask = 0x7F800000;
    /// <summary>2^112 = 2^(127 - 15): a half's bits moved into float position, times this, give its value.</summary>
    internal const float Rebias = 5.192296858534828e33f;

    /// <summary>After a half in a lane's top 16 bits is shifted right arithmetically by 3: its sign, exponent and mantissa.</summary>
    internal const uint FiniteFieldMask = 0x8FFFE000;

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
    /// Lanes hold half bits in their low 16 bits → float, exact for every finite half (normal, subnormal, zero) in
    /// four operations: the half moves to the top of the lane, an arithmetic shift right by 3 puts sign, exponent
    /// and mantissa where a float keeps them, a mask clears the smeared sign bits, and ×2^112 rebiases the
    /// exponent. Inf/NaN come out finite (magnitude 2^16..2^17): for weights, which the GGUF loader has checked
    /// are finite (<c>GgufFile.GetWeight</c>). Used where F16 weights are widened for the GEMMs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> FiniteHalfToSingle(Vector512<uint> h)
    {
        var fields = Vector512.ShiftRightArithmetic(Vector512.ShiftLeft(h, 16).AsInt32(), 3) & Vector512.Create(unchecked((int)FiniteFieldMask));
        return fields.AsSingle() * Vector512.Create(Rebias);
    }

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> FiniteHalfToSingle(Vector256<uint> h)
    {
        var fields = Vector256.ShiftRightArithmetic(Vector256.ShiftLeft(h, 16).AsInt32(), 3) & Vector256.Create(unchecked((int)FiniteFieldMask));
        return fields.AsSingle() * Vector256.Create(Rebias);
    }

    /// <summary>Scalar half bits → float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>
    /// Scalar half bits → float without branches, exact for every finite half (normal, subnormal, zero); the
    /// exponent of Inf/NaN is not special-cased, so they come out as finite values of magnitude 2^16..2^17.
    /// For Q8_0 block scales, which are finite by construction.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FiniteHalfToSingle(uint bits) =>
        BitConverter.UInt32BitsToSingle(((bits & SignMask) << 16) | ((bits & MagnitudeMask) << 13)) * Rebias;

    /// <summary>bfloat16 bits → float: the bits are the high half of the float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BFloat16ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
