using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// How the F16 weight kernels turn a finite half, moved into float position, into its float: the kernels are
/// generic over it, so the choice costs nothing inside a loop. Both give the exact float of every finite half
/// (normal, subnormal, ±0), so a kernel's bits do not depend on it; they differ in speed by processor.
/// <see cref="IntegerRebias"/> never hands the float unit a denormal (Intel cores take a microcode assist of ~120
/// cycles for a denormal operand, see <see cref="HalfConversion"/>); <see cref="MultiplyRebias"/> reads the bits as
/// a float (a denormal one for each zero-exponent half) and multiplies by 2^112, three or four operations per 16
/// halves instead of eight or nine, which AMD cores do at full speed. On the 2-core EPYC VM (Zen 4, 2026-12-04), a
/// 110m F16 model: the matrix products of a one-sequence engine step on one thread in 0.73–0.77 of the time
/// (<c>step-ab --switch half-multiply --part gemm --sequences 1 --type f16</c>), the step itself 0.76–0.85 at one
/// thread and 0.86–0.95 at two, where DRAM bandwidth is the limit (<c>--sequences 1</c>); 64 X rows (the tile
/// widening, bound by the GEMM) 0.98.
/// </summary>
internal interface IHalfRebias
{
    /// <summary>
    /// True: the kernels take <see cref="MultiplyRebias"/>; chosen once per process, on AMD before family 1Ah (Zen 4,
    /// figures above), settable for benchmarks and tests (same bits either way). On the Zen 5 VM (2026-12-05) the
    /// multiply took 1.02–1.06 of the integer rebias's time in single-sequence F16 decode (<c>--part decode</c>, five
    /// runs at two threads, one at 0.98), 1.05 at one thread, 0.99 in an engine step of one sequence. On the 2-core
    /// EPYC VM of family 17h (Zen 1, AVX2 only: 256-bit operations split in two, 2026-12-06) the AVX2 kernel's decode
    /// with the multiply took 0.605 of the integer rebias's time (38 → 62 tok/s, <c>--part decode</c>, two threads).
    /// </summary>
    static bool UseMultiply { get; set; } = DecodeRowGrouping.Processor == DecodeRowGrouping.ProcessorKind.AmdBeforeZen5;

    /// <summary>Lanes hold a half sign-extended to 32 bits (VPMOVSXWD) → its float.</summary>
    static abstract Vector512<float> SignExtended(Vector512<int> h);

    /// <summary>As the 512-bit overload: eight halves sign-extended to 32 bits (VPMOVSXWD).</summary>
    static abstract Vector256<float> SignExtended(Vector256<int> h);

    /// <summary>Lanes hold two halves → the float of the one in the low 16 bits.</summary>
    static abstract Vector512<float> Low(Vector512<uint> pairs);

    /// <summary>Lanes hold two halves → the float of the one in the high 16 bits.</summary>
    static abstract Vector512<float> High(Vector512<uint> pairs);

    /// <summary>As <see cref="Low(Vector512{uint})"/>, for the AVX2 kernels.</summary>
    static abstract Vector256<float> Low(Vector256<uint> pairs);

    /// <summary>As <see cref="High(Vector512{uint})"/>, for the AVX2 kernels.</summary>
    static abstract Vector256<float> High(Vector256<uint> pairs);
}

/// <summary>The rebias in integers, as <see cref="HalfConversion"/>'s Finite* conversions: no denormal float operand.</summary>
internal readonly struct IntegerRebias : IHalfRebias
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SignExtended(Vector512<int> h) => HalfConversion.FiniteSignExtendedHalfToSingle(h);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SignExtended(Vector256<int> h) => HalfConversion.FiniteSignExtendedHalfToSingle(h);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Low(Vector512<uint> pairs) => HalfConversion.FiniteHalfToSingle(pairs);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> High(Vector512<uint> pairs) => HalfConversion.FiniteHighHalfToSingle(pairs);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Low(Vector256<uint> pairs) => HalfConversion.FiniteHalfToSingle(pairs);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> High(Vector256<uint> pairs) => HalfConversion.FiniteHighHalfToSingle(pairs);
}

/// <summary>
/// The half's sign, exponent and mantissa placed where a float has them (sign in bit 31, exponent in bits 23..27,
/// mantissa in 13..22, everything else zero), read as a float, times 2^112 = 2^(127 − 15): exact for every finite
/// half, since a power-of-two scaling of a float whose result is normal loses nothing (a zero-exponent half reads
/// as the denormal 2^-126·0.m and becomes 2^-14·0.m). Half Inf/NaN come out finite, as with the integer rebias.
/// </summary>
internal readonly struct MultiplyRebias : IHalfRebias
{
    /// <summary>Bits 28..30: above a half's exponent once shifted into float position (its sign or sign copies land there).</summary>
    private const int ClearAboveExponent = unchecked((int)0x8FFFFFFF);

    /// <summary>As <see cref="ClearAboveExponent"/>, and bits 0..12 too (the other half of a pair lands there).</summary>
    private const int ClearAboveExponentAndBelowMantissa = unchecked((int)0x8FFFE000);

    /// <summary>h &lt;&lt; 13 puts the half's bits at 13..28 and copies of its sign at 29..31.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> SignExtended(Vector512<int> h) =>
        ((h << 13) & Vector512.Create(ClearAboveExponent)).AsSingle() * Vector512.Create(HalfConversion.Rebias);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> SignExtended(Vector256<int> h) =>
        ((h << 13) & Vector256.Create(ClearAboveExponent)).AsSingle() * Vector256.Create(HalfConversion.Rebias);

    /// <summary>The low half moved to the top, then an arithmetic shift by 3: as <see cref="SignExtended"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Low(Vector512<uint> pairs) =>
        (((pairs << 16).AsInt32() >> 3) & Vector512.Create(ClearAboveExponent)).AsSingle() * Vector512.Create(HalfConversion.Rebias);

    /// <summary>The high half already at the top: an arithmetic shift by 3, and the low half's bits cleared.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> High(Vector512<uint> pairs) =>
        ((pairs.AsInt32() >> 3) & Vector512.Create(ClearAboveExponentAndBelowMantissa)).AsSingle() * Vector512.Create(HalfConversion.Rebias);

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Low(Vector256<uint> pairs) =>
        (((pairs << 16).AsInt32() >> 3) & Vector256.Create(ClearAboveExponent)).AsSingle() * Vector256.Create(HalfConversion.Rebias);

    /// <summary>As the 512-bit overload.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> High(Vector256<uint> pairs) =>
        ((pairs.AsInt32() >> 3) & Vector256.Create(ClearAboveExponentAndBelowMantissa)).AsSingle() * Vector256.Create(HalfConversion.Rebias);
}
