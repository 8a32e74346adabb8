using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Float32 matrix-vector rows. Memory bound: each weight is read once, so four rows are processed together and
/// share every load of x; the 512-bit path also keeps two accumulators per row to hide FMA latency.
/// </summary>
internal static unsafe class MatVecF32
{
    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd). W: (rows, cols) F32; x: (cols); y: (rows)</summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        fixed (float* px = &MemoryMarshal.GetReference(x))
        fixed (float* py = &MemoryMarshal.GetReference(y))
        {
            Rows((float*)w.Data, w.Cols, px, py, rowStart, rowEnd);
        }
    }

    /// <summary>
    /// True: the products take the GEMM's one-X-row kernel (eight W rows in lockstep, or one at a time, as
    /// <see cref="DecodeRowGrouping"/> says), the engine's kernel for a one-sequence step, instead of this class's
    /// own; so <c>rawinfer generate</c> and the engine compute the same sums. The default where AVX-512 runs (the
    /// GEMM's tiled path). Single-sequence decode of the 110M F32 model (<c>step-ab --switch via-gemm --part
    /// decode</c>, 2 threads, ABBA medians, EPYC Zen 5 VM, 2026-12-05): 0.85, 0.78 and 0.80 of the time. Settable for
    /// benchmarks (different bits).
    /// </summary>
    internal static bool ViaGemm { get; set; } = Vector512.IsHardwareAccelerated && Avx512F.IsSupported;

    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd). pw: (rows, cols); x: (cols); y: (rows)</summary>
    public static void Rows(float* pw, int cols, float* px, float* py, int rowStart, int rowEnd)
    {
        if (ViaGemm)
        {
            GemmF32.Rows(pw, cols, px, 1, py, rowEnd, rowStart, rowEnd);
        }
        else if (Vector512.IsHardwareAccelerated && cols >= Vector512<float>.Count)
        {
            Vector512Path(pw, cols, px, py, rowStart, rowEnd);
        }
        else if (Vector256.IsHardwareAccelerated && cols >= Vector256<float>.Count)
        {
            Vector256Path(pw, cols, px, py, rowStart, rowEnd);
        }
        else if (Vector128.IsHardwareAccelerated && cols >= Vector128<float>.Count)
        {
            Vector128Path(pw, cols, px, py, rowStart, rowEnd);
        }
        else
        {
            Scalar(pw, cols, px, py, rowStart, rowEnd);
        }
    }

    /// <summary>w: (rows, cols) row-major; x: (cols); y: (rows)</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Vector512Path(float* w, int cols, float* x, float* y, int rowStart, int rowEnd)
    {
        const int W = 16; // Vector512<float>.Count
        var r = rowStart;
        for (; DecodeRowGrouping.FourRows && r + 4 <= rowEnd; r += 4)
        {
            var w0 = w + ((long)r * cols);
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default;
            var j = 0;
            for (; j + (2 * W) <= cols; j += 2 * W)
            {
                var xa = Vector512.Load(x + j);
                var xb = Vector512.Load(x + j + W);
                a0 = Simd.MulAdd(Vector512.Load(w0 + j), xa, a0);
                a1 = Simd.MulAdd(Vector512.Load(w1 + j), xa, a1);
                a2 = Simd.MulAdd(Vector512.Load(w2 + j), xa, a2);
                a3 = Simd.MulAdd(Vector512.Load(w3 + j), xa, a3);
                b0 = Simd.MulAdd(Vector512.Load(w0 + j + W), xb, b0);
                b1 = Simd.MulAdd(Vector512.Load(w1 + j + W), xb, b1);
                b2 = Simd.MulAdd(Vector512.Load(w2 + j + W), xb, b2);
                b3 = Simd.MulAdd(Vector512.Load(w3 + j + W), xb, b3);
            }

            for (; j + W <= cols; j += W)
            {
                var xa = Vector512.Load(x + j);
                a0 = Simd.MulAdd(Vector512.Load(w0 + j), xa, a0);
                a1 = Simd.MulAdd(Vector512.Load(w1 + j), xa, a1);
                a2 = Simd.MulAdd(Vector512.Load(w2 + j), xa, a2);
                a3 = Simd.MulAdd(Vector512.Load(w3 + j), xa, a3);
            }

            y[r] = DotTail(w0, x, j, cols, Vector512.Sum(a0 + b0));
            y[r + 1] = DotTail(w1, x, j, cols, Vector512.Sum(a1 + b1));
            y[r + 2] = DotTail(w2, x, j, cols, Vector512.Sum(a2 + b2));
            y[r + 3] = DotTail(w3, x, j, cols, Vector512.Sum(a3 + b3));
        }

        // one row at a time (every row where DecodeRowGrouping says so, else the rows past the last group of
        // four), with the four-row body's two accumulators: the same products and sums, so a row's bits depend
        // neither on the grouping nor on where a thread's row range starts
        for (; r < rowEnd; r++)
        {
            var row = w + ((long)r * cols);
            Vector512<float> a = default, b = default;
            var j = 0;
            for (; j + (2 * W) <= cols; j += 2 * W)
            {
                a = Simd.MulAdd(Vector512.Load(row + j), Vector512.Load(x + j), a);
                b = Simd.MulAdd(Vector512.Load(row + j + W), Vector512.Load(x + j + W), b);
            }

            for (; j + W <= cols; j += W)
            {
                a = Simd.MulAdd(Vector512.Load(row + j), Vector512.Load(x + j), a);
            }

            y[r] = DotTail(row, x, j, cols, Vector512.Sum(a + b));
        }
    }

    /// <summary>w: (rows, cols) row-major; x: (cols); y: (rows)</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Vector256Path(float* w, int cols, float* x, float* y, int rowStart, int rowEnd)
    {
        const int W = 8; // Vector256<float>.Count
        var r = rowStart;
        for (; r + 4 <= rowEnd; r += 4)
        {
            var w0 = w + ((long)r * cols);
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var j = 0;
            for (; j + W <= cols; j += W)
            {
                var xa = Vector256.Load(x + j);
                a0 = Simd.MulAdd(Vector256.Load(w0 + j), xa, a0);
                a1 = Simd.MulAdd(Vector256.Load(w1 + j), xa, a1);
                a2 = Simd.MulAdd(Vector256.Load(w2 + j), xa, a2);
                a3 = Simd.MulAdd(Vector256.Load(w3 + j), xa, a3);
            }

            y[r] = DotTail(w0, x, j, cols, Vector256.Sum(a0));
            y[r + 1] = DotTail(w1, x, j, cols, Vector256.Sum(a1));
            y[r + 2] = DotTail(w2, x, j, cols, Vector256.Sum(a2));
            y[r + 3] = DotTail(w3, x, j, cols, Vector256.Sum(a3));
        }

        for (; r < rowEnd; r++)
        {
            var row = w + ((long)r * cols);
            var acc = Vector256<float>.Zero;
            var j = 0;
            for (; j + W <= cols; j += W)
            {
                acc = Simd.MulAdd(Vector256.Load(row + j), Vector256.Load(x + j), acc);
            }

            y[r] = DotTail(row, x, j, cols, Vector256.Sum(acc));
        }
    }

    /// <summary>w: (rows, cols) row-major; x: (cols); y: (rows)</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Vector128Path(float* w, int cols, float* x, float* y, int rowStart, int rowEnd)
    {
        const int W = 4; // Vector128<float>.Count
        var r = rowStart;
        for (; r + 4 <= rowEnd; r += 4)
        {
            var w0 = w + ((long)r * cols);
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            Vector128<float> a0 = default, a1 = default, a2 = default, a3 = default;
            var j = 0;
            for (; j + W <= cols; j += W)
            {
                var xa = Vector128.Load(x + j);
                a0 = Simd.MulAdd(Vector128.Load(w0 + j), xa, a0);
                a1 = Simd.MulAdd(Vector128.Load(w1 + j), xa, a1);
                a2 = Simd.MulAdd(Vector128.Load(w2 + j), xa, a2);
                a3 = Simd.MulAdd(Vector128.Load(w3 + j), xa, a3);
            }

            y[r] = DotTail(w0, x, j, cols, Vector128.Sum(a0));
            y[r + 1] = DotTail(w1, x, j, cols, Vector128.Sum(a1));
            y[r + 2] = DotTail(w2, x, j, cols, Vector128.Sum(a2));
            y[r + 3] = DotTail(w3, x, j, cols, Vector128.Sum(a3));
        }

        for (; r < rowEnd; r++)
        {
            var row = w + ((long)r * cols);
            var acc = Vector128<float>.Zero;
            var j = 0;
            for (; j + W <= cols; j += W)
            {
                acc = Simd.MulAdd(Vector128.Load(row + j), Vector128.Load(x + j), acc);
            }

            y[r] = DotTail(row, x, j, cols, Vector128.Sum(acc));
        }
    }

    /// <summary>w: (rows, cols) row-major; x: (cols); y: (rows)</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Scalar(float* w, int cols, float* x, float* y, int rowStart, int rowEnd)
    {
        for (var r = rowStart; r < rowEnd; r++)
        {
            y[r] = DotTail(w + ((long)r * cols), x, 0, cols, 0f);
        }
    }

    /// <summary>sum + Σ row[j]·x[j] for j in [start, cols): the columns left over after the vector loop.</summary>
    private static float DotTail(float* row, float* x, int start, int cols, float sum)
    {
        for (var j = start; j < cols; j++)
        {
            sum += row[j] * x[j];
        }

        return sum;
    }
}
