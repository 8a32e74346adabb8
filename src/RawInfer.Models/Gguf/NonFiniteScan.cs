using System.Runtime.Intrinsics;

namespace RawInfer.Models.Gguf;

/// <summary>
/// Finds Inf or NaN among the fp16 values of a weight: the elements of an F16 tensor, the block scales of a Q8_0
/// one. Real checkpoints hold none, and the CPU kernels convert halves assuming so (a cheaper conversion than the
/// IEEE one that is exact for every finite half), so the loader refuses such a file instead of computing with
/// made-up values.
/// </summary>
internal static unsafe class NonFiniteScan
{
    private const ushort ExponentMask = 0x7C00; // all ones: Inf (mantissa 0) or NaN

    /// <summary>Index of the first non-finite value (an element for F16, a block for Q8_0), or -1. Other types: -1.</summary>
    public static long FirstNonFinite(in WeightTensor w) => w.Type switch
    {
        TensorType.F16 => FirstNonFiniteHalf((ushort*)w.Data, (long)w.Rows * w.Cols),
        TensorType.Q8_0 => FirstNonFiniteScale(w.Data, (long)w.Rows * (w.Cols / GgmlTypes.Q8_0BlockElements)),
        _ => -1,
    };

    private static long FirstNonFiniteHalf(ushort* p, long count)
    {
        long i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var mask = Vector256.Create(ExponentMask);
            for (; i + Vector256<ushort>.Count <= count; i += Vector256<ushort>.Count)
            {
                if (Vector256.EqualsAny(Vector256.Load(p + i) & mask, mask))
                {
                    break; // the scalar loop below names the element
                }
            }
        }

        for (; i < count; i++)
        {
            if ((p[i] & ExponentMask) == ExponentMask)
            {
                return i;
            }
        }

        return -1;
    }

    private static long FirstNonFiniteScale(byte* blocks, long count)
    {
        for (long b = 0; b < count; b++)
        {
            if ((*(ushort*)(blocks + (b * GgmlTypes.Q8_0BlockBytes)) & ExponentMask) == ExponentMask)
            {
                return b;
            }
        }

        return -1;
    }
}
