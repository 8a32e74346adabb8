using System.Diagnostics;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Y = X·Wᵀ for a batch of activation rows against one weight matrix stored (out, in), computed for a range of
/// W rows so the worker pool can split one product across cores. The single point where the element type picks
/// its kernel: F32 has a real cache-blocked GEMM (<see cref="GemmF32"/>); every other type runs its
/// matrix-vector row kernel once per X row through <see cref="MatVec"/> (a quantized GEMM is later work).
/// </summary>
internal static unsafe class Gemm
{
    /// <summary>
    /// Y[i, o] = W[o, :]·X[i, :] for i in [0, xRows), o in [rowStart, rowEnd).
    /// W: (out, in); x: (xRows, in) row-major; y: (xRows, out) row-major, only columns [rowStart, rowEnd) written.
    /// </summary>
    public static void Rows(in WeightTensor w, float* x, int xRows, float* y, int rowStart, int rowEnd)
    {
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        if (w.Type == TensorType.F32)
        {
            GemmF32.Rows((float*)w.Data, w.Cols, x, xRows, y, w.Rows, rowStart, rowEnd);
            return;
        }

        for (var i = 0; i < xRows; i++)
        {
            MatVec.Rows(
                in w,
                new ReadOnlySpan<float>(x + ((long)i * w.Cols), w.Cols),
                new Span<float>(y + ((long)i * w.Rows), w.Rows),
                rowStart,
                rowEnd);
        }
    }

    /// <summary>True when <see cref="Rows"/> handles <paramref name="type"/>; checked once when a model is bound.</summary>
    public static bool Supports(TensorType type) => type == TensorType.F32 || MatVec.Supports(type);
}
