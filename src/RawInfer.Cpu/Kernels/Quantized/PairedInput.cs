using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
    /// x: (cols); paired: (<see cref="PairedLength"/>(cols)).
    /// </summary>
    public static void Prepare(float* x, int cols, float* paired)
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
