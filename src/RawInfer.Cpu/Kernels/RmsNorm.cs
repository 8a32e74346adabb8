using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>RMSNorm: o = w · x / sqrt(mean(x²) + eps). o may be x itself (element-wise after the reduction).</summary>
internal static class RmsNorm
{
    /// <summary>o, x, w: (n)</summary>
    public static void Compute(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps)
    {
        Debug.Assert(o.Length == x.Length && w.Length == x.Length && x.Length > 0);
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
        {
            Vector512Path(o, x, w, eps);
        }
        else if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            Vector256Path(o, x, w, eps);
        }
        else if (Vector128.IsHardwareAccelerated && x.Length >= Vector128<float>.Count)
        {
            Vector128Path(o, x, w, eps);
        }
        else
        {
            Scalar(o, x, w, eps);
        }
    }

    /// <summary>1 / sqrt(Σx²/n + eps), as llama2.c computes it.</summary>
    private static float InverseRms(float sumOfSquares, int n, float eps) =>
        1f / MathF.Sqrt((sumOfSquares / n) + eps);

    internal static void Vector512Path(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rw = ref MemoryMarshal.GetReference(w);
        ref var ro = ref MemoryMarshal.GetReference(o);
        var n = x.Length;
        var last = n - Vector512<float>.Count;
        var acc = Vector512<float>.Zero;
        var i = 0;
        for (; i <= last; i += Vector512<float>.Count)
        {
            var v = Vector512.LoadUnsafe(ref rx, (nuint)i);
            acc = Simd.MulAdd(v, v, acc);
        }

        var ss = Vector512.Sum(acc);
        for (var j = i; j < n; j++)
        {
            ss += x[j] * x[j];
        }

        var scale = InverseRms(ss, n, eps);
        var sv = Vector512.Create(scale);
        for (i = 0; i <= last; i += Vector512<float>.Count)
        {
            (Vector512.LoadUnsafe(ref rw, (nuint)i) * (sv * Vector512.LoadUnsafe(ref rx, (nuint)i))).StoreUnsafe(ref ro, (nuint)i);
        }

        ScaleTail(o, x, w, scale, i);
    }

    internal static void Vector256Path(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rw = ref MemoryMarshal.GetReference(w);
        ref var ro = ref MemoryMarshal.GetReference(o);
        var n = x.Length;
        var last = n - Vector256<float>.Count;
        var acc = Vector256<float>.Zero;
        var i = 0;
        for (; i <= last; i += Vector256<float>.Count)
        {
            var v = Vector256.LoadUnsafe(ref rx, (nuint)i);
            acc = Simd.MulAdd(v, v, acc);
        }

        var ss = Vector256.Sum(acc);
        for (var j = i; j < n; j++)
        {
            ss += x[j] * x[j];
        }

        var scale = InverseRms(ss, n, eps);
        var sv = Vector256.Create(scale);
        for (i = 0; i <= last; i += Vector256<float>.Count)
        {
            (Vector256.LoadUnsafe(ref rw, (nuint)i) * (sv * Vector256.LoadUnsafe(ref rx, (nuint)i))).StoreUnsafe(ref ro, (nuint)i);
        }

        ScaleTail(o, x, w, scale, i);
    }

    internal static void Vector128Path(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps)
    {
        ref var rx = ref MemoryMarshal.GetReference(x);
        ref var rw = ref MemoryMarshal.GetReference(w);
        ref var ro = ref MemoryMarshal.GetReference(o);
        var n = x.Length;
        var last = n - Vector128<float>.Count;
        var acc = Vector128<float>.Zero;
        var i = 0;
        for (; i <= last; i += Vector128<float>.Count)
        {
            var v = Vector128.LoadUnsafe(ref rx, (nuint)i);
            acc = Simd.MulAdd(v, v, acc);
        }

        var ss = Vector128.Sum(acc);
        for (var j = i; j < n; j++)
        {
            ss += x[j] * x[j];
        }

        var scale = InverseRms(ss, n, eps);
        var sv = Vector128.Create(scale);
        for (i = 0; i <= last; i += Vector128<float>.Count)
        {
            (Vector128.LoadUnsafe(ref rw, (nuint)i) * (sv * Vector128.LoadUnsafe(ref rx, (nuint)i))).StoreUnsafe(ref ro, (nuint)i);
        }

        ScaleTail(o, x, w, scale, i);
    }

    internal static void Scalar(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float eps)
    {
        var ss = 0f;
        for (var j = 0; j < x.Length; j++)
        {
            ss += x[j] * x[j];
        }

        ScaleTail(o, x, w, InverseRms(ss, x.Length, eps), 0);
    }

    private static void ScaleTail(Span<float> o, ReadOnlySpan<float> x, ReadOnlySpan<float> w, float scale, int start)
    {
        for (var j = start; j < x.Length; j++)
        {
            o[j] = w[j] * (scale * x[j]);
        }
    }
}
