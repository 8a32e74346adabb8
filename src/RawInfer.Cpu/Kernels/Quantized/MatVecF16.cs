using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Matrix-vector rows for IEEE half weights, converted to float32 in registers (never a whole-matrix copy).
/// Where AVX-512 runs, <see cref="MatVec"/> sends the products to the engine's one-row kernel instead
/// (<see cref="ViaGemm"/>); this class's kernel is the path elsewhere.
/// .NET exposes no VCVTPH2PS, so the conversion is integer work: a 32-bit lane holds two halves, converted
/// exactly by <see cref="IHalfRebias.Low"/> (the even one, in the low bits) and <see cref="IHalfRebias.High"/>
/// (the odd one): on Intel by <see cref="IntegerRebias"/>, without ever handing a float unit a denormal, on AMD by
/// the cheaper <see cref="MultiplyRebias"/> (single-sequence decode of the 110m F16 model on the 2-core EPYC VM,
/// both with the prefetch off: 0.93–0.97 of the time at two threads, 0.78 at one, <c>step-ab --switch
/// half-multiply --part decode</c>; with both changes `LlamaCompare` decode went from 134–144 to 147–158 tok/s).
/// (The earlier kernel fed the half's bits, moved into float position, which read as its
/// value times 2^-112, straight into the FMA against an input scaled by 2^56: three operations per vector, but
/// every subnormal half became a denormal FMA operand and a microcode assist; single-sequence decode of a 110m
/// F16 model against llama.cpp on the 2-core Xeon VM, alternating builds: 1.11–1.13x before, 1.27–1.31x after.)
/// Half Inf/NaN weights come out finite (the exponent is not special-cased): the loader refuses them. Rows are
/// streamed one at a time: four rows in lockstep measured no faster (also with the next four rows prefetched).
/// A cheaper conversion was tried and dropped: 32 halves at a time in 16-bit lanes (shift, mask and rebias the
/// high word, shift the low one, two unpacks, a word permute first), about ten operations instead of seventeen,
/// with a branch to this exact conversion for a vector holding a zero or subnormal half. In L2 a one-thread
/// sweep went from 18.8 to 21–25 GB/s, but decode streams from DRAM, where the branch (taken by ~7% of 32-half
/// vectors, unpredictably) cost more than the saved operations: `rawinfer generate` on the 110m F16 model,
/// ten alternating runs on the 2-core Xeon VM, median 69.4 tok/s with this kernel, 64.4 with that one.
/// On the Zen 5 VM (2026-12-05) what the exact conversion still costs was bounded with a throw-away one that only adds
/// the rebias (wrong for zero and subnormal halves): single-sequence decode in 0.92–0.96 of the time; F16 decode
/// then read 53 GB/s against F32's 55. Four rows in lockstep took 1.38 of the time there (step-ab, ABBA).
/// On Intel the stream is prefetched <see cref="PrefetchHalves"/> ahead into L1 (rows are contiguous, so past a
/// row's end that is the next row; AMD: <see cref="PrefetchStream"/>): on the 2-core Xeon VM the hardware prefetchers alone left single-sequence decode at
/// 61 tok/s, 78–82 with it (60–66 prefetching into L2 instead; 8 KiB ahead measured no better than 4 KiB with
/// the exact conversion).
/// </summary>
internal static unsafe class MatVecF16
{
    /// <summary>
    /// How far ahead of the loads the weight stream is prefetched: 4 KiB (on the Xeon VM 1–4 KiB measured within noise
    /// of each other, 512 B clearly short; on the Zen 5 VM, 2026-12-05, single-sequence decode with 8 KiB took 1.03–1.04
    /// of the time with 4 KiB, with 2 KiB 1.00–1.02, in ABBA step-ab runs of a temporary switch).
    /// </summary>
    internal const int PrefetchHalves = 2048;

    /// <summary>
    /// The software prefetch of the weight stream: off on Zen 4, on elsewhere; settable for benchmarks (same bits).
    /// On the 2-core EPYC VM (Zen 4, 2026-12-04) it paid a little while the halves were rebiased in integers
    /// (single-sequence decode with it in 0.97 and 0.98 of the time without at two threads, 1.02 at one); with the
    /// multiply rebias AMD takes (<see cref="IHalfRebias"/>) it costs: 1.17 and 1.19 of the time without at two
    /// threads, 1.25 at one (<c>step-ab --switch f16-prefetch --part decode --model m110-f16.gguf</c>). On the
    /// 2-core EPYC VM of family 1Ah (Zen 5, 2026-12-05) it pays again: 0.91–0.93 of the time without, under either
    /// rebias. The AVX2 kernel prefetches the same way, and on the 2-core EPYC VM of family 17h (Zen 1, no AVX-512,
    /// 2026-12-06) it pays too: 0.89 of the time without. So it is off only on AMD before family 1Ah where the
    /// AVX-512 kernel runs (Zen 4; <see cref="DecodeRowGrouping.Processor"/>).
    /// </summary>
    internal static bool PrefetchStream { get; set; } =
        DecodeRowGrouping.Processor != DecodeRowGrouping.ProcessorKind.AmdBeforeZen5 || !Vector512.IsHardwareAccelerated;

    /// <summary>
    /// True: <see cref="MatVec"/> sends the products to the engine's kernel for one X row
    /// (<see cref="WidenInRegisters"/>: eight W rows a tile, one after another or in lockstep as
    /// <see cref="DecodeRowGrouping"/> says) instead of this class's own, as <see cref="MatVecF32.ViaGemm"/> does for
    /// F32; so <c>rawinfer generate</c> and an engine step of one sequence compute the same sums. The default where
    /// that kernel runs (AVX-512). Single-sequence decode of the 110m F16 model (<c>step-ab --switch f16-via-gemm
    /// --part decode</c>, 2 threads, ABBA, Zen 5 VM, 2026-12-05): 0.903–0.905 of the time in three runs (218–222 →
    /// 242–247 tok/s), 0.926–0.974 in four in a faster period half an hour later (237–245 → 244–262 tok/s). Not
    /// measured on an Intel core, where this class's L1 prefetch (<see cref="PrefetchStream"/>) had paid most.
    /// Settable for benchmarks (different bits), between forward passes: a job prepares its input for the kernel
    /// it will take.
    /// </summary>
    internal static bool ViaGemm { get; set; } = true;

    /// <summary>True when a product with <paramref name="cols"/> columns goes through <see cref="ViaGemm"/>'s kernel.</summary>
    internal static bool TakesGemm(int cols) => ViaGemm && WidenInRegisters.Supports(TensorType.F16, cols);

    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd). W: (rows, cols) F16; x: (cols); y: (rows)</summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Type == TensorType.F16 && x.Length == w.Cols && y.Length == w.Rows);
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
        CpuWeightLayout.ThrowIfHalvesScaled(in w);
        var cols = w.Cols;
        var data = (ushort*)w.Data;
        var groupEnd = PairedInput.PairedLength(cols);
        var r = rowStart;
        if (Vector512.IsHardwareAccelerated && groupEnd > 0 && IHalfRebias.UseMultiply)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Vector512Row<MultiplyRebias>(data + ((long)r * cols), paired, groupEnd);
            }
        }
        else if (Vector512.IsHardwareAccelerated && groupEnd > 0)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Vector512Row<IntegerRebias>(data + ((long)r * cols), paired, groupEnd);
            }
        }
        else if (Vector256.IsHardwareAccelerated && groupEnd > 0 && IHalfRebias.UseMultiply)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Vector256Row<MultiplyRebias>(data + ((long)r * cols), paired, groupEnd);
            }
        }
        else if (Vector256.IsHardwareAccelerated && groupEnd > 0)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Vector256Row<IntegerRebias>(data + ((long)r * cols), paired, groupEnd);
            }
        }
        else
        {
            for (; r < rowEnd; r++)
            {
                y[r] = 0;
            }
        }

        // Columns past the whole groups, exact conversion (all columns when no vector path runs).
        if (groupEnd < cols)
        {
            for (r = rowStart; r < rowEnd; r++)
            {
                var row = data + ((long)r * cols);
                var sum = 0f;
                for (var j = groupEnd; j < cols; j++)
                {
                    sum += HalfConversion.HalfToSingle(row[j]) * x[j];
                }

                y[r] += sum;
            }
        }
    }

    /// <summary>Two halves per lane → (even, odd) floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> Even, Vector512<float> Odd) Split<TRebias>(Vector512<uint> pairs)
        where TRebias : struct, IHalfRebias =>
        (TRebias.Low(pairs), TRebias.High(pairs));

    /// <summary>One row over the whole groups, streamed front to back, four accumulators.</summary>
    private static float Vector512Row<TRebias>(ushort* w, float* paired, int groupEnd)
        where TRebias : struct, IHalfRebias
    {
        const int G = 32;
        Vector512<float> e0 = default, o0 = default, e1 = default, o1 = default;
        var j = 0;
        var prefetch = PrefetchStream;
        for (; j + (2 * G) <= groupEnd; j += 2 * G)
        {
            if (prefetch)
            {
                Simd.Prefetch(w + j + PrefetchHalves);
                Simd.Prefetch(w + j + PrefetchHalves + G);
            }

            var (a, b) = Split<TRebias>(Vector512.Load((uint*)(w + j)));
            e0 = Simd.MulAdd(a, Vector512.Load(paired + j), e0);
            o0 = Simd.MulAdd(b, Vector512.Load(paired + j + (G / 2)), o0);
            (a, b) = Split<TRebias>(Vector512.Load((uint*)(w + j + G)));
            e1 = Simd.MulAdd(a, Vector512.Load(paired + j + G), e1);
            o1 = Simd.MulAdd(b, Vector512.Load(paired + j + G + (G / 2)), o1);
        }

        if (j < groupEnd)
        {
            var (a, b) = Split<TRebias>(Vector512.Load((uint*)(w + j)));
            e0 = Simd.MulAdd(a, Vector512.Load(paired + j), e0);
            o0 = Simd.MulAdd(b, Vector512.Load(paired + j + (G / 2)), o0);
        }

        return Vector512.Sum((e0 + o0) + (e1 + o1));
    }

    /// <summary>As <see cref="Vector512Row{TRebias}"/> with 16-column groups.</summary>
    private static float Vector256Row<TRebias>(ushort* w, float* paired, int groupEnd)
        where TRebias : struct, IHalfRebias
    {
        const int G = 16;
        Vector256<float> e0 = default, o0 = default, e1 = default, o1 = default;
        var j = 0;
        var prefetch = PrefetchStream;
        for (; j + (2 * G) <= groupEnd; j += 2 * G)
        {
            if (prefetch)
            {
                Simd.Prefetch(w + j + PrefetchHalves);
            }

            var pairs = Vector256.Load((uint*)(w + j));
            e0 = Simd.MulAdd(TRebias.Low(pairs), Vector256.Load(paired + j), e0);
            o0 = Simd.MulAdd(TRebias.High(pairs), Vector256.Load(paired + j + (G / 2)), o0);
            pairs = Vector256.Load((uint*)(w + j + G));
            e1 = Simd.MulAdd(TRebias.Low(pairs), Vector256.Load(paired + j + G), e1);
            o1 = Simd.MulAdd(TRebias.High(pairs), Vector256.Load(paired + j + G + (G / 2)), o1);
        }

        if (j < groupEnd)
        {
            var pairs = Vector256.Load((uint*)(w + j));
            e0 = Simd.MulAdd(TRebias.Low(pairs), Vector256.Load(paired + j), e0);
            o0 = Simd.MulAdd(TRebias.High(pairs), Vector256.Load(paired + j + (G / 2)), o0);
        }

        return Vector256.Sum((e0 + o0) + (e1 + o1));
    }

    /// <summary>dst = W[row, :] as float32. dst: (cols)</summary>
    public static void DequantizeRow(in WeightTensor w, int row, Span<float> dst)
    {
        Debug.Assert(w.Type == TensorType.F16 && dst.Length == w.Cols && (uint)row < (uint)w.Rows);
        CpuWeightLayout.ThrowIfHalvesScaled(in w);
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

    /// <summary>
    /// The previous one-row kernel (exact Inf/NaN conversion, five vector operations per 16 halves), kept as the
    /// baseline the benchmarks compare against. Σ w[i]·x[i] over n elements. w: (n) half bits; x: (n)
    /// </summary>
    internal static float DotBaseline(ushort* w, float* x, int n)
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

            sum = Vector512.Sum(a0 + a1);
        }

        for (; j < n; j++)
        {
            sum += HalfConversion.HalfToSingle(w[j]) * x[j];
        }

        return sum;
    }
}
