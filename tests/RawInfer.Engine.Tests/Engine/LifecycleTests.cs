namespace RawInfer.Engine.Tests.Engine;

/// <summary>Cancellation at each stage, deadlines, overload, priority order, shutdown; blocks always come back.</summary>
public class LifecycleTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("queued")]
    [InlineData("prefill")]
    [InlineData("decode")]
    public async Task Cancelling_at_any_stage_ends_the_request_and_frees_its_blocks(string stage)
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, BlockSize = 4, MaxBatchedTokens = 8, MaxRunningSequences = 1, EventSink = sink,
        });

        // A blocker occupies the only running slot, so a second request stays queued.
        using var blockerCts = new CancellationTokenSource();
        var blocker = engine.GenerateAsync(new GenerationRequest { Prompt = "x", MaxTokens = 200, IgnoreEos = true }, blockerCts.Token);
        await gate.WaitEnteredAsync();

        using var cts = new CancellationTokenSource();
        Task<GenerationResult> victim;
        if (stage == "queued")
        {
            victim = engine.GenerateAsync(new GenerationRequest { Prompt = "queued", MaxTokens = 5 }, cts.Token);
            gate.Release();
            await gate.WaitEnteredAsync();
        }
        else
        {
            var prompt = new string('a', 30); // 31 tokens: four chunks of 8
            victim = engine.GenerateAsync(new GenerationRequest { Prompt = prompt, MaxTokens = 100, IgnoreEos = true }, cts.Token);
            blockerCts.Cancel(); // the victim takes the only slot once the blocker is gone
            var steps = stage == "prefill" ? 2 : 6;
            for (var i = 0; i < steps; i++)
            {
                gate.Release();
                await gate.WaitEnteredAsync();
            }
        }

        cts.Cancel();
        blockerCts.Cancel();
        gate.Open(runner);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => victim);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => blocker);

        var cancelled = sink.Events.OfType<RequestCancelled>().Select(e => e.Stage).ToList();
        Assert.Contains(stage, cancelled);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Leaving_a_stream_early_cancels_the_request()
    {
        var runner = new FakeRunner();
        using var leftLoop = new ManualResetEventSlim();
        var steps = 0;
        runner.BeforeExecute = _ =>
        {
            if (++steps > 5)
            {
                leftLoop.Wait(TimeSpan.FromSeconds(30)); // hold the engine until the reader has gone
            }
        };
        var engine = EngineHarness.Create(runner);
        var seen = 0;
        await foreach (var chunk in engine.StreamAsync(new GenerationRequest { Prompt = "a", MaxTokens = 200, IgnoreEos = true }, Ct))
        {
            if (++seen == 3)
            {
                break;
            }
        }

        leftLoop.Set();
        await EngineHarness.StopAndAuditAsync(engine);
        Assert.True(engine.GetStats().GeneratedTokens < 200);
    }

    [Fact]
    public async Task Deadlines_end_requests_with_a_timeout()
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 64, MaxRunningSequences = 1 });
        var blocker = engine.GenerateAsync(new GenerationRequest { Prompt = "b", MaxTokens = 3, IgnoreEos = true }, Ct);
        await gate.WaitEnteredAsync();

        // Queued behind the blocked step past its first-token deadline; the other runs past its total deadline.
        var first = engine.GenerateAsync(new GenerationRequest { Prompt = "q", FirstTokenTimeout = TimeSpan.FromMilliseconds(50) }, Ct);
        var total = engine.GenerateAsync(new GenerationRequest { Prompt = "t", MaxTokens = 200, IgnoreEos = true, TotalTimeout = TimeSpan.FromMilliseconds(300) }, Ct);
        await Task.Delay(100, Ct);

        // Slow every later step before letting the blocked one go: set after opening, a descheduled test thread let
        // the engine run all 200 steps at full speed first (seen on a loaded 2-core machine).
        runner.BeforeExecute = _ => Thread.Sleep(5);
        gate.Release(1000);

        var firstResult = await first;
        Assert.Equal(FinishReason.Timeout, firstResult.FinishReason);
        Assert.Empty(firstResult.TokenIds);
        var totalResult = await total;
        Assert.Equal(FinishReason.Timeout, totalResult.FinishReason);
        Assert.True(totalResult.TokenIds.Count < 200);
        Assert.Equal(FinishReason.Length, (await blocker).FinishReason);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task A_full_queue_refuses_at_once_with_a_retry_hint()
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, MaxRunningSequences = 1, MaxQueuedRequests = 3, MaxQueuedTokens = 1000, EventSink = sink,
        });
        var running = engine.GenerateAsync(new GenerationRequest { Prompt = "r", MaxTokens = 2 }, Ct);
        await gate.WaitEnteredAsync();
        var queued = Enumerable.Range(0, 3).Select(_ => engine.GenerateAsync(new GenerationRequest { Prompt = "w", MaxTokens = 2 }, Ct)).ToList();

        var refused = await Assert.ThrowsAsync<EngineOverloadedException>(
            () => engine.GenerateAsync(new GenerationRequest { Prompt = "z", MaxTokens = 2 }, Ct));
        Assert.True(refused.RetryAfter > TimeSpan.Zero);
        var tooManyTokens = await Assert.ThrowsAsync<EngineOverloadedException>(
            () => engine.GenerateAsync(new GenerationRequest { Prompt = new string('a', 200), MaxTokens = 2 }, Ct));
        Assert.Contains("tokens", tooManyTokens.Message, StringComparison.Ordinal);
        Assert.Contains(sink.Events.OfType<RequestRefused>(), e => e.Check == "overload");

        gate.Open(runner);
        await running;
        await Task.WhenAll(queued);
        await engine.GenerateAsync(new GenerationRequest { Prompt = "again", MaxTokens = 2 }, Ct); // room again
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Priority_policy_admits_higher_priority_first()
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, MaxRunningSequences = 1, Policy = SchedulingPolicy.Priority, AgingPerSecond = 0, EventSink = sink,
        });
        var blocker = engine.GenerateAsync(new GenerationRequest { Prompt = "b", MaxTokens = 2 }, Ct);
        await gate.WaitEnteredAsync();
        int[] priorities = [1, 5, 3, 9, 0];
        var tasks = priorities.Select(p => engine.GenerateAsync(
            new GenerationRequest { Prompt = "p", MaxTokens = 1, Priority = p, RequestId = $"p{p}" }, Ct)).ToList();
        gate.Open(runner);
        await blocker;
        await Task.WhenAll(tasks);

        // The engine thread reports finishes in the order it ran the requests.
        var order = sink.Events.OfType<RequestFinished>().Select(e => e.Request.RequestId).Where(id => id.StartsWith('p')).ToList();
        Assert.Equal(["p9", "p5", "p3", "p1", "p0"], order);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Aging_lets_low_priority_overtake_after_waiting()
    {
        var time = new ManualTime();
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, MaxRunningSequences = 1, Policy = SchedulingPolicy.Priority, AgingPerSecond = 1,
            TimeProvider = time, EventSink = sink,
        });
        var blocker = engine.GenerateAsync(new GenerationRequest { Prompt = "b", MaxTokens = 2 }, Ct);
        await gate.WaitEnteredAsync();
        var old = engine.GenerateAsync(new GenerationRequest { Prompt = "o", MaxTokens = 1, Priority = 0, RequestId = "old" }, Ct);
        time.Advance(TimeSpan.FromSeconds(10)); // the old request has aged 10 levels
        var fresh = engine.GenerateAsync(new GenerationRequest { Prompt = "f", MaxTokens = 1, Priority = 5, RequestId = "fresh" }, Ct);
        var newest = engine.GenerateAsync(new GenerationRequest { Prompt = "n", MaxTokens = 1, Priority = 20, RequestId = "urgent" }, Ct);
        gate.Open(runner);
        await Task.WhenAll(blocker, old, fresh, newest);
        var order = sink.Events.OfType<RequestFinished>().Select(e => e.Request.RequestId).Where(id => !id.StartsWith("req", StringComparison.Ordinal)).ToList();
        Assert.Equal(["urgent", "old", "fresh"], order);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Abort_ends_every_request_and_drain_finishes_them()
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 64, DisposeMode = ShutdownMode.Abort });
        var tasks = Enumerable.Range(0, 5).Select(_ => engine.GenerateAsync(new GenerationRequest { Prompt = "a", MaxTokens = 50, IgnoreEos = true }, Ct)).ToList();
        await gate.WaitEnteredAsync();
        var stopping = engine.DisposeAsync();
        gate.Open(runner);
        await stopping;
        foreach (var result in await Task.WhenAll(tasks))
        {
            Assert.Equal(FinishReason.Aborted, result.FinishReason);
        }

        await EngineHarness.StopAndAuditAsync(engine);
        await Assert.ThrowsAsync<InvalidOperationException>(() => engine.GenerateAsync(new GenerationRequest { Prompt = "late" }, Ct));

        var draining = EngineHarness.Create(new FakeRunner());
        var drained = Enumerable.Range(0, 5).Select(_ => draining.GenerateAsync(new GenerationRequest { Prompt = "a", MaxTokens = 20, IgnoreEos = true }, Ct)).ToList();
        await EngineHarness.StopAndAuditAsync(draining);
        Assert.All(await Task.WhenAll(drained), r => Assert.Equal(20, r.TokenIds.Count));
    }
}
