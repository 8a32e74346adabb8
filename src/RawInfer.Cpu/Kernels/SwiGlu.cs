using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>SwiGLU gating: gate = silu(gate) · up, with silu(v) = v / (1 + exp(-v)).</summary>
internal static class SwiGlu
{
    /// <summary>gate (in: W1·x, out: the gated activation), up (W3·x): (hidden)</summary>
    public static void InPlace(Span<float> gate, ReadOnlySpan<float> up)
    {
        Debug.Assert(gate.Length == up.Length);
        if (Vector512.IsHardwareAccelerated && gate.Length >= Vector512<float>.Count)
        {
            Vector512Path(gate, up);
        }
        else if (Vector256.IsHardwareAccelerated && gate.Length >= Vector256<float>.Count)
        {
            Vector256Path(gate, up);
        }
        else if (Vector128.IsHardwareAccelerated && gate.Length >= Vector128<float>.Count)
        {
            Vector128Path(gate, up);
        }
        else
        {
            Scalar(gate, up, 0);
        }
    }

    internal static void Vector512Path(Span<float> gate, ReadOnlySpan<float> up)
    {
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var ru = ref MemoryMarshal.GetReference(up);
        var one = Vector512<float>.One;
        var i = 0;
        for (; i <= gate.Length - Vector512<float>.Count; i += Vector512<float>.Count)
        {
            var g = Vector512.LoadUnsafe(ref rg, (nuint)i);
            var silu = g / (one + Vector512.Exp(-g));
            (silu * Vector512.LoadUnsafe(ref ru, (nuint)i)).StoreUnsafe(ref rg, (nuint)i);
        }

        Scalar(gate, up, i);
    }

    internal static void Vector256Path(Span<float> gate, ReadOnlySpan<float> up)
    {
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var ru = ref MemoryMarshal.GetReference(up);
        var one = Vector256<float>.One;
        var i = 0;
        for (; i <= gate.Length - Vector256<float>.Count; i += Vector256<float>.Count)
        {
            var g = Vector256.LoadUnsafe(ref rg, (nuint)i);
            var silu = g / (one + Vector256.Exp(-g));
            (silu * Vector256.LoadUnsafe(ref ru, (nuint)i)).StoreUnsafe(ref rg, (nuint)i);
        }

        Scalar(gate, up, i);
    }

    internal static void Vector128Path(Span<float> gate, ReadOnlySpan<float> up)
    {
        ref var rg = ref MemoryMarshal.GetReference(gate);
        ref var ru = ref MemoryMarshal.GetReference(up);
        var one = Vector128<float>.One;
        var i = 0;
        for (; i <= gate.Length - Vector128<float>.Count; i += Vector128<float>.Count)
        {
            var g = Vector128.LoadUnsafe(ref rg, (nuint)i);
            var silu = g / (one + Vector128.Exp(-g));
            (silu * Vector128.LoadUnsafe(ref ru, (nuint)i)).StoreUnsafe(ref rg, (nuint)i);
        }

        Scalar(gate, up, i);
    }

    internal static void Scalar(Span<float> gate, ReadOnlySpan<float> up, int start)
    {
        for (var i = start; i < gate.Length; i++)
        {
            var g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }
}
