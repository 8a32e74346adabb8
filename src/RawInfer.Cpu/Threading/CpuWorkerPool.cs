using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace RawInfer.Cpu.Threading;

/// <summary>
/// A fixed set of worker threads, created once, that run one <see cref="CpuJob"/> at a time together with the
/// calling thread (worker 0). An idle worker spins briefly (the next matrix product of a forward pass is
/// usually microseconds away), then blocks on its own semaphore until the next job. Dispatch allocates nothing.
/// </summary>
internal sealed class CpuWorkerPool : IDisposable
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 20_000; // 50 µs

    private readonly Thread[] _threads;          // (workerCount - 1); index k runs worker k + 1
    private readonly SemaphoreSlim[] _wake;      // (workerCount - 1)
    private readonly int[] _sleeping;            // (workerCount - 1); 1 while worker k + 1 waits on its semaphore
    private CpuJob? _job;
    private long _generation;                    // bumped once per job; workers run each generation once
    private int _pending;                        // background workers still running the current job
    private Exception? _failure;
    private volatile bool _stopping;

    /// <param name="workerCount">Threads taking part in each job, the caller included (≥ 1).</param>
    public CpuWorkerPool(int workerCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(workerCount, 1);
        WorkerCount = workerCount;
        _threads = new Thread[workerCount - 1];
        _wake = new SemaphoreSlim[workerCount - 1];
        _sleeping = new int[workerCount - 1];
        for (var k = 0; k < _threads.Length; k++)
        {
            _wake[k] = new SemaphoreSlim(0);
            var worker = k + 1;
            _threads[k] = new Thread(() => WorkerLoop(worker))
            {
                IsBackground = true,
                Name = $"RawInfer CPU worker {worker}",
            };
            _threads[k].Start();
        }
    }

    /// <summary>Threads taking part in each job, the caller included.</summary>
    public int WorkerCount { get; }

    /// <summary>Runs <paramref name="job"/> on all workers and returns when every share is done.</summary>
    public void Run(CpuJob job)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        if (WorkerCount == 1)
        {
            job.Execute(0, 1);
            return;
        }

        _job = job;
        Volatile.Write(ref _pending, WorkerCount - 1);
        Interlocked.Increment(ref _generation); // full fence: _job and _pending are visible before the new generation
        WakeSleepers();

        Exception? failure = null;
        try
        {
            job.Execute(0, WorkerCount);
        }
        finally
        {
            // Never return while a worker still reads the job's buffers.
            var spin = default(SpinWait);
            while (Volatile.Read(ref _pending) != 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }

            failure = Interlocked.Exchange(ref _failure, null);
        }

        if (failure is not null)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }

    public void Dispose()
    {
        if (_stopping)
        {
            return;
        }

        _stopping = true;
        Interlocked.Increment(ref _generation);
        for (var k = 0; k < _wake.Length; k++)
        {
            _wake[k].Release();
        }

        foreach (var thread in _threads)
        {
            thread.Join();
        }

        foreach (var semaphore in _wake)
        {
            semaphore.Dispose();
        }
    }

    private void WakeSleepers()
    {
        for (var k = 0; k < _sleeping.Length; k++)
        {
            if (Interlocked.Exchange(ref _sleeping[k], 0) == 1)
            {
                _wake[k].Release();
            }
        }
    }

    private void WorkerLoop(int worker)
    {
        var slot = worker - 1;
        long seen = 0;
        while (true)
        {
            var generation = WaitForGeneration(slot, seen);
            if (_stopping)
            {
                return;
            }

            seen = generation;
            try
            {
                _job!.Execute(worker, WorkerCount);
            }
#pragma warning disable CA1031 // Any failure is handed to the dispatching thread, which rethrows it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }

            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>Returns once the generation differs from <paramref name="seen"/>: spin first, then block.</summary>
    private long WaitForGeneration(int slot, long seen)
    {
        var spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
        while (true)
        {
            var generation = Volatile.Read(ref _generation);
            if (generation != seen)
            {
                return generation;
            }

            if (Stopwatch.GetTimestamp() < spinUntil)
            {
                Thread.SpinWait(20);
                continue;
            }

            // Announce the sleep, then look once more: the dispatcher bumps the generation before it reads the
            // flag, and both sides use full fences, so either we see the job or the dispatcher sees us asleep.
            Interlocked.Exchange(ref _sleeping[slot], 1);
            if (Volatile.Read(ref _generation) != seen)
            {
                // A release may have raced in; a stray count only causes one extra trip round this loop.
                Interlocked.Exchange(ref _sleeping[slot], 0);
                continue;
            }

            _wake[slot].Wait();
            spinUntil = Stopwatch.GetTimestamp() + SpinTicks;
        }
    }
}
