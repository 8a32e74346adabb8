using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.Models;
using RawInfer.Cpu.Tests.Kernels;

namespace RawInfer.Cpu.Tests;

public unsafe class WorkerPoolTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(17, 2)]
    [InlineData(1025, 3)]
    [InlineData(3, 4)]
    [InlineData(768, 2)]
    public void Shares_cover_the_range_exactly_once(int count, int workers)
    {
        var covered = new int[count];
        var previousEnd = 0;
        for (var k = 0; k < workers; k++)
        {
            var (start, end) = CpuJob.Share(count, k, workers, 4);
            Assert.Equal(previousEnd, start);
            Assert.True(end >= start);
            Assert.True(k == workers - 1 || start % 4 == 0);
            for (var i = start; i < end; i++)
            {
                covered[i]++;
            }

            previousEnd = end;
        }

        Assert.Equal(count, previousEnd);
        Assert.All(covered, c => Assert.Equal(1, c));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Pool_runs_every_worker_once_per_job_many_times(int workers)
    {
        using var pool = new CpuWorkerPool(workers);
        var job = new CountingJob(workers);
        for (var run = 1; run <= 2000; run++)
        {
            pool.Run(job);
            Assert.All(job.Calls, c => Assert.Equal(run, c));

            // Let workers fall asleep now and then so the blocking wake-up path is exercised too.
            if (run % 500 == 0)
            {
                Thread.Sleep(5);
            }
        }
    }

    [Fact]
    public void Parallel_matvec_equals_single_threaded()
    {
        const int rows = 1025, cols = 257;
        var w = KernelTestData.Random(rows * cols, 42);
        var x = KernelTestData.Random(cols, 43);
        var single = new float[rows];
        var parallel = new float[rows];
        fixed (float* pw = w)
        fixed (float* px = x)
        fixed (float* ps = single)
        fixed (float* pp = parallel)
        {
            var tensor = new WeightTensor((byte*)pw, TensorType.F32, rows, cols);
            MatVec.Multiply(tensor, x, single);
            using var pool = new CpuWorkerPool(3);
            pool.Run(new MatVecJob().Reset(px).Add(tensor, pp));
        }

        // Each row is computed by exactly one worker with the same kernel: identical bits.
        Assert.Equal(single, parallel);
    }

    [Fact]
    public void A_worker_exception_reaches_the_caller_and_the_pool_keeps_working()
    {
        using var pool = new CpuWorkerPool(2);
        var error = Assert.Throws<InvalidOperationException>(() => pool.Run(new ThrowingJob()));
        Assert.Equal("worker 1", error.Message);

        var job = new CountingJob(2);
        pool.Run(job);
        Assert.All(job.Calls, c => Assert.Equal(1, c));
    }

    private sealed class CountingJob(int workers) : CpuJob
    {
        public int[] Calls { get; } = new int[workers];

        public override void Execute(int worker, int workerCount) => Interlocked.Increment(ref Calls[worker]);
    }

    private sealed class ThrowingJob : CpuJob
    {
        public override void Execute(int worker, int workerCount)
        {
            if (worker == 1)
            {
                throw new InvalidOperationException("worker 1");
            }
        }
    }
}
