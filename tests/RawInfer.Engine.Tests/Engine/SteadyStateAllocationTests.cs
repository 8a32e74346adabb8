using System.Diagnostics.Metrics;
using RawInfer.Engine.Sampling;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>
/// Issue #8's goal, zero managed allocations per engine step in steady state, measured on the engine thread itself:
/// the fake runner reads the thread's allocation counter at the start of every forward pass, so the difference
/// between two readings is everything one whole step (postprocess, intake, schedule, batch building) allocated.
/// The tests run alone in their process (<see cref="QuietThreadPool"/>): the engine thread wakes each waiting reader
/// by queueing a work item to the thread pool, and when tests running beside them have backed up the pool's global
/// queue, that enqueue grows the queue by a segment, 1,280 bytes on the engine thread (a CI run once failed so, at
/// step 134); a pool that keeps up allocates nothing there.
/// </summary>
[Collection(nameof(QuietThreadPool))]
public class SteadyStateAllocationTests
{
    [Fact]
    public async Task Decode_steps_of_several_streaming_requests_allocate_nothing_on_the_engine_thread() =>
        await AssertSteadyDecodeAllocatesNothing(warmUpRequests: 6);

    /// <summary>
    /// The measured round has one more live sequence than the warm-up ever had, so one request gets a sequence record
    /// that has never held a long block table. Under load the first test can land here too: when a reader's
    /// Task.Run starts late, its warm-up request runs after another finished and the round reuses a record (a loaded
    /// CI run once saw 88 + 152 B here: that table growing from 8 to 16 to 32 blocks at steps ~64 and ~128, with the
    /// requests' 200-token budget then).
    /// Admission sizes the table for prompt plus generation budget, so the decode steps never grow it.
    /// </summary>
    [Fact]
    public async Task A_request_on_a_fresh_sequence_record_allocates_nothing_while_it_decodes() =>
        await AssertSteadyDecodeAllocatesNothing(warmUpRequests: 5);

    /// <summary>
    /// The same with a metrics listener attached to the engine's meter (as a host exporting to OpenTelemetry has):
    /// every histogram and counter the step records then reaches a callback on the engine thread.
    /// </summary>
    [Fact]
    public async Task Decode_steps_allocate_nothing_while_a_listener_receives_every_measurement() =>
        await AssertSteadyDecodeAllocatesNothing(warmUpRequests: 6, listen: true);

    private static async Task AssertSteadyDecodeAllocatesNothing(int warmUpRequests, bool listen = false)
    {
        var runner = new FakeRunner { RecordSeenTokens = false };
        var allocated = new long[1600]; // (steps) the engine thread's allocation counter at each forward pass
        var allDecoding = new bool[1600]; // (steps) the batch is one decode row of each of the six requests
        var steps = 0;
        using var submitted = new CountdownEvent(6); // the measured round's requests, as each reader has submitted its own
        var holdFirstPass = 0;
        runner.BeforeExecute = batch =>
        {
            // The measured round's first pass waits until all six are in the engine: with steps of microseconds, a
            // reader whose Task.Run started late would otherwise join after hundreds of steps.
            if (Interlocked.Exchange(ref holdFirstPass, 0) == 1)
            {
                Assert.True(submitted.Wait(TimeSpan.FromSeconds(30)), "the six readers did not submit within 30 s");
            }

            if (steps < allocated.Length)
            {
                allDecoding[steps] = batch.NumSequences == 6 && batch.NumTokens == 6;
                allocated[steps++] = GC.GetAllocatedBytesForCurrentThread();
            }
        };
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 512, BlockSize = 8 });
        long measurements = 0;
        using var listener = new MeterListener();
        if (listen)
        {
            listener.InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, engine.Meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            };
            listener.SetMeasurementEventCallback<double>((_, _, _, _) => Interlocked.Increment(ref measurements));
            listener.SetMeasurementEventCallback<long>((_, _, _, _) => Interlocked.Increment(ref measurements));
            listener.Start();
        }

        // Greedy, seeded nucleus, penalties and a stop string that never matches but holds text back now and then.
        const int outputTokens = 400;
        GenerationRequest[] requests =
        [
            new() { Prompt = "once", MaxTokens = outputTokens, IgnoreEos = true },
            new() { Prompt = "upon a", MaxTokens = outputTokens, IgnoreEos = true, Sampling = new SamplingParams { Temperature = 0.8f, TopP = 0.9f, Seed = 7 } },
            new() { Prompt = "time", MaxTokens = outputTokens, IgnoreEos = true, Sampling = new SamplingParams { Temperature = 1.1f, TopK = 20, PresencePenalty = 0.5f, FrequencyPenalty = 0.3f, Seed = 9 } },
            new() { Prompt = "there", MaxTokens = outputTokens, IgnoreEos = true, StopStrings = ["a0b1c2d3"] },
            new() { Prompt = "was a", MaxTokens = outputTokens, IgnoreEos = true, Sampling = new SamplingParams { Temperature = 0.7f, MinP = 0.05f, Seed = 3 } },
            new() { Prompt = "fox", MaxTokens = outputTokens, IgnoreEos = true },
        ];

        // A first round warms the engine up: the allocator's recycled sequence records keep the block tables they
        // grew, the buffers of the engine's scratch lists reach their working size, the JIT settles.
        await StreamAllAsync(engine, requests[..warmUpRequests]);
        var firstStep = steps;
        Volatile.Write(ref holdFirstPass, 1);
        var results = await StreamAllAsync(engine, requests, submitted);
        await EngineHarness.StopAndAuditAsync(engine);
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(EngineHarness.Reference(requests[i]), results[i]); // the stream is still whole and right
        }

        // The window: the round's longest stretch of steps that are one decode row of each of the six (each sampling,
        // streaming and crossing KV block boundaries), less its first two steps, so a reader that started late has been
        // admitted before it. Its length depends on how late the readers start, not on whether anything allocates.
        Assert.True(steps < allocated.Length, $"{steps} steps: the recording buffer is too short");
        var (from, to) = LongestStretch(allDecoding, firstStep, steps);
        from += 2;
        Assert.True(to - from >= 150, $"the six requests decoded together for only {to - from} steps (from step {from - firstStep} of the round)");
        var window = allocated[to] - allocated[from];
        var perStep = string.Join(", ", Enumerable.Range(from, to - from)
            .Where(k => allocated[k + 1] != allocated[k]).Select(k => $"step {k - firstStep}: {allocated[k + 1] - allocated[k]} B"));
        Assert.True(window == 0, $"{to - from} steady-state steps allocated {window} bytes on the engine thread ({perStep})");
        if (listen)
        {
            // at least a forward time, a row count and a sampled-token count per step
            Assert.True(Interlocked.Read(ref measurements) >= 3L * steps, $"{measurements} measurements in {steps} steps");
        }
    }

    /// <summary>[start, end] of the longest run of true in flags[first..count), end inclusive.</summary>
    private static (int Start, int End) LongestStretch(bool[] flags, int first, int count)
    {
        (int Start, int End) best = (first, first - 1);
        for (var k = first; k < count;)
        {
            if (!flags[k])
            {
                k++;
                continue;
            }

            var start = k;
            while (k < count && flags[k])
            {
                k++;
            }

            if (k - 1 - start > best.End - best.Start)
            {
                best = (start, k - 1);
            }
        }

        return best;
    }

    /// <summary>
    /// Streams every request with its own reader, as a server would; the readers' allocations are their own. Each
    /// reader signals <paramref name="submitted"/> once its first MoveNextAsync has put its request in the engine
    /// (synchronously, with no guards configured).
    /// </summary>
    private static async Task<List<int>[]> StreamAllAsync(InferenceEngine engine, GenerationRequest[] requests, CountdownEvent? submitted = null) =>
        await Task.WhenAll(requests.Select(r => Task.Run(async () =>
        {
            var ids = new List<int>();
            var chunks = engine.StreamAsync(r, TestContext.Current.CancellationToken).GetAsyncEnumerator(TestContext.Current.CancellationToken);
            await using (chunks)
            {
                var more = chunks.MoveNextAsync();
                submitted?.Signal();
                while (await more)
                {
                    ids.AddRange(chunks.Current.TokenIds);
                    more = chunks.MoveNextAsync();
                }
            }

            return ids;
        })));
}

/// <summary>Runs <see cref="SteadyStateAllocationTests"/> with no other test of the assembly beside them.</summary>
[CollectionDefinition(nameof(QuietThreadPool), DisableParallelization = true)]
public sealed class QuietThreadPool;
