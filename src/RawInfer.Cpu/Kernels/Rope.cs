using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Rotary position embedding in llama2.c's layout: adjacent pairs (2i, 2i+1) rotate by angle pos·freq_i.
/// The per-position tables are laid out to match the vector element by element, so the rotation is a flat
/// element-wise op over all heads: out = v·cos + swapPairs(v)·sin, with cos = (c0, c0, c1, c1, ...) and
/// sin = (-s0, s0, -s1, s1, ...).
/// </summary>
internal static class Rope
{
    /// <summary>
    /// Fills the tables for one position. inverseFrequencies: (headDim/2); cos, sin: (n) with n a multiple of
    /// headDim, repeating per head so one table pair serves both q (dim) and k (kvDim, a prefix).
    /// </summary>
    public static void FillTables(int position, ReadOnlySpan<float> inverseFrequencies, Span<float> cos, Span<float> sin)
    {
        var halfHead = inverseFrequencies.Length;
        Debug.Assert(cos.Length == sin.Length && cos.Length % (2 * halfHead) == 0);
        for (var i = 0; i < halfHead; i++)
        {
            var angle = position * inverseFrequencies[i];
            var c = MathF.Cos(angle);
            var s = MathF.Sin(angle);
            for (var head = 0; head < cos.Length; head += 2 * halfHead)
            {
                cos[head + (2 * i)] = c;
                cos[head + (2 * i) + 1] = c;
                sin[head + (2 * i)] = -s;
                sin[head + (2 * i) + 1] = s;
            }
        }
    }

    /// <summary>Rotates v in place. v: (n), n even, cos/sin at least n long (from <see cref="FillTables"/>).</summary>
    public static void Rotate(Span<float> v, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        Debug.Assert(v.Length % 2 == 0 && cos.Length >= v.Length && sin.Length >= v.Length);
        if (Vector512.IsHardwareAccelerated && v.Length >= Vector512<float>.Count)
        {
            Vector512Path(v, cos, sin);
        }
        else if (Vector256.IsHardwareAccelerated && v.Length >= Vector256<float>.Count)
        {
            Vector256Path(v, cos, sin);
        }
        else if (Vector128.IsHardwareAccelerated && v.Length >= Vector128<float>.Count)
        {
            Vector128Path(v, cos, sin);
        }
        else
        {
            Scalar(v, cos, sin, 0);
        }
    }

    // Multiplications and the add are kept separate (no FMA) so each element is rounded exactly as the
    // scalar v0·cos - v1·sin of llama2.c.
    internal static void Vector512Path(Span<float> v, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        ref var rv = ref MemoryMarshal.GetReference(v);
        ref var rc = ref MemoryMarshal.GetReference(cos);
        ref var rs = ref MemoryMarshal.GetReference(sin);
        var swap = Vector512.Create(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
        var i = 0;
        for (; i <= v.Length - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            var x = Vector512.LoadUnsafe(ref rv, (nuint)i);
            var rotated = (x * Vector512.LoadUnsafe(ref rc, (nuint)i))
                + (Vector512.Shuffle(x, swap) * Vector512.LoadUnsafe(ref rs, (nuint)i));
            rotated.StoreUnsafe(ref rv, (nuint)i);
        }

        Scalar(v, cos, sin, i);
    }

    internal static void Vector256Path(Span<float> v, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        ref var rv = ref MemoryMarshal.GetReference(v);
        ref var rc = ref MemoryMarshal.GetReference(cos);
        ref var rs = ref MemoryMarshal.GetReference(sin);
        var swap = Vector256.Create(1, 0, 3, 2, 5, 4, 7, 6);
        var i = 0;
        for (; i <= v.Length - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            var x = Vector256.LoadUnsafe(ref rv, (nuint)i);
            var rotated = (x * Vector256.LoadUnsafe(ref rc, (nuint)i))
                + (Vector256.Shuffle(x, swap) * Vector256.LoadUnsafe(ref rs, (nuint)i));
            rotated.StoreUnsafe(ref rv, (nuint)i);
        }

        Scalar(v, cos, sin, i);
    }

    internal static void Vector128Path(Span<float> v, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        ref var rv = ref MemoryMarshal.GetReference(v);
        ref var rc = ref MemoryMarshal.GetReference(cos);
        ref var rs = ref MemoryMarshal.GetReference(sin);
        var swap = Vector128.Create(1, 0, 3, 2);
        var i = 0;
        for (; i <= v.Length - Vector128<float>.Count; i += Vector128<float>.Count)
        {
            var x = Vector128.LoadUnsafe(ref rv, (nuint)i);
            var rotated = (x * Vector128.LoadUnsafe(ref rc, (nuint)i))
                + (Vector128.Shuffle(x, swap) * Vector128.LoadUnsafe(ref rs, (nuint)i));
            rotated.StoreUnsafe(ref rv, (nuint)i);
        }

        Scalar(v, cos, sin, i);
    }

    /// <summary>Rotates pairs from <paramref name="start"/> (even) on; the tail of every path.</summary>
    internal static void Scalar(Span<float> v, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int start)
    {
        for (var i = start; i < v.Length; i += 2)
        {
            var v0 = v[i];
            var v1 = v[i + 1];
            v[i] = (v0 * cos[i]) + (v1 * sin[i]);
            v[i + 1] = (v1 * cos[i + 1]) + (v0 * sin[i + 1]);
        }
    }
}
