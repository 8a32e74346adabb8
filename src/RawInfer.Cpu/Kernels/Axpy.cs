using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>y += a·x (the attention-weighted sum of values).</summary>
internal static class Axpy
{
    /// <summary>y[i] += a·x[i]. x, y: (n)</summary>
    public static void Compute(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        Debug.Assert(x.Length == y.Length);
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
        {
            Vector512Path(a, x, y);
        }
        else if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            Vector256Path(a, x, y);
        }
        else if (Vector128.IsHardwareAccelerated && x.Length >= Vector128<float>.Count)
        {
            Vector128Path(a, x, y);
        }
        else
        {
            Scalar(a, x, y, 0);
        }
    }

    internal static void Vector512Path(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var av = Vector512.Create(a);
        var i = 0;
        for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            Simd.MulAdd(av, Vector512.LoadUnsafe(ref rx, (nuint)i), Vector512.LoadUnsafe(ref ry, (nuint)i))
                .StoreUnsafe(ref ry, (nuint)i);
        }

        Scalar(a, x, y, i);
    }

    internal static void Vector256Path(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var av = Vector256.Create(a);
        var i = 0;
        for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            Simd.MulAdd(av, Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256.LoadUnsafe(ref ry, (nuint)i))
                .StoreUnsafe(ref ry, (nuint)i);
        }

        Scalar(a, x, y, i);
    }

    internal static void Vector128Path(float a, ReadOnlySpan<float> x, Span<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var av = Vector128.Create(a);
        var i = 0;
        for (; i <= x.Length - Vector128<float>.Count; i += Vector128<float>.Count)
        {
            Simd.MulAdd(av, Vector128.LoadUnsafe(ref rx, (nuint)i), Vector128.LoadUnsafe(ref ry, (nuint)i))
                .StoreUnsafe(ref ry, (nuint)i);
        }

        Scalar(a, x, y, i);
    }

    internal static void Scalar(float a, ReadOnlySpan<float> x, Span<float> y, int start)
    {
        for (var i = start; i < x.Length; i++)
        {
            y[i] += a * x[i];
        }
    }
}
