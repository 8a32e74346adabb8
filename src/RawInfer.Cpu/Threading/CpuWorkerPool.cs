using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace RawInfer.Cpu.Threading;

/// <summary>
/// A fixed set of worker threads, created once, that run one <see cref="CpuJob"/> at a time together with the
/// calling thread. A job is a list of chunks; every thread claims the next unclaimed chunk with one
/// compare-exchange until none is left, so the split balances itself and a worker that is late (still waking,
/// or preempted on a shared machine) never holds up the caller: the caller only waits for chunks already
/// claimed. Between jobs a worker spins (a forward pass dispatches every few microseconds) and blocks on its
/// own semaphore once idle: after <see cref="IdleSpin"/> normally, after <see cref="BurstSpin"/> while a caller
/// holds a <see cref="BeginBurst"/>. Dispatch allocates nothing.
/// </summary>
internal sealed class CpuWorkerPool : IDisposable
{
    /// <summary>Spin before blocking when no burst is held: covers the gaps between jobs of one step.</summary>
    public static readonly TimeSpan IdleSpin = TimeSpan.FromMicroseconds(50);

    /// <summary>Spin before blocking while a burst is held (a forward pass in flight): covers its longest serial stretch.</summary>
    public static readonly TimeSpan BurstSpin = TimeSpan.FromMilliseconds(2);

    private static readonly long IdleSpinTicks = (long)(IdleSpin.TotalSeconds * Stopwatch.Frequency);
    private static readonly long BurstSpinTicks = (long)(BurstSpin.TotalSeconds * Stopwatch.Frequency);
    private static readonly long PauseTicks = Stopwatch.Frequency / 50_000; // 20 µs of pure spinning first

    private readonly Thread[] _threads;          // (workerCount - 1)
    private readonly SemaphoreSlim[] _wake;      // (workerCount - 1)
    private readonly int[] _sleeping;            // (workerCount - 1); 1 while worker k announces or does a blocking wait
    private CpuJob? _job;
    private int _chunkCount;
    private long _claim;                         // high 32 bits: generation (one per job); low 32: next unclaimed chunk
    private int _done;                           // chunks of the current generation finished
    private int _bursts;                         // BeginBurst minus EndBurst
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
            var slot = k;
            _threads[k] = new Thread(() => WorkerLoop(slot))
            {
                IsBackground = true,
                Name = $"RawInfer CPU worker {k + 1}",
            };
            _threads[k].Start();
        }
    }

    /// <summary>Threads taking part in each job, the caller included.</summary>
    public int WorkerCount { get; }

    /// <summary>Background workers currently blocked (or about to block) on their semaphore: not spinning.</summary>
    internal int BlockedWorkers
    {
        get
        {
            var blocked = 0;
            for (var k = 0; k < _sleeping.Length; k++)
            {
                blocked += Volatile.Read(ref _sleeping[k]);
            }

            return blocked;
        }
    }

    /// <summary>
    /// Marks the start of a run of jobs with short serial gaps (a forward pass): workers keep spinning up to
    /// <see cref="BurstSpin"/> between them instead of <see cref="IdleSpin"/>. Pair with <see cref="EndBurst"/>.
    /// </summary>
    public void BeginBurst() => Interlocked.Increment(ref _bursts);

    /// <summary>Ends a <see cref="BeginBurst"/>; idle workers then block after <see cref="IdleSpin"/>.</summary>
    public void EndBurst() => Interlocked.Decrement(ref _bursts);

    /// <summary>Runs every chunk of <paramref name="job"/> and returns when all are done.</summary>
    public void Run(CpuJob job)
    {
        ObjectDisposedException.ThrowIf(_stopping, this);
        var chunks = job.ChunkCount(WorkerCount);
        if (WorkerCount == 1 || chunks <= 1)
        {
            for (var c = 0; c < chunks; c++)
            {
                job.ExecuteChunk(c, chunks);
            }

            return;
        }

        _job = job;
        _chunkCount = chunks;
        Volatile.Write(ref _done, 0);
        var generation = (int)(Volatile.Read(ref _claim) >> 32) + 1;

        // Full fence: the job, its chunk count and the zeroed counter are visible before the new generation.
        Interlocked.Exchange(ref _claim, (long)generation << 32);
        WakeSleepers();

        RunChunks(generation);

        // Never return while a worker still runs a claimed chunk (it reads the job's buffers).
        var spin = default(SpinWait);
        while (Volatile.Read(ref _done) != chunks)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }

        _job = null;
        var failure = Interlocked.Exchange(ref _failure, null);
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
        Interlocked.Add(ref _claim, 1L << 32);
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

    /// <summary>Claims and runs chunks of <paramref name="generation"/> until none is left or a newer job started.</summary>
    private void RunChunks(int generation)
    {
        while (true)
        {
            var claim = Volatile.Read(ref _claim);
            if ((int)(claim >> 32) != generation || (int)claim >= Volatile.Read(ref _chunkCount))
            {
                return;
            }

            if (Interlocked.CompareExchange(ref _claim, claim + 1, claim) != claim)
            {
                continue;
            }

            // The generation cannot finish while this chunk is claimed and not done, so the job is stable here.
            try
            {
                _job!.ExecuteChunk((int)claim, _chunkCount);
            }
#pragma warning disable CA1031 // Any failure is handed to the dispatching thread, which rethrows it.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Interlocked.CompareExchange(ref _failure, e, null);
            }

            Interlocked.Increment(ref _done);
        }
    }

    private void WakeSleepers()
    {
        for (var k = 0; k < _sleeping.Length; k++)
        {
            if (Volatile.Read(ref _sleeping[k]) == 1 && Interlocked.Exchange(ref _sleeping[k], 0) == 1)
            {
                _wake[k].Release();
            }
        }
    }

    private void WorkerLoop(int slot)
    {
        var seen = 0;
        while (true)
        {
            var generation = WaitForGeneration(slot, seen);
            if (_stopping)
            {
                return;
            }

            seen = generation;
            RunChunks(generation);
        }
    }

    /// <summary>Returns once the generation differs from <paramref name="seen"/>: spin first, then block.</summary>
    private int WaitForGeneration(int slot, int seen)
    {
        var spinStart = Stopwatch.GetTimestamp();
        while (true)
        {
            var generation = (int)(Volatile.Read(ref _claim) >> 32);
            if (generation != seen)
            {
                return generation;
            }

            var limit = Volatile.Read(ref _bursts) > 0 ? BurstSpinTicks : IdleSpinTicks;
            var spun = Stopwatch.GetTimestamp() - spinStart;
            if (spun < PauseTicks)
            {
                Thread.SpinWait(20);
                continue;
            }

            if (spun < limit)
            {
                // Past the first microseconds, offer the core to any other runnable thread between looks (on a
                // quiet machine this returns at once): on an oversubscribed one a pure spin here measurably
                // slowed the dispatching thread, which competes with it for the same two cores.
                Thread.Yield();
                continue;
            }

            // Announce the sleep, then look once more: the dispatcher publishes the generation before it reads
            // the flag, and both sides use full fences, so either we see the job or the dispatcher sees us asleep.
            Interlocked.Exchange(ref _sleeping[slot], 1);
            if ((int)(Volatile.Read(ref _claim) >> 32) != seen)
            {
                // A release may have raced in; a stray count only causes one extra trip round this loop.
                Interlocked.Exchange(ref _sleeping[slot], 0);
                continue;
            }

            _wake[slot].Wait();
            Volatile.Write(ref _sleeping[slot], 0);
            spinStart = Stopwatch.GetTimestamp();
        }
    }
}
