using System.Diagnostics;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// The input vector of a matrix-vector product in every form a weight type's kernel reads, each prepared once
/// per product on the dispatching thread and then shared read-only by all rows and threads: int8 blocks for
/// Q8_0, the even/odd layout of <see cref="PairedInput"/> for F16 and BF16 (one buffer). Buffers are pinned and
/// only grow, so steady-state products allocate nothing.
/// </summary>
internal sealed unsafe class MatVecInput
{
    private float[]? _paired;          // (PairedLength(cols)) from its first cache line (LineAligned)
    private sbyte[]? _quantized;       // (cols) Q8_0 int8 values, likewise
    private float[]? _quantScales;     // (cols/32) Q8_0 block scales, likewise
    private bool _hasPaired;
    private bool _hasQuantized;

    /// <summary>The plain input. (cols)</summary>
    public float* X { get; private set; }

    /// <summary>Length of the input.</summary>
    public int Cols { get; private set; }

    /// <summary>The even/odd layout of F16 and BF16, valid after <see cref="Prepare"/> for either. (PairedLength(cols))</summary>
    public float* Paired => LineAligned.Start(_paired!);

    /// <summary>Q8_0 int8 values, valid after <see cref="Prepare"/> for Q8_0. (cols)</summary>
    public sbyte* Quantized => LineAligned.Start(_quantized!);

    /// <summary>Q8_0 block scales, valid after <see cref="Prepare"/> for Q8_0. (cols/32)</summary>
    public float* QuantizedScales => LineAligned.Start(_quantScales!);

    /// <summary>Binds a new input (pinned or native memory that outlives the product); forgets prepared forms.</summary>
    public void Reset(float* x, int cols)
    {
        X = x;
        Cols = cols;
        _hasPaired = _hasQuantized = false;
    }

    /// <summary>Prepares the form <paramref name="type"/>'s kernel reads, unless this input already has it.</summary>
    public void Prepare(TensorType type)
    {
        switch (type)
        {
            case TensorType.F16 when MatVecF16.TakesGemm(Cols):
            case TensorType.BF16 when MatVecBF16.TakesGemm(Cols):
                break; // that kernel reads x as it is

            case TensorType.F16 or TensorType.BF16 when !_hasPaired:
                Grow(ref _paired, PairedInput.PairedLength(Cols));
                PairedInput.Prepare(X, Cols, Paired);
                _hasPaired = true;
                break;

            case TensorType.Q8_0 when !_hasQuantized:
                Debug.Assert(Cols % MatVecQ8_0.BlockElements == 0);
                Grow(ref _quantized, Cols);
                Grow(ref _quantScales, Cols / MatVecQ8_0.BlockElements);
                MatVecQ8_0.QuantizeActivations(
                    new ReadOnlySpan<float>(X, Cols),
                    LineAligned.Span(_quantized!, Cols),
                    LineAligned.Span(_quantScales!, Cols / MatVecQ8_0.BlockElements));
                _hasQuantized = true;
                break;

            default:
                break;
        }
    }

    /// <summary>Grows a buffer (pinned, zeroed, used from its first cache line) to hold at least <paramref name="length"/>.</summary>
    private static void Grow<T>(ref T[]? buffer, int length)
        where T : unmanaged
    {
        if (!LineAligned.Holds(buffer, length))
        {
            buffer = LineAligned.Allocate<T>(length);
        }
    }
}
