using System.Runtime.InteropServices;
using RawInfer.Cpu.Runner;
using RawInfer.Cpu.Threading;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Tests.Threading;

/// <summary>
/// Shares of W rows whose tails other threads take (<see cref="ShareTails"/>): every row of every product runs
/// exactly once, in whole 8-row groups, whether one thread ends up doing every share (a worker that never came) or
/// the threads race for the tails; and the runner's few-row products (<see cref="GemmJob"/>, which takes the tails
/// with one to three X rows, Q8_0 with X quantized once) give the single-threaded bits either way.
/// </summary>
[Collection(KernelSwitches.Name)] // toggles ShareTails.Enabled
public sealed unsafe class ShareTailsTests
{
    public static TheoryData<TensorType, int, int[]> Products() => new()
    {
        { TensorType.F16, 2, [1203, 67, 517] },
        { TensorType.F16, 3, [1203, 67, 517] },
        { TensorType.F32, 4, [4096, 9] },
        { TensorType.Q8_0, 3, [32000] },
        { TensorType.F16, 2, [5, 8, 13] },
    };

    [Theory]
    [MemberData(nameof(Products))]
    public void One_thread_that_finds_every_other_share_unclaimed_runs_each_row_once(TensorType type, int shares, int[] rows)
    {
        var weights = rows.Select(r => new WeightTensor(null, type, r, 768)).ToArray();
        var job = new RecordingJob(rows);
        var tails = new ShareTails();
        tails.Reset(weights, shares);

        // the first share's thread does its own share, then takes all of the others from their backs...
        tails.Execute(job, weights, 0, shares);
        job.AssertEveryRowOnce();

        // ...so their own threads, coming late, find nothing left
        for (var s = 1; s < shares; s++)
        {
            tails.Execute(job, weights, s, shares);
        }

        job.AssertEveryRowOnce();
        Assert.All(job.Ranges, range => Assert.True(range.Start % 8 == 0 && (range.End % 8 == 0 || range.End == rows[range.Product]), $"{range}"));

        // the owner streamed its share front to back in a few calls, not one per unit
        var share0Calls = job.Ranges.Count(r => r.Start < CpuJob.Share(rows[r.Product], 0, shares, 8).End);
        Assert.True(share0Calls <= 10 * rows.Length, $"{share0Calls} calls for share 0");
    }

    [Theory]
    [MemberData(nameof(Products))]
    public void Threads_racing_for_the_tails_run_each_row_once(TensorType type, int shares, int[] rows)
    {
        var weights = rows.Select(r => new WeightTensor(null, type, r, 768)).ToArray();
        var tails = new ShareTails();
        for (var round = 0; round < 50; round++)
        {
            var job = new RecordingJob(rows);
            tails.Reset(weights, shares);
            using var start = new Barrier(shares);
            var threads = Enumerable.Range(0, shares).Select(s => new Thread(() =>
            {
                start.SignalAndWait();
                if (s == round % shares)
                {
                    Thread.SpinWait(5000 * (round % 7)); // one share's owner comes late
                }

                tails.Execute(job, weights, s, shares);
            })).ToArray();
            foreach (var t in threads)
            {
                t.Start();
            }

            foreach (var t in threads)
            {
                t.Join();
            }

            job.AssertEveryRowOnce();
        }
    }

    [Theory]
    [InlineData(TensorType.F16, 1)]
    [InlineData(TensorType.F16, 3)]
    [InlineData(TensorType.F32, 3)]
    [InlineData(TensorType.F32, 1)]
    [InlineData(TensorType.BF16, 2)]
    [InlineData(TensorType.Q8_0, 1)]
    [InlineData(TensorType.Q8_0, 3)]
    public void Runner_products_of_few_rows_give_the_single_threaded_bits(TensorType type, int xRows)
    {
        const int cols = 768;
        int[] rows = [2048, 256, 771];
        var random = new Random(7 + xRows);
        var x = GC.AllocateArray<float>(xRows * cols, pinned: true);
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = (random.NextSingle() * 4) - 2;
        }

        var data = new List<nint>();
        var weights = new List<WeightTensor>();
        var enabledBefore = ShareTails.Enabled;
        var sharedBefore = GemmJob.ShareQuantizedX;
        try
        {
            foreach (var r in rows)
            {
                var rowBytes = TensorEncoding.RowBytes(type, cols);
                var p = (byte*)NativeMemory.AlignedAlloc((nuint)((long)rowBytes * r), 64);
                data.Add((nint)p);
                var values = new float[cols];
                for (var i = 0; i < r; i++)
                {
                    for (var j = 0; j < cols; j++)
                    {
                        values[j] = (random.NextSingle() * 2) - 1;
                    }

                    TensorEncoding.EncodeRow(values, type, new Span<byte>(p + ((long)i * rowBytes), rowBytes));
                }

                weights.Add(new WeightTensor(p, type, r, cols));
            }

            float[][] Run(Action<GemmJob> run)
            {
                var y = rows.Select(r => GC.AllocateArray<float>(xRows * r, pinned: true)).ToArray();
                var job = new GemmJob().Reset((float*)Marshal.UnsafeAddrOfPinnedArrayElement(x, 0), xRows);
                for (var m = 0; m < rows.Length; m++)
                {
                    job.Add(weights[m], (float*)Marshal.UnsafeAddrOfPinnedArrayElement(y[m], 0));
                }

                if (job.PrepareQuantizedX())
                {
                    // as the runner does: X quantized once, on the dispatching thread for so few rows
                    Assert.True(job.QuantizeInline);
                    job.Quantizer.Execute(0, 1);
                }

                run(job);
                return y;
            }

            // the definition: one thread, and a Q8_0 kernel that quantizes X itself
            ShareTails.Enabled = false;
            GemmJob.ShareQuantizedX = false;
            var single = Run(job => job.Execute(0, 1));
            ShareTails.Enabled = true;
            GemmJob.ShareQuantizedX = true;

            // a worker that never came: the first share's thread computes everything, the others find nothing
            var alone = Run(job =>
            {
                Assert.Equal(3, job.ChunkCount(3));
                Assert.True(job.Stealing);
                job.ExecuteChunk(0, 3);
                job.ExecuteChunk(1, 3);
                job.ExecuteChunk(2, 3);
            });
            using var pool = new CpuWorkerPool(2);
            var pooled = Run(pool.Run);
            for (var m = 0; m < rows.Length; m++)
            {
                Assert.Equal(single[m], alone[m]);
                Assert.Equal(single[m], pooled[m]);
            }
        }
        finally
        {
            ShareTails.Enabled = enabledBefore;
            GemmJob.ShareQuantizedX = sharedBefore;
            foreach (var p in data)
            {
                NativeMemory.AlignedFree((void*)p);
            }
        }
    }

    private sealed class RecordingJob(int[] rows) : IRowShares
    {
        private readonly int[][] _runs = rows.Select(r => new int[r]).ToArray();

        public List<(int Product, int Start, int End)> Ranges { get; } = [];

        public void RunRows(int product, int start, int end)
        {
            lock (Ranges)
            {
                Ranges.Add((product, start, end));
            }

            for (var r = start; r < end; r++)
            {
                Interlocked.Increment(ref _runs[product][r]);
            }
        }

        public void AssertEveryRowOnce()
        {
            for (var m = 0; m < _runs.Length; m++)
            {
                var counts = _runs[m];
                Assert.True(counts.All(c => c == 1), $"product {m}: rows run {string.Join(",", counts.Distinct())} times");
            }
        }
    }
}
