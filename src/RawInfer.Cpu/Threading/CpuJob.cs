namespace RawInfer.Cpu.Threading;

/// <summary>
/// A unit of work the <see cref="CpuWorkerPool"/> splits into chunks that the calling thread and the workers
/// claim one at a time, so a worker that wakes late (or is preempted by another process on a busy machine)
/// delays nothing: the others take its chunks. Jobs are allocated once and refilled before each run, so
/// dispatching allocates nothing.
/// </summary>
internal abstract class CpuJob
{
    /// <summary>
    /// Does share <paramref name="worker"/> of <paramref name="workerCount"/>. The default chunking runs shares
    /// 0 .. workerCount-1, each exactly once but not necessarily on the thread of that index, and possibly one
    /// after another on the same thread; a job must not assume which thread runs which share.
    /// </summary>
    public abstract void Execute(int worker, int workerCount);

    /// <summary>Chunks to hand out for one run on <paramref name="workerCount"/> threads (≥ 1). Default: one per thread.</summary>
    public virtual int ChunkCount(int workerCount) => workerCount;

    /// <summary>Runs chunk <paramref name="chunk"/> of <paramref name="chunkCount"/>; chunks run concurrently, each once.</summary>
    public virtual void ExecuteChunk(int chunk, int chunkCount) => Execute(chunk, chunkCount);

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
