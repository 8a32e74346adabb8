using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>In-place softmax, shifted by the maximum so exp never overflows.</summary>
internal static class Softmax
{
    /// <summary>x: (n), n ≥ 1</summary>
    public static void InPlace(Span<float> x)
    {
        Debug.Assert(x.Length > 0);
        if (Vector512.IsHardwareAccelerated && x.Length >= Vector512<float>.Count)
        {
            Vector512Path(x);
        }
        else if (Vector256.IsHardwareAccelerated && x.Length >= Vector256<float>.Count)
        {
            Vector256Path(x);
        }
        else if (Vector128.IsHardwareAccelerated && x.Length >= Vector128<float>.Count)
        {
            Vector128Path(x);
        }
        else
        {
            Scalar(x);
        }
    }

    internal static void Vector512Path(Span<float> x)
    {
        ref var r = ref MemoryMarshal.GetReference(x);
        var last = x.Length - Vector512<float>.Count;
        var maxV = Vector512.Create(float.NegativeInfinity);
        var i = 0;
        for (; i <= last; i += Vector512<float>.Count)
        {
            maxV = Vector512.Max(maxV, Vector512.LoadUnsafe(ref r, (nuint)i));
        }

        var max = TailMax(x, i, HorizontalMax(maxV.GetLower(), maxV.GetUpper()));
        var mv = Vector512.Create(max);
        var sumV = Vector512<float>.Zero;
        for (i = 0; i <= last; i += Vector512<float>.Count)
        {
            var e = Vector512.Exp(Vector512.LoadUnsafe(ref r, (nuint)i) - mv);
            e.StoreUnsafe(ref r, (nuint)i);
            sumV += e;
        }

        var sum = TailExp(x, i, max, Vector512.Sum(sumV));
        var inv = Vector512.Create(1f / sum);
        for (i = 0; i <= last; i += Vector512<float>.Count)
        {
            (Vector512.LoadUnsafe(ref r, (nuint)i) * inv).StoreUnsafe(ref r, (nuint)i);
        }

        TailScale(x, i, 1f / sum);
    }

    internal static void Vector256Path(Span<float> x)
    {
        ref var r = ref MemoryMarshal.GetReference(x);
        var last = x.Length - Vector256<float>.Count;
        var maxV = Vector256.Create(float.NegativeInfinity);
        var i = 0;
        for (; i <= last; i += Vector256<float>.Count)
        {
            maxV = Vector256.Max(maxV, Vector256.LoadUnsafe(ref r, (nuint)i));
        }

        var max = TailMax(x, i, HorizontalMax(maxV));
        var mv = Vector256.Create(max);
        var sumV = Vector256<float>.Zero;
        for (i = 0; i <= last; i += Vector256<float>.Count)
        {
            var e = Vector256.Exp(Vector256.LoadUnsafe(ref r, (nuint)i) - mv);
            e.StoreUnsafe(ref r, (nuint)i);
            sumV += e;
        }

        var sum = TailExp(x, i, max, Vector256.Sum(sumV));
        var inv = Vector256.Create(1f / sum);
        for (i = 0; i <= last; i += Vector256<float>.Count)
        {
            (Vector256.LoadUnsafe(ref r, (nuint)i) * inv).StoreUnsafe(ref r, (nuint)i);
        }

        TailScale(x, i, 1f / sum);
    }

    internal static void Vector128Path(Span<float> x)
    {
        ref var r = ref MemoryMarshal.GetReference(x);
        var last = x.Length - Vector128<float>.Count;
        var maxV = Vector128.Create(float.NegativeInfinity);
        var i = 0;
        for (; i <= last; i += Vector128<float>.Count)
        {
            maxV = Vector128.Max(maxV, Vector128.LoadUnsafe(ref r, (nuint)i));
        }

        var max = TailMax(x, i, HorizontalMax(maxV));
        var mv = Vector128.Create(max);
        var sumV = Vector128<float>.Zero;
        for (i = 0; i <= last; i += Vector128<float>.Count)
        {
            var e = Vector128.Exp(Vector128.LoadUnsafe(ref r, (nuint)i) - mv);
            e.StoreUnsafe(ref r, (nuint)i);
            sumV += e;
        }

        var sum = TailExp(x, i, max, Vector128.Sum(sumV));
        var inv = Vector128.Create(1f / sum);
        for (i = 0; i <= last; i += Vector128<float>.Count)
        {
            (Vector128.LoadUnsafe(ref r, (nuint)i) * inv).StoreUnsafe(ref r, (nuint)i);
        }

        TailScale(x, i, 1f / sum);
    }

    internal static void Scalar(Span<float> x)
    {
        var max = TailMax(x, 0, float.NegativeInfinity);
        var sum = TailExp(x, 0, max, 0f);
        TailScale(x, 0, 1f / sum);
    }

    private static float HorizontalMax(Vector256<float> a, Vector256<float> b) =>
        HorizontalMax(Vector256.Max(a, b));

    private static float HorizontalMax(Vector256<float> v) =>
        HorizontalMax(Vector128.Max(v.GetLower(), v.GetUpper()));

    private static float HorizontalMax(Vector128<float> v) =>
        MathF.Max(MathF.Max(v[0], v[1]), MathF.Max(v[2], v[3]));

    private static float TailMax(ReadOnlySpan<float> x, int start, float max)
    {
        for (var i = start; i < x.Length; i++)
        {
            max = MathF.Max(max, x[i]);
        }

        return max;
    }

    private static float TailExp(Span<float> x, int start, float max, float sum)
    {
        for (var i = start; i < x.Length; i++)
        {
            x[i] = MathF.Exp(x[i] - max);
            sum += x[i];
        }

        return sum;
    }

    private static void TailScale(Span<float> x, int start, float inverseSum)
    {
        for (var i = start; i < x.Length; i++)
        {
            x[i] *= inverseSum;
        }
    }
}
