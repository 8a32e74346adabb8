using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>Dot product of two float vectors (attention scores).</summary>
internal static class Dot
{
    /// <summary>Σ a[i]·b[i]. a, b: (n)</summary>
    public static float Compute(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Debug.Assert(a.Length == b.Length);
        if (Vector512.IsHardwareAccelerated && a.Length >= Vector512<float>.Count)
        {
            return Vector512Path(a, b);
        }

        if (Vector256.IsHardwareAccelerated && a.Length >= Vector256<float>.Count)
        {
            return Vector256Path(a, b);
        }

        if (Vector128.IsHardwareAccelerated && a.Length >= Vector128<float>.Count)
        {
            return Vector128Path(a, b);
        }

        return Scalar(a, b, 0, 0f);
    }

    internal static float Vector512Path(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        var acc = Vector512<float>.Zero;
        var i = 0;
        for (; i <= a.Length - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            acc = Simd.MulAdd(Vector512.LoadUnsafe(ref ra, (nuint)i), Vector512.LoadUnsafe(ref rb, (nuint)i), acc);
        }

        return Scalar(a, b, i, Vector512.Sum(acc));
    }

    internal static float Vector256Path(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        var acc = Vector256<float>.Zero;
        var i = 0;
        for (; i <= a.Length - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            acc = Simd.MulAdd(Vector256.LoadUnsafe(ref ra, (nuint)i), Vector256.LoadUnsafe(ref rb, (nuint)i), acc);
        }

        return Scalar(a, b, i, Vector256.Sum(acc));
    }

    internal static float Vector128Path(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        ref var ra = ref MemoryMarshal.GetReference(a);
        ref var rb = ref MemoryMarshal.GetReference(b);
        var acc = Vector128<float>.Zero;
        var i = 0;
        for (; i <= a.Length - Vector128<float>.Count; i += Vector128<float>.Count)
        {
            acc = Simd.MulAdd(Vector128.LoadUnsafe(ref ra, (nuint)i), Vector128.LoadUnsafe(ref rb, (nuint)i), acc);
        }

        return Scalar(a, b, i, Vector128.Sum(acc));
    }

    /// <summary>Adds a[i]·b[i] for i ≥ <paramref name="start"/> to <paramref name="sum"/>; the tail of every path.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Scalar(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int start, float sum)
    {
        for (var i = start; i < a.Length; i++)
        {
            sum += a[i] * b[i];
        }

        return sum;
    }
}
