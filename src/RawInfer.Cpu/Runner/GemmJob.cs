using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.Models;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// Up to three matrix products sharing one input batch X (q/k/v, or gate/up), each split across the workers by
/// output rows (W rows), so every worker streams its own slice of each weight matrix once for all X rows.
/// Holds raw pointers into buffers that stay pinned (or fixed) while the job runs.
/// </summary>
internal sealed unsafe class GemmJob : CpuJob
{
    private const int MaxProducts = 3;

    // W-row granule of a worker's share: a whole 4-row register tile. The split never changes a result (each
    // dot product has one summation order), only which core computes it.
    private const int RowGranule = 4;

    private readonly WeightTensor[] _weights = new WeightTensor[MaxProducts];
    private readonly nint[] _outputs = new nint[MaxProducts];
    private float* _x;
    private int _xRows;
    private int _count;

    /// <summary>Starts a new job over x: (xRows, in).</summary>
    public GemmJob Reset(float* x, int xRows)
    {
        _x = x;
        _xRows = xRows;
        _count = 0;
        return this;
    }

    /// <summary>Adds Y = X·Wᵀ. W: (out, in); y: (xRows, out).</summary>
    public GemmJob Add(in WeightTensor w, float* y)
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
                total += _weights[m].ElementCount * _xRows;
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
                Gemm.Rows(in w, _x, _xRows, (float*)_outputs[m], start, end);
            }
        }
    }
}
