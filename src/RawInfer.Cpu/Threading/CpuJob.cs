namespace RawInfer.Cpu.Threading;

/// <summary>
/// A unit of work the <see cref="CpuWorkerPool"/> runs on every worker at once; each worker picks its share
/// from its index. Jobs are allocated once and refilled before each run, so dispatching allocates nothing.
/// </summary>
internal abstract class CpuJob
{
    /// <summary>Does this worker's share. Called concurrently with worker = 0 .. workerCount-1.</summary>
    public abstract void Execute(int worker, int workerCount);

    /// <summary>
    /// The [start, end) share of <paramref name="count"/> items for one worker, boundaries rounded down to a
    /// multiple of <paramref name="granule"/> (a power of two) so kernels keep their blocked inner loops.
    /// </summary>
    public static (int Start, int End) Share(int count, int worker, int workerCount, int granule)
    {
        var mask = ~(granule - 1);
        var start = (int)((long)count * worker / workerCount) & mask;
        var end = worker == workerCount - 1 ? count : (int)((long)count * (worker + 1) / workerCount) & mask;
        return (start, end);
    }
}
