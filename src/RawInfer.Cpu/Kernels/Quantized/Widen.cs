using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// F16, BF16 and Q8_0 weight rows widened to float32, for the GEMM: a tile of W rows is widened once into a
/// small buffer that stays in L1 (or L2 for many X rows: <see cref="Gemm.WidenedTileBytes"/>) while every X row of the batch passes it, so the conversion is paid once per
/// weight per step instead of once per weight per X row. Exact: each element becomes the float the format encodes
/// (Q8_0: scale × quant, one float multiply, as the format defines it), for every finite F16 value and Q8_0
/// scale; Inf/NaN there (which the GGUF loader refuses) come out finite. F16 halves are sign-extended and rebiased by
/// <see cref="IHalfRebias"/>'s choice (the 256-bit path: zero-extended, through
/// <see cref="HalfConversion.FiniteHalfToSingle(Vector256{uint})"/>), exact for every finite half, as
/// <see cref="WidenInRegisters"/> converts them.
/// </summary>
internal static unsafe class Widen
{
    /// <summary>Widens W rows [rowStart, rowStart + rowCount) into dst: (rowCount, w.Cols) row-major.</summary>
    public static void Rows(in WeightTensor w, int rowStart, int rowCount, float* dst)
    {
        var cols = w.Cols;
        for (var r = 0; r < rowCount; r++)
        {
            var output = dst + ((long)r * cols);
            var row = (long)(rowStart + r);
            switch (w.Type)
            {
                case TensorType.F16 when w.HalvesScaled:
                    ScaledF16((ushort*)w.Data + (row * cols), output, cols);
                    break;
                case TensorType.F16:
                    F16((ushort*)w.Data + (row * cols), output, cols);
                    break;
                case TensorType.BF16:
                    BF16((ushort*)w.Data + (row * cols), output, cols);
                    break;
                case TensorType.Q8_0:
                    var blocks = cols / MatVecQ8_0.BlockElements;
                    var scales = w.DecodedScales is not null && MatVecQ8_0.UseDecodedScales ? w.DecodedScales + (row * blocks) : null;
                    Q8_0(w.Data + (row * blocks * MatVecQ8_0.BlockBytes), output, cols, scales);
                    break;
                default:
                    ThrowUnsupported(w.Type);
                    break;
            }
        }
    }

    /// <summary>True for the types <see cref="Rows"/> widens.</summary>
    public static bool Supports(TensorType type) => type is TensorType.F16 or TensorType.BF16 or TensorType.Q8_0;

    /// <summary>src: (cols) half bits; dst: (cols)</summary>
    internal static void F16(ushort* src, float* dst, int cols)
    {
        var j = 0;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            j = IHalfRebias.UseMultiply ? F16<MultiplyRebias>(src, dst, cols) : F16<IntegerRebias>(src, dst, cols);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; j + 8 <= cols; j += 8)
            {
                var bits = Vector256.WidenLower(Vector256.Create(Vector128.Load(src + j), Vector128<ushort>.Zero));
                HalfConversion.FiniteHalfToSingle(bits).Store(dst + j);
            }
        }

        for (; j < cols; j++)
        {
            dst[j] = HalfConversion.HalfToSingle(src[j]);
        }
    }

    /// <summary>The whole 16-column chunks of <see cref="F16(ushort*, float*, int)"/>; returns the columns done.</summary>
    private static int F16<TRebias>(ushort* src, float* dst, int cols)
        where TRebias : struct, IHalfRebias
    {
        var j = 0;
        for (; j + 16 <= cols; j += 16)
        {
            // VPMOVSXWD straight from memory: 16 halves sign-extended in one instruction
            var bits = Avx512F.ConvertToVector512Int32(Vector256.Load((short*)src + j));
            TRebias.SignExtended(bits).Store(dst + j);
        }

        return j;
    }

    /// <summary>
    /// The weights of halves scaled by 2^10 in place (<see cref="WeightTensor.HalvesScaled"/>): no half is subnormal,
    /// so its bits moved into float position are a normal float, the weight times 2^-102, and times 2^102 the weight,
    /// exactly; four operations per 16 halves where <see cref="F16"/> takes nine.
    /// </summary>
    private static void ScaledF16(ushort* src, float* dst, int cols)
    {
        const int ClearAboveExponent = unchecked((int)0x8FFFFFFF); // the sign's copies in bits 28..30
        const float FromBits = 5.0706024e30f;                      // 2^102
        const float Unscale = 1f / (1 << WeightTensor.HalfScaleBits);
        var j = 0;
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
        {
            for (; j + 16 <= cols; j += 16)
            {
                var bits = (Avx512F.ConvertToVector512Int32(Vector256.Load((short*)src + j)) << 13) & Vector512.Create(ClearAboveExponent);
                (bits.AsSingle() * FromBits).Store(dst + j);
            }
        }

        for (; j < cols; j++)
        {
            dst[j] = HalfConversion.HalfToSingle(src[j]) * Unscale;
        }
    }

    /// <summary>src: (cols) bfloat16 bits; dst: (cols)</summary>
    internal static void BF16(ushort* src, float* dst, int cols)
    {
        var j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j + 16 <= cols; j += 16)
            {
                var bits = Vector512.WidenLower(Vector512.Create(Vector256.Load(src + j), Vector256<ushort>.Zero));
                (bits << 16).AsSingle().Store(dst + j);
            }
        }

        for (; j < cols; j++)
        {
            dst[j] = HalfConversion.BFloat16ToSingle(src[j]);
        }
    }

    /// <summary>src: (cols / 32) blocks of (f16 scale, 32 × int8); dst: (cols)</summary>
    internal static void Q8_0(byte* src, float* dst, int cols) => Q8_0(src, dst, cols, null);

    /// <summary>
    /// src: (cols / 32) blocks of (f16 scale, 32 × int8); dst: (cols); scales: the row's decoded block scales
    /// (<see cref="WeightTensor.DecodedScales"/>), read instead of converting each block's half, or null.
    /// </summary>
    internal static void Q8_0(byte* src, float* dst, int cols, float* scales)
    {
        const int B = MatVecQ8_0.BlockElements;
        for (var b = 0; b < cols / B; b++)
        {
            var block = src + ((long)b * MatVecQ8_0.BlockBytes);
            var scale = scales is null ? HalfConversion.FiniteHalfToSingle(*(ushort*)block) : scales[b];
            var quants = (sbyte*)(block + 2);
            var output = dst + (b * B);
            if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported)
            {
                // VPMOVSXBD: 16 int8 to int32 in one instruction (the same values, so the same bits, as the
                // earlier widening through int16: see Q8_0Baseline)
                var vscale = Vector512.Create(scale);
                (Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load(quants))) * vscale).Store(output);
                (Vector512.ConvertToSingle(Avx512F.ConvertToVector512Int32(Vector128.Load(quants + 16))) * vscale).Store(output + 16);
            }
            else
            {
                for (var i = 0; i < B; i++)
                {
                    output[i] = scale * quants[i];
                }
            }
        }
    }

    /// <summary>The earlier F16 widening (the sign extension built from two generic widenings), kept as the benchmarks' baseline.</summary>
    internal static void F16Baseline(ushort* src, float* dst, int cols)
    {
        var j = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; j + 16 <= cols; j += 16)
            {
                var bits = Vector512.WidenLower(Vector512.Create(Vector256.Load((short*)src + j), Vector256<short>.Zero));
                HalfConversion.FiniteSignExtendedHalfToSingle(bits).Store(dst + j);
            }
        }

        for (; j < cols; j++)
        {
            dst[j] = HalfConversion.HalfToSingle(src[j]);
        }
    }

    /// <summary>The earlier Q8_0 widening (int8 → int16 → int32 in generic steps), kept as the benchmarks' baseline.</summary>
    internal static void Q8_0Baseline(byte* src, float* dst, int cols)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            Q8_0(src, dst, cols); // the two differ only in the 512-bit path
            return;
        }

        const int B = MatVecQ8_0.BlockElements;
        for (var b = 0; b < cols / B; b++)
        {
            var block = src + ((long)b * MatVecQ8_0.BlockBytes);
            var scale = HalfConversion.FiniteHalfToSingle(*(ushort*)block);
            var q = Vector256.Load((sbyte*)(block + 2));
            var low = Vector512.WidenLower(Vector512.Create(Vector256.WidenLower(q), Vector256<short>.Zero));
            var high = Vector512.WidenLower(Vector512.Create(Vector256.WidenUpper(q), Vector256<short>.Zero));
            (Vector512.ConvertToSingle(low) * scale).Store(dst + (b * B));
            (Vector512.ConvertToSingle(high) * scale).Store(dst + (b * B) + 16);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnsupported(TensorType type) =>
        throw new NotSupportedException($"no widening kernel for {type}");
}
