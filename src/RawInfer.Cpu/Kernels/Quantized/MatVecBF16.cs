using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Matrix-vector rows for bfloat16 weights. A bfloat16 is the high half of a float32, so a 32-bit lane holding
/// two adjacent weights yields both exactly with one operation each: the even weight by a shift left of 16, the
/// odd one by masking off the low half. The input is laid out once per product by <see cref="PairedInput"/>
/// Rows are streamed one at a time, prefetched ahead as the F16 rows are. Where AVX-512 runs, <see cref="MatVec"/>
/// sends the products to the engine's one-row kernel instead (<see cref="ViaGemm"/>); this is the path elsewhere.
/// </summary>
internal static unsafe class MatVecBF16
{
    /// <summary>
    /// True: <see cref="MatVec"/> sends the products to the engine's kernel for one X row
    /// (<see cref="WidenInRegisters"/>), as <see cref="MatVecF16.ViaGemm"/> does for F16; so <c>rawinfer generate</c>
    /// and an engine step of one sequence compute the same sums. The default where that kernel runs (AVX-512).
    /// Single-sequence decode of the 110m BF16 model (<c>step-ab --switch bf16-via-gemm --part decode</c>, 2 threads,
    /// ABBA, Zen 5 VM, 2026-12-05): 0.846–0.886 of the time in three runs (186–199 → 216–227 tok/s). Settable for
    /// benchmarks (different bits), between forward passes: a job prepares its input for the kernel it will take.
    /// </summary>
    internal static bool ViaGemm { get; set; } = true;

    /// <summary>True when a product with <paramref name="cols"/> columns goes through <see cref="ViaGemm"/>'s kernel.</summary>
    internal static bool TakesGemm(int cols) => ViaGemm && WidenInRegisters.Supports(TensorType.BF16, cols);

    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd). W: (rows, cols) BF16; x: (cols); y: (rows)</summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Type == TensorType.BF16 && x.Length == w.Cols && y.Length == w.Rows);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        var length = PairedInput.PairedLength(w.Cols);
        float[]? rented = length > 4096 ? ArrayPool<float>.Shared.Rent(length) : null;
        Span<float> paired = rented is null ? stackalloc float[length] : rented;
        fixed (float* px = &MemoryMarshal.GetReference(x))
        fixed (float* pp = &MemoryMarshal.GetReference(paired))
        fixed (float* py = &MemoryMarshal.GetReference(y))
        {
            PairedInput.Prepare(px, w.Cols, pp);
            RowsPrepared(in w, px, pp, py, rowStart, rowEnd);
        }

        if (rented is not null)
        {
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// As <see cref="Rows"/> with the input already laid out by <see cref="PairedInput.Prepare"/>.
    /// x: (cols) plain; paired: (PairedLength(cols)); y: (rows)
    /// </summary>
    public static void RowsPrepared(in WeightTensor w, float* x, float* paired, float* y, int rowStart, int rowEnd)
    {
        var cols = w.Cols;
        var data = (ushort*)w.Data;
        var groupEnd = PairedInput.PairedLength(cols);
        var r = rowStart;
        if (Vector512.IsHardwareAccelerated && groupEnd > 0)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Vector512Row(data + ((long)r * cols), paired, groupEnd);
            }
        }
        else if (Vector256.IsHardwareAccelerated && groupEnd > 0)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Vector256Row(data + ((long)r * cols), paired, groupEnd);
            }
        }
        else
        {
            for (; r < rowEnd; r++)
            {
                y[r] = 0;
            }
        }

        if (groupEnd < cols)
        {
            for (r = rowStart; r < rowEnd; r++)
            {
                var row = data + ((long)r * cols);
                var sum = 0f;
                for (var j = groupEnd; j < cols; j++)
                {
                    sum += HalfConversion.BFloat16ToSingle(row[j]) * x[j];
                }

                y[r] += sum;
            }
        }
    }

    /// <summary>One row over the whole groups, streamed front to back, four accumulators.</summary>
    private static float Vector512Row(ushort* w, float* paired, int groupEnd)
    {
        const int G = 32;
        var high = Vector512.Create(0xFFFF0000u).AsInt32();
        Vector512<float> e0 = default, o0 = default, e1 = default, o1 = default;
        var j = 0;
        for (; j + (2 * G) <= groupEnd; j += 2 * G)
        {
            Simd.Prefetch(w + j + MatVecF16.PrefetchHalves);
            Simd.Prefetch(w + j + MatVecF16.PrefetchHalves + G);
            var p = Vector512.Load((int*)(w + j));
            e0 = Simd.MulAdd(Vector512.ShiftLeft(p, 16).AsSingle(), Vector512.Load(paired + j), e0);
            o0 = Simd.MulAdd((p & high).AsSingle(), Vector512.Load(paired + j + (G / 2)), o0);
            p = Vector512.Load((int*)(w + j + G));
            e1 = Simd.MulAdd(Vector512.ShiftLeft(p, 16).AsSingle(), Vector512.Load(paired + j + G), e1);
            o1 = Simd.MulAdd((p & high).AsSingle(), Vector512.Load(paired + j + G + (G / 2)), o1);
        }

        if (j < groupEnd)
        {
            var p = Vector512.Load((int*)(w + j));
            e0 = Simd.MulAdd(Vector512.ShiftLeft(p, 16).AsSingle(), Vector512.Load(paired + j), e0);
            o0 = Simd.MulAdd((p & high).AsSingle(), Vector512.Load(paired + j + (G / 2)), o0);
        }

        return Vector512.Sum((e0 + o0) + (e1 + o1));
    }

    private static float Vector256Row(ushort* w, float* paired, int groupEnd)
    {
        const int G = 16;
        var high = Vector256.Create(0xFFFF0000u).AsInt32();
        Vector256<float> e = default, o = default;
        for (var j = 0; j < groupEnd; j += G)
        {
            if ((j & 31) == 0)
            {
                Simd.Prefetch(w + j + MatVecF16.PrefetchHalves);
            }

            var p = Vector256.Load((int*)(w + j));
            e = Simd.MulAdd(Vector256.ShiftLeft(p, 16).AsSingle(), Vector256.Load(paired + j), e);
            o = Simd.MulAdd((p & high).AsSingle(), Vector256.Load(paired + j + (G / 2)), o);
        }

        return Vector256.Sum(e + o);
    }

    /// <summary>dst = W[row, :] as float32. dst: (cols)</summary>
    public static void DequantizeRow(in WeightTensor w, int row, Span<float> dst)
    {
        Debug.Assert(w.Type == TensorType.BF16 && dst.Length == w.Cols && (uint)row < (uint)w.Rows);
        var src = (ushort*)w.Data + ((long)row * w.Cols);
        int j = 0;
        fixed (float* pd = &MemoryMarshal.GetReference(dst))
        {
            if (Vector256.IsHardwareAccelerated)
            {
                for (; j + 16 <= dst.Length; j += 16)
                {
                    var h = Vector256.Load(src + j);
                    (Vector256.WidenLower(h) << 16).AsSingle().Store(pd + j);
                    (Vector256.WidenUpper(h) << 16).AsSingle().Store(pd + j + 8);
                }
            }

            for (; j < dst.Length; j++)
            {
                pd[j] = HalfConversion.BFloat16ToSingle(src[j]);
            }
        }
    }
}
