namespace RawInfer.Engine.Tests.Engine;

/// <summary>
/// The two static baselines: a static batch admits nobody until its last request ends; a compacting one drops a
/// finished request's row at once, a padded one keeps computing it (as a fixed-shape batch does) while still
/// answering the request at once.
/// </summary>
public class StaticBatchingTests
{
    [Theory]
    [InlineData(BatchingMode.Static)]
    [InlineData(BatchingMode.StaticPadded)]
    public async Task A_finished_request_is_answered_at_once_and_only_the_padded_batch_keeps_its_row(BatchingMode batching)
    {
        var runner = new FakeRunner();
        var rows = new List<int>();
        var positions = new List<int[]>();
        using var firstStepEntered = new SemaphoreSlim(0);
        using var firstStepRelease = new SemaphoreSlim(0);
        using var shortAnswered = new ManualResetEventSlim();
        var answeredWhileBatchRan = false;
        runner.BeforeExecute = batch =>
        {
            rows.Add(batch.NumSequences);
            positions.Add([.. Enumerable.Range(0, batch.NumSequences).Select(s => batch.Positions[batch.QueryStart[s + 1] - 1])]);
            if (rows.Count == 1)
            {
                // Hold the first request's step so that the next two wait together and form one batch.
                firstStepEntered.Release();
                firstStepRelease.Wait(TimeSpan.FromSeconds(30));
            }
            else if (rows.Count == 12)
            {
                // The short request ended at step 3; the long one runs until step 41. Its answer must not wait.
                answeredWhileBatchRan = shortAnswered.Wait(TimeSpan.FromSeconds(30));
            }
        };
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 64, BlockSize = 4, Batching = batching });
        var ct = TestContext.Current.CancellationToken;
        var opener = new GenerationRequest { Prompt = "go", MaxTokens = 1, IgnoreEos = true };
        var shortOne = new GenerationRequest { Prompt = "abc", MaxTokens = 2, IgnoreEos = true };
        var longOne = new GenerationRequest { Prompt = "defg", MaxTokens = 40, IgnoreEos = true };
        var opening = engine.GenerateAsync(opener, ct);
        Assert.True(await firstStepEntered.WaitAsync(TimeSpan.FromSeconds(30), ct));
        var shortTask = engine.GenerateAsync(shortOne, ct);
        var longTask = engine.GenerateAsync(longOne, ct);
        await Task.Delay(50, ct); // both reach the waiting queue before the engine schedules again
        firstStepRelease.Release();

        var shortResult = await shortTask;
        shortAnswered.Set();
        var longResult = await longTask;
        Assert.Equal(EngineHarness.Reference(opener), (await opening).TokenIds);
        Assert.Equal(EngineHarness.Reference(shortOne), shortResult.TokenIds);
        Assert.Equal(EngineHarness.Reference(longOne), longResult.TokenIds);
        Assert.True(answeredWhileBatchRan, "the short request was answered only when the batch ended");

        // Step 1: the opener alone. Step 2: both prompts. Steps 3..41: the long request's decodes.
        Assert.Equal(41, rows.Count);
        Assert.Equal(1, rows[0]);
        Assert.Equal(2, rows[1]);
        if (batching == BatchingMode.StaticPadded)
        {
            // The short request's row stays to the end, computing its last position (prompt + 2 tokens - 1) again.
            Assert.All(rows.Skip(1), n => Assert.Equal(2, n));
            var last = shortResult.Usage.PromptTokens + 1;
            Assert.All(positions.Skip(3), p => Assert.Equal(last, p[1]));
        }
        else
        {
            Assert.All(rows.Skip(3), n => Assert.Equal(1, n));
        }

        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task A_padded_batch_on_a_tiny_pool_drops_rows_it_cannot_hold_and_admits_the_next_batch_when_it_ends()
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 10, BlockSize = 4, WatermarkBlocks = 0, MaxRunningSequences = 4, Batching = BatchingMode.StaticPadded,
        });
        var requests = EngineHarness.MixedRequests(24, seed: 9, maxPrompt: 12, maxOutput: 20);
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, TestContext.Current.CancellationToken)));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.True(results[i].FinishReason is FinishReason.Stop or FinishReason.Length, results[i].FinishDetail);
            Assert.Equal(EngineHarness.Reference(requests[i]), results[i].TokenIds);
        }

        Assert.True(runner.MaxSequencesInBatch is > 1 and <= 4, $"batches of {runner.MaxSequencesInBatch}");
        await EngineHarness.StopAndAuditAsync(engine);
    }
}
