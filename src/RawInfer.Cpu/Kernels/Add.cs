using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>x += y (the residual connections).</summary>
internal static class Add
{
    /// <summary>x[i] += y[i]. x, y: (n)</summary>
    public static void InPlace(Span<float> x, ReadOnlySpan<float> y)
    {
        Debug.Assert(x.Length == y.Length);
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
        {
            Vector512Path(x, y);
        }
        else if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            Vector256Path(x, y);
        }
        else if (Vector128.IsHardwareAccelerated && x.Length >= Vector128<float>.Count)
        {
            Vector128Path(x, y);
        }
        else
        {
            Scalar(x, y, 0);
        }
    }

    internal static void Vector512Path(Span<float> x, ReadOnlySpan<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            (Vector512.LoadUnsafe(ref rx, (nuint)i) + Vector512.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rx, (nuint)i);
        }

        Scalar(x, y, i);
    }

    internal static void Vector256Path(Span<float> x, ReadOnlySpan<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            (Vector256.LoadUnsafe(ref rx, (nuint)i) + Vector256.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rx, (nuint)i);
        }

        Scalar(x, y, i);
    }

    internal static void Vector128Path(Span<float> x, ReadOnlySpan<float> y)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var ry = ref MemoryMarshal.GetReference(y);
        var i = 0;
        for (; i <= x.Length - Vector128<float>.Count; i += Vector128<float>.Count)
        {
            (Vector128.LoadUnsafe(ref rx, (nuint)i) + Vector128.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref rx, (nuint)i);
        }

        Scalar(x, y, i);
    }

    internal static void Scalar(Span<float> x, ReadOnlySpan<float> y, int start)
    {
        for (var i = start; i < x.Length; i++)
        {
            x[i] += y[i];
        }
    }
}
