using RawInfer.Cpu.Threading;

namespace RawInfer.Cpu.Tests.Threading;

/// <summary>
/// The worker pool's chunk scheduling (every chunk exactly once, whichever thread claims it) and its idle
/// behaviour (workers end up blocked on their semaphores, not spinning, once no job has come for a while).
/// </summary>
public sealed class PoolSchedulingTests
{
    [Theory]
    [InlineData(2, 1)]
    [InlineData(2, 7)]
    [InlineData(3, 64)]
    [InlineData(4, 1000)]
    public void Every_chunk_runs_exactly_once_per_job(int workers, int chunks)
    {
        using var pool = new CpuWorkerPool(workers);
        var job = new ChunkCountingJob(chunks);
        for (var run = 1; run <= 300; run++)
        {
            pool.Run(job);
            Assert.All(job.Calls, c => Assert.Equal(run, c));

            // Now and then let the workers fall asleep, so late wake-ups race with the caller's claims.
            if (run % 100 == 0)
            {
                Thread.Sleep(2);
            }
        }
    }

    [Fact]
    public void The_caller_takes_the_remaining_chunks_while_a_worker_is_stalled()
    {
        // A worker claims one chunk and stalls in it until every other chunk is done. Only if the caller may
        // claim all the others (nothing is pinned to a thread) is the stall released before its timeout.
        using var pool = new CpuWorkerPool(2);
        var job = new StallingJob(Environment.CurrentManagedThreadId, chunks: 40);
        pool.Run(job);
        Assert.True(job.WorkerStalled, "the worker never claimed a chunk");
        Assert.True(job.ReleasedInTime, "the stalled worker's wait timed out: the caller did not run the other chunks");
        Assert.Equal(39, job.OthersDone);
    }

    [Fact]
    public void Idle_workers_end_up_blocked()
    {
        using var pool = new CpuWorkerPool(3);
        var job = new ChunkCountingJob(16);
        for (var run = 0; run < 200; run++)
        {
            pool.Run(job);
        }

        Assert.True(WaitUntil(() => pool.BlockedWorkers == 2), $"blocked workers: {pool.BlockedWorkers} of 2");

        // A blocked worker still wakes for the next job and blocks again afterwards.
        pool.Run(job);
        Assert.True(WaitUntil(() => pool.BlockedWorkers == 2), $"blocked workers after a wake-up: {pool.BlockedWorkers} of 2");
    }

    [Fact]
    public void Workers_block_after_a_burst_ends()
    {
        using var pool = new CpuWorkerPool(2);
        var job = new ChunkCountingJob(8);
        pool.BeginBurst();
        for (var run = 0; run < 100; run++)
        {
            pool.Run(job);
        }

        pool.EndBurst();
        Assert.True(WaitUntil(() => pool.BlockedWorkers == 1), $"blocked workers: {pool.BlockedWorkers} of 1");
    }

    [Fact]
    public void A_chunk_exception_reaches_the_caller_after_all_other_chunks_ran()
    {
        using var pool = new CpuWorkerPool(2);
        var job = new ChunkCountingJob(20) { ThrowAt = 13 };
        var error = Assert.Throws<InvalidOperationException>(() => pool.Run(job));
        Assert.Equal("chunk 13", error.Message);
        Assert.All(job.Calls, c => Assert.Equal(1, c));

        job.ThrowAt = -1;
        pool.Run(job);
        Assert.All(job.Calls, c => Assert.Equal(2, c));
    }

    /// <summary>Polls for up to 10 s (a generous bound for a loaded machine; the expected wait is ~50 µs).</summary>
    private static bool WaitUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (condition())
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return condition();
    }

    private sealed class StallingJob(int callerThread, int chunks) : CpuJob
    {
        private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
        private readonly ManualResetEventSlim _workerClaimed = new();
        private readonly ManualResetEventSlim _othersDone = new();
        private int _stalls;
        private int _othersDoneCount;

        public bool WorkerStalled => _workerClaimed.IsSet;

        public bool ReleasedInTime { get; private set; }

        public int OthersDone => Volatile.Read(ref _othersDoneCount);

        public override int ChunkCount(int workerCount) => chunks;

        public override void ExecuteChunk(int chunk, int chunkCount)
        {
            if (Environment.CurrentManagedThreadId != callerThread && Interlocked.Exchange(ref _stalls, 1) == 0)
            {
                _workerClaimed.Set();
                ReleasedInTime = _othersDone.Wait(Timeout);
                return;
            }

            // Hold the caller until the worker is stalled, so the rest of the job is certainly left to it.
            _workerClaimed.Wait(Timeout);
            if (Interlocked.Increment(ref _othersDoneCount) == chunks - 1)
            {
                _othersDone.Set();
            }
        }

        public override void Execute(int worker, int workerCount) => throw new InvalidOperationException("chunked jobs never run by worker share");
    }

    private sealed class ChunkCountingJob(int chunks) : CpuJob
    {
        public int[] Calls { get; } = new int[chunks];

        public int ThrowAt { get; set; } = -1;

        public override int ChunkCount(int workerCount) => Calls.Length;

        public override void ExecuteChunk(int chunk, int chunkCount)
        {
            Assert.Equal(Calls.Length, chunkCount);
            Interlocked.Increment(ref Calls[chunk]);
            if (chunk == ThrowAt)
            {
                throw new InvalidOperationException($"chunk {chunk}");
            }
        }

        public override void Execute(int worker, int workerCount) => throw new InvalidOperationException("chunked jobs never run by worker share");
    }
}
