using RawInfer.Engine.Scheduling;
using RawInfer.Engine.Tests.Engine;

namespace RawInfer.Engine.Tests.Scheduling;

/// <summary>
/// Under the priority policy a waiting request of higher priority takes the place of running lower-priority work
/// when the sequence budget or the KV blocks keep it out; never for equal priority, never under FCFS, and never when
/// the victims' blocks would not make room anyway.
/// </summary>
public class PriorityPreemptionTests
{
    private static int[] Prompt(int length, int salt = 0) => [.. Enumerable.Range(0, length).Select(k => 3 + ((k + salt) % 50))];

    /// <summary>Two low-priority requests decoding, then <paramref name="urgentPriority"/> arrives.</summary>
    private static (SchedulerHarness Harness, EngineRequest Early, EngineRequest Late, EngineRequest Urgent) TwoRunningThenUrgent(
        EngineOptions options, int numBlocks, int urgentPriority, int urgentPrompt = 4)
    {
        var harness = new SchedulerHarness(options, numBlocks);
        var early = harness.Submit(Prompt(8, 1), maxTokens: 40);
        var late = harness.Submit(Prompt(8, 2), maxTokens: 40);
        for (var i = 0; i < 3; i++)
        {
            harness.Schedule();
            harness.Complete();
        }

        Assert.Equal(2, harness.Scheduler.Running.Count);
        var urgent = harness.Submit(Prompt(urgentPrompt, 3), maxTokens: 5, urgentPriority);
        harness.Schedule();
        return (harness, early, late, urgent);
    }

    [Fact]
    public void A_full_sequence_budget_gives_way_to_higher_priority()
    {
        var options = new EngineOptions { Policy = SchedulingPolicy.Priority, MaxRunningSequences = 2, BlockSize = 4 };
        var (harness, early, late, urgent) = TwoRunningThenUrgent(options, numBlocks: 64, urgentPriority: 5);

        Assert.Equal([late], harness.Scheduler.Preempted); // the latest arrival of the lowest priority
        Assert.Contains(harness.Scheduler.Scheduled, w => w.Request == urgent);
        Assert.Contains(harness.Scheduler.Scheduled, w => w.Request == early);
        Assert.Equal(RequestStatus.Waiting, late.Status);
        Assert.Equal(0, late.NumComputedTokens); // recompute: its blocks are gone
        harness.Blocks.CheckInvariants();
    }

    [Fact]
    public void Short_blocks_give_way_to_higher_priority()
    {
        // 10 blocks of 4: the two runners hold 3 each (8 prompt + 3 generated tokens), 4 are free; the urgent prompt
        // of 20 tokens needs 5.
        var options = new EngineOptions { Policy = SchedulingPolicy.Priority, MaxRunningSequences = 8, BlockSize = 4 };
        var (harness, early, late, urgent) = TwoRunningThenUrgent(options, numBlocks: 10, urgentPriority: 5, urgentPrompt: 20);

        Assert.Equal([late], harness.Scheduler.Preempted);
        Assert.Contains(harness.Scheduler.Scheduled, w => w.Request == urgent);
        Assert.Equal(RequestStatus.Running, early.Status);
        harness.Blocks.CheckInvariants();
    }

    [Theory]
    [InlineData(SchedulingPolicy.Priority, 0)] // equal priority waits its turn
    [InlineData(SchedulingPolicy.Fcfs, 5)]     // FCFS never preempts for an arrival
    public void No_preemption_without_strictly_higher_priority(SchedulingPolicy policy, int urgentPriority)
    {
        var options = new EngineOptions { Policy = policy, MaxRunningSequences = 2, BlockSize = 4 };
        var (harness, _, _, urgent) = TwoRunningThenUrgent(options, numBlocks: 64, urgentPriority);

        Assert.Empty(harness.Scheduler.Preempted);
        Assert.Equal(RequestStatus.Waiting, urgent.Status);
        Assert.Equal(2, harness.Scheduler.Scheduled.Count);
    }

    [Fact]
    public void Nobody_is_preempted_when_the_victims_blocks_would_not_make_room()
    {
        // 9 blocks of 4: a priority-9 runner holds 6 (24 tokens), a priority-0 one 2; one is free. The priority-5
        // arrival needs 4 blocks: even with the priority-0 runner gone only 3 would be free.
        var options = new EngineOptions { Policy = SchedulingPolicy.Priority, MaxRunningSequences = 8, BlockSize = 4, MaxPrefillTokensPerStep = 0 };
        var harness = new SchedulerHarness(options, numBlocks: 9);
        var high = harness.Submit(Prompt(22, 1), maxTokens: 2, priority: 9);
        var low = harness.Submit(Prompt(6, 2), maxTokens: 20, priority: 0);
        harness.Schedule();
        harness.Complete();
        Assert.Equal(2, harness.Scheduler.Running.Count);
        Assert.Equal(1, harness.Blocks.FreeBlocks);

        var urgent = harness.Submit(Prompt(16, 3), maxTokens: 2, priority: 5);
        harness.Schedule();
        Assert.Empty(harness.Scheduler.Preempted);
        Assert.Equal(RequestStatus.Running, low.Status);
        Assert.Equal(RequestStatus.Waiting, urgent.Status);
        Assert.Equal(RequestStatus.Running, high.Status);
    }

    [Fact]
    public async Task An_urgent_request_overtakes_running_work_and_everyone_keeps_their_solo_tokens()
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, BlockSize = 4, MaxRunningSequences = 2, Policy = SchedulingPolicy.Priority, EventSink = sink,
        });
        var ct = TestContext.Current.CancellationToken;
        var background = new[] { "slow one", "slow two" }.Select(p => new GenerationRequest
        {
            Prompt = p, MaxTokens = 60, IgnoreEos = true, Sampling = new RawInfer.Engine.Sampling.SamplingParams { Temperature = 0.9f, Seed = 11 }, RequestId = p,
        }).ToList();
        var backgroundTasks = background.Select(r => engine.GenerateAsync(r, ct)).ToList();
        for (var i = 0; i < 5; i++)
        {
            await gate.WaitEnteredAsync();
            gate.Release();
        }

        var urgent = new GenerationRequest { Prompt = "now", MaxTokens = 5, IgnoreEos = true, Priority = 10, RequestId = "urgent" };
        var urgentTask = engine.GenerateAsync(urgent, ct);
        gate.Open(runner);
        var results = await Task.WhenAll(backgroundTasks.Append(urgentTask));

        var finished = sink.Events.OfType<RequestFinished>().Select(e => e.Request.RequestId).ToList();
        Assert.Equal("urgent", finished[0]); // it did not wait for a slot to free up
        Assert.Contains(sink.Events.OfType<RequestPreempted>(), e => e.Request.RequestId == "slow two");
        Assert.Equal(1, results[1].Usage.Preemptions);
        Assert.Equal(EngineHarness.Reference(background[0]), results[0].TokenIds);
        Assert.Equal(EngineHarness.Reference(background[1]), results[1].TokenIds);
        Assert.Equal(EngineHarness.Reference(urgent), results[2].TokenIds);
        await EngineHarness.StopAndAuditAsync(engine);
    }
}
