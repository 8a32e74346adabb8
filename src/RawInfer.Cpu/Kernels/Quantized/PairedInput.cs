using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// The input layout of the 16-bit weight kernels (F16, BF16). They load 32-bit lanes that each hold two
/// adjacent weights and split them with one shift or mask into an "even" and an "odd" float vector, so the
/// input is stored per group of <see cref="GroupSize"/> columns as its even-indexed elements followed by its
/// odd-indexed ones, prepared once per product and shared by every row and thread. Columns past the last whole
/// group are read from the plain input.
/// </summary>
internal static unsafe class PairedInput
{
    /// <summary>Columns per group: two vectors of floats at the widest accelerated width; 0 when none is (scalar kernels).</summary>
    public static readonly int GroupSize =
        Vector512.IsHardwareAccelerated ? 2 * Vector512<float>.Count
        : Vector256.IsHardwareAccelerated ? 2 * Vector256<float>.Count
        : 0;

    /// <summary>Columns covered by whole groups; the paired buffer holds this many floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int PairedLength(int cols) => GroupSize == 0 ? 0 : cols - (cols % GroupSize);

    /// <summary>
    /// paired[g·G + i] = x[g·G + 2i], paired[g·G + G/2 + i] = x[g·G + 2i + 1] for whole groups g, i &lt; G/2.
    /// x: (cols); paired: (<see cref="PairedLength"/>(cols)). With AVX-512 two two-source permutes per group
    /// (VPERMT2PS), else element by element; the same values either way. It runs on the dispatching thread before
    /// every F16/BF16 product, between the parallel parts of a decode step: in a <c>perf record</c> of single-sequence
    /// F16 decode (<c>step-ab --part decode</c>, 2 threads, Zen 5 VM, 2026-12-05) the element loop took 1.16% of all
    /// samples, about 2% of that thread's, the permutes 0.04%.
    /// </summary>
    public static void Prepare(float* x, int cols, float* paired)
    {
        var length = PairedLength(cols);
        if (GroupSize == 2 * Vector512<float>.Count && Avx512F.IsSupported)
        {
            var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            var odds = evens + Vector512<int>.One;
            for (var g = 0; g < length; g += GroupSize)
            {
                var low = Vector512.Load(x + g);
                var high = Vector512.Load(x + g + Vector512<float>.Count);
                Avx512F.PermuteVar16x32x2(low, evens, high).Store(paired + g);
                Avx512F.PermuteVar16x32x2(low, odds, high).Store(paired + g + Vector512<float>.Count);
            }

            return;
        }

        PrepareScalar(x, cols, paired);
    }

    /// <summary><see cref="Prepare"/> element by element (the definition; the fallback without AVX-512).</summary>
    internal static void PrepareScalar(float* x, int cols, float* paired)
    {
        var length = PairedLength(cols);
        var half = GroupSize / 2;
        for (var g = 0; g < length; g += GroupSize)
        {
            for (var i = 0; i < half; i++)
            {
                paired[g + i] = x[g + (2 * i)];
                paired[g + half + i] = x[g + (2 * i) + 1];
            }
        }
    }
}
