using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Fused multiply-add per vector width: the hardware instruction where the CPU has one, otherwise a separate
/// multiply and add (the portable FusedMultiplyAdd would fall back to a slow exact software emulation); and a
/// prefetch hint. The conditions are JIT-time constants, so each call compiles to a single instruction.
/// </summary>
internal static class Simd
{
    /// <summary>
    /// Asks for the cache line holding <paramref name="address"/> in all cache levels (PREFETCHT0); a hint that
    /// never faults, so an address past the end of a buffer is harmless. Nothing where x86 prefetch is missing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void Prefetch(void* address)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch0(address);
        }
    }

    /// <summary>
    /// Asks for the cache line holding <paramref name="address"/> in L2 and below, not L1 (PREFETCHT1): for data
    /// read a while later, which would only displace what L1 holds now. Never faults; nothing without x86 prefetch.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void PrefetchL2(void* address)
    {
        if (Sse.IsSupported)
        {
            Sse.Prefetch1(address);
        }
    }

    /// <summary>a * b + c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MulAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.IsSupported ? Avx512F.FusedMultiplyAdd(a, b, c) : (a * b) + c;

    /// <summary>a * b + c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : (a * b) + c;

    /// <summary>a * b + c.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MulAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c)
        : AdvSimd.IsSupported ? AdvSimd.FusedMultiplyAdd(c, a, b)
        : (a * b) + c;
}
