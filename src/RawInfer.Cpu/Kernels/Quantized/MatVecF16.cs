using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Matrix-vector rows for IEEE half weights, converted to float32 in registers (never a whole-matrix copy):
/// 16 halves per 512-bit step (8 per 256-bit step), fused multiply-add into two accumulators.
/// </summary>
internal static unsafe class MatVecF16
{
    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd). W: (rows, cols) F16; x: (cols); y: (rows)</summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Type == TensorType.F16 && x.Length == w.Cols && y.Length == w.Rows);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        int cols = w.Cols;
        fixed (float* px = &MemoryMarshal.GetReference(x))
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                y[r] = Dot((ushort*)w.Data + ((long)r * cols), px, cols);
            }
        }
    }

    /// <summary>dst = W[row, :] as float32. dst: (cols)</summary>
    public static void DequantizeRow(in WeightTensor w, int row, Span<float> dst)
    {
        Debug.Assert(w.Type == TensorType.F16 && dst.Length == w.Cols && (uint)row < (uint)w.Rows);
        var src = (ushort*)w.Data + ((long)row * w.Cols);
        int j = 0;
        fixed (float* pd = &MemoryMarshal.GetReference(dst))
        {
            if (Vector256.IsHardwareAccelerated)
            {
                for (; j + 16 <= dst.Length; j += 16)
                {
                    var h = Vector256.Load(src + j);
                    HalfConversion.HalfToSingle(Vector256.WidenLower(h)).Store(pd + j);
                    HalfConversion.HalfToSingle(Vector256.WidenUpper(h)).Store(pd + j + 8);
                }
            }

            for (; j < dst.Length; j++)
            {
                pd[j] = HalfConversion.HalfToSingle(src[j]);
            }
        }
    }

    /// <summary>Σ w[i]·x[i] over n elements. w: (n) half bits; x: (n)</summary>
    internal static float Dot(ushort* w, float* x, int n)
    {
        int j = 0;
        float sum = 0;
        if (Avx512F.IsSupported && n >= 16)
        {
            Vector512<float> a0 = default, a1 = default;
            for (; j + 32 <= n; j += 32)
            {
                a0 = Vector512.FusedMultiplyAdd(HalfConversion.HalfToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(w + j))), Vector512.Load(x + j), a0);
                a1 = Vector512.FusedMultiplyAdd(HalfConversion.HalfToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(w + j + 16))), Vector512.Load(x + j + 16), a1);
            }

            for (; j + 16 <= n; j += 16)
            {
                a0 = Vector512.FusedMultiplyAdd(HalfConversion.HalfToSingle(Avx512F.ConvertToVector512UInt32(Vector256.Load(w + j))), Vector512.Load(x + j), a0);
            }

            sum = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= 16)
        {
            Vector256<float> a0 = default, a1 = default;
            for (; j + 16 <= n; j += 16)
            {
                var h = Vector256.Load(w + j);
                a0 = Vector256.FusedMultiplyAdd(HalfConversion.HalfToSingle(Vector256.WidenLower(h)), Vector256.Load(x + j), a0);
                a1 = Vector256.FusedMultiplyAdd(HalfConversion.HalfToSingle(Vector256.WidenUpper(h)), Vector256.Load(x + j + 8), a1);
            }

            sum = Vector256.Sum(a0 + a1);
        }

        for (; j < n; j++)
        {
            sum += HalfConversion.HalfToSingle(w[j]) * x[j];
        }

        return sum;
    }
}
