using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.Models;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// Up to three matrix products sharing one input batch X (q/k/v, or gate/up), each split across the workers into
/// output tiles: by W rows (every worker streams its own slice of W once for all X rows), or by X rows when W
/// has too few rows to give every worker several 8-row tiles. Either way a pair's sum is computed whole by one
/// worker in the kernel's fixed order, so the split never changes a bit.
/// Holds raw pointers into buffers that stay pinned (or fixed) while the job runs.
/// </summary>
internal sealed unsafe class GemmJob : CpuJob
{
    private const int MaxProducts = 3;

    // W-row granule of a worker's share: a whole 8-row register tile. The split never changes a result (each
    // dot product has one summation order), only which core computes it.
    private const int RowGranule = 8;

    // Below this many 8-row W tiles per worker a W-row split leaves cores idle or uneven, so the X rows are split.
    private const int MinTilesPerWorker = 4;

    // X-row granule of that split: the 3-row register tile.
    private const int XGranule = 3;

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
            var y = (float*)_outputs[m];
            if (w.Rows >= MinTilesPerWorker * RowGranule * workerCount || _xRows < XGranule * workerCount)
            {
                // by W rows: each worker streams its own slice of W once for all X rows
                var (start, end) = Share(w.Rows, worker, workerCount, RowGranule);
                if (start < end)
                {
                    Gemm.Rows(in w, _x, _xRows, y, start, end);
                }
            }
            else
            {
                // few W rows (a narrow K/V projection) against many X rows: by X rows, in whole 3-row tiles
                var (first, last) = ShareRows(_xRows, worker, workerCount);
                if (first < last)
                {
                    Gemm.Rows(in w, _x + ((long)first * w.Cols), last - first, y + ((long)first * w.Rows), 0, w.Rows);
                }
            }
        }
    }

    /// <summary>[first, last) of <paramref name="rows"/> X rows for one worker, boundaries at multiples of 3.</summary>
    private static (int First, int Last) ShareRows(int rows, int worker, int workerCount)
    {
        var first = (int)((long)rows * worker / workerCount) / XGranule * XGranule;
        var last = worker == workerCount - 1 ? rows : (int)((long)rows * (worker + 1) / workerCount) / XGranule * XGranule;
        return (first, last);
    }
}
