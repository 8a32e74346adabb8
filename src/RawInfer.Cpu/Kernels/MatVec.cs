using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// y = W·x for a weight matrix stored (rows = outputs, cols = inputs), computed for a range of rows so the
/// worker pool can split one product across cores. This is the single point where the element type picks
/// its kernel: every per-type kernel has the signature of <see cref="Rows"/>.
/// </summary>
internal static class MatVec
{
    /// <summary>
    /// y[r] = W[r,:]·x for r in [rowStart, rowEnd). W: (rows, cols); x: (cols); y: (rows), only the range written.
    /// </summary>
    public static unsafe void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(x.Length == w.Cols && y.Length == w.Rows);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        switch (w.Type)
        {
            case TensorType.F32:
                MatVecF32.Rows(in w, x, y, rowStart, rowEnd);
                break;

            case TensorType.F16 when MatVecF16.TakesGemm(w.Cols) || w.HalvesScaled:
            case TensorType.BF16 when MatVecBF16.TakesGemm(w.Cols):
                WidenInRegisters.OneRow(in w, x, y, rowStart, rowEnd);
                break;

            case TensorType.F16:
                MatVecF16.Rows(in w, x, y, rowStart, rowEnd);
                break;

            case TensorType.BF16:
                MatVecBF16.Rows(in w, x, y, rowStart, rowEnd);
                break;

            case TensorType.Q8_0 when MatVecQ8_0.TakesGemm || w.InterleavedInPlace:
                fixed (float* px = x)
                fixed (float* py = y)
                {
                    GemmQ8_0.Rows(in w, px, 1, py, w.Rows, rowStart, rowEnd);
                }

                break;

            case TensorType.Q8_0:
                MatVecQ8_0.Rows(in w, x, y, rowStart, rowEnd);
                break;

            default:
                ThrowUnsupported(w.Type);
                break;
        }
    }

    /// <summary>
    /// y[r] = W[r,:]·x for r in [rowStart, rowEnd), x given by an input already prepared for W's type
    /// (<see cref="MatVecInput.Prepare"/>). W: (rows, cols); y: (rows), only the range written.
    /// </summary>
    public static unsafe void Rows(in WeightTensor w, MatVecInput input, float* y, int rowStart, int rowEnd)
    {
        Debug.Assert(input.Cols == w.Cols);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        switch (w.Type)
        {
            case TensorType.F32:
                MatVecF32.Rows((float*)w.Data, w.Cols, input.X, y, rowStart, rowEnd);
                break;

            case TensorType.F16 when MatVecF16.TakesGemm(w.Cols) || w.HalvesScaled:
            case TensorType.BF16 when MatVecBF16.TakesGemm(w.Cols):
                WidenInRegisters.Rows(in w, input.X, 1, y, w.Rows, rowStart, rowEnd); // input not prepared: read as it is
                break;

            case TensorType.F16:
                MatVecF16.RowsPrepared(in w, input.X, input.Paired, y, rowStart, rowEnd);
                break;

            case TensorType.BF16:
                MatVecBF16.RowsPrepared(in w, input.X, input.Paired, y, rowStart, rowEnd);
                break;

            case TensorType.Q8_0 when MatVecQ8_0.TakesGemm || w.InterleavedInPlace:
                GemmQ8_0.RowsQuantized(in w, input.Quantized, input.QuantizedScales, 1, y, w.Rows, rowStart, rowEnd);
                break;

            case TensorType.Q8_0:
                MatVecQ8_0.RowsPrepared(in w, input.Quantized, input.QuantizedScales, y, rowStart, rowEnd);
                break;

            default:
                ThrowUnsupported(w.Type);
                break;
        }
    }

    /// <summary>The whole product on the calling thread. W: (rows, cols); x: (cols); y: (rows)</summary>
    public static void Multiply(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y) =>
        Rows(in w, x, y, 0, w.Rows);

    /// <summary>True when <see cref="Rows"/> has a kernel for <paramref name="type"/>; checked once when a model is bound.</summary>
    public static bool Supports(TensorType type) =>
        type is TensorType.F32 or TensorType.F16 or TensorType.BF16 or TensorType.Q8_0;

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnsupported(TensorType type) =>
        throw new NotSupportedException($"CPU matrix-vector product has no kernel for {type} weights");
}
