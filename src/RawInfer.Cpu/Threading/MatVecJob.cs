using RawInfer.Cpu.Kernels;
using RawInfer.Models;

namespace RawInfer.Cpu.Threading;

/// <summary>
/// Up to three products sharing one input vector (q/k/v, or gate/up), each split by rows across the workers.
/// Holds raw pointers into buffers pinned for the transformer's lifetime.
/// </summary>
internal sealed unsafe class MatVecJob : CpuJob
{
    private const int MaxProducts = 3;
    private const int RowGranule = 4; // MatVecF32 processes four rows at a time

    private readonly WeightTensor[] _weights = new WeightTensor[MaxProducts];
    private readonly nint[] _outputs = new nint[MaxProducts];
    private float* _x;
    private int _count;

    /// <summary>Starts a new job over x: (cols).</summary>
    public MatVecJob Reset(float* x)
    {
        _x = x;
        _count = 0;
        return this;
    }

    /// <summary>Adds y = W·x. W: (rows, cols); y: (rows), pinned.</summary>
    public MatVecJob Add(in WeightTensor w, float* y)
    {
        _weights[_count] = w;
        _outputs[_count] = (nint)y;
        _count++;
        return this;
    }

    /// <summary>Multiply-adds of all products, to decide whether splitting is worth a dispatch.</summary>
    public long Work
    {
        get
        {
            long total = 0;
            for (var m = 0; m < _count; m++)
            {
                total += _weights[m].ElementCount;
            }

            return total;
        }
    }

    public override void Execute(int worker, int workerCount)
    {
        for (var m = 0; m < _count; m++)
        {
            ref readonly var w = ref _weights[m];
            var (start, end) = Share(w.Rows, worker, workerCount, RowGranule);
            if (start < end)
            {
                MatVec.Rows(in w, new ReadOnlySpan<float>(_x, w.Cols), new Span<float>((float*)_outputs[m], w.Rows), start, end);
            }
        }
    }
}
