using RawInfer.Engine.Scheduling;

namespace RawInfer.Engine.Tests.Scheduling;

/// <summary>
/// A static batch is as large as the sequence budget and the pool allow, not as the first step's token budget: its
/// prompts are spread over the steps that follow, and nobody joins until its last request ends.
/// </summary>
public class StaticBatchFormationTests
{
    [Theory]
    [InlineData(BatchingMode.Static)]
    [InlineData(BatchingMode.StaticPadded)]
    public void The_batch_takes_in_every_request_it_has_room_for_and_prefills_them_within_the_token_budget(BatchingMode batching)
    {
        var harness = new SchedulerHarness(
            new EngineOptions { MaxBatchedTokens = 8, MaxRunningSequences = 6, BlockSize = 4, Batching = batching }, numBlocks: 64);
        var scheduler = harness.Scheduler;
        var batch = Enumerable.Range(0, 6).Select(i => harness.Submit([.. Enumerable.Range(3 + i, 5)], maxTokens: 3 + i)).ToList();
        var late = harness.Submit([3, 4, 5], maxTokens: 2);

        harness.Schedule();
        Assert.Equal(batch, scheduler.Running.OrderBy(r => r.SequenceId));
        Assert.Equal(8, scheduler.Scheduled.Sum(w => w.NumTokens)); // the first prompt and part of the second
        Assert.Equal(RequestStatus.Waiting, late.Status);

        var steps = 1;
        while (!batch.All(r => r.Status == RequestStatus.Finished))
        {
            Assert.True(scheduler.Scheduled.Sum(w => w.NumTokens) <= 8);
            Assert.Equal(RequestStatus.Waiting, late.Status);
            harness.Complete();
            harness.Schedule();
            steps++;
            Assert.True(steps < 100, "the batch never ended");
        }

        // Decodes first, prompts in the rest of each 8-token step: the last prompt completes at step 6, its request
        // (8 tokens) ends at step 13, and the late request starts in step 14.
        Assert.Contains(late, scheduler.Running);
        Assert.Empty(scheduler.PadRows);
        Assert.Equal(14, steps);
    }
}
