namespace RawInfer.Engine.Tests.Engine;

/// <summary>A request's tokens depend only on its prompt, parameters and seed: alone, in a batch, preempted, chunked.</summary>
public class BatchIndependenceTests
{
    [Fact]
    public async Task Each_request_alone_gives_the_reference_tokens()
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner);
        foreach (var request in EngineHarness.MixedRequests(12, seed: 1))
        {
            var result = await engine.GenerateAsync(request, TestContext.Current.CancellationToken);
            Assert.Equal(EngineHarness.Reference(request), result.TokenIds);
            Assert.Equal(CharTokenizer.Decode(result.TokenIds), result.Text);
        }

        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Theory]
    [InlineData(BatchingMode.Continuous, 512, 2048)]
    [InlineData(BatchingMode.Continuous, 512, 24)]  // long prompts split into chunks, mixed with decodes
    [InlineData(BatchingMode.Continuous, 12, 2048)] // a tiny pool: constant preemption
    [InlineData(BatchingMode.Static, 512, 2048)]
    [InlineData(BatchingMode.Static, 12, 64)]
    [InlineData(BatchingMode.StaticPadded, 512, 2048)]
    [InlineData(BatchingMode.StaticPadded, 12, 64)] // finished rows hold blocks: preemption and dropped pad rows
    public async Task A_batch_of_100_mixed_requests_gives_each_its_solo_tokens(BatchingMode batching, int blocks, int tokenBudget)
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = blocks, BlockSize = 8, MaxBatchedTokens = tokenBudget, WatermarkBlocks = 0, Batching = batching,
        });
        var requests = EngineHarness.MixedRequests(100, seed: 2);
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, TestContext.Current.CancellationToken)));

        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(EngineHarness.Reference(requests[i]), results[i].TokenIds);
            Assert.True(results[i].FinishReason is FinishReason.Stop or FinishReason.Length, results[i].FinishDetail);
        }

        var stats = engine.GetStats();
        Assert.Equal(100, stats.RequestsFinished);
        Assert.True(runner.MaxSequencesInBatch > 1, "requests were batched");
        if (blocks == 12)
        {
            Assert.True(stats.Preemptions > 0, "the tiny pool forced preemption");
        }

        if (tokenBudget == 24 && batching == BatchingMode.Continuous)
        {
            Assert.True(runner.MixedSteps > 0, "decode rows shared steps with prefill chunks");
            Assert.True(runner.MaxTokensInBatch <= 24);
        }

        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Shared_prefixes_hit_the_cache_and_still_give_solo_tokens()
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 256, BlockSize = 4, MaxBatchedTokens = 16 });
        var prefix = "once upon a time there was a little fox who liked ";
        var requests = Enumerable.Range(0, 20).Select(i => new GenerationRequest
        {
            Prompt = prefix + (char)('a' + i), MaxTokens = 10 + i, IgnoreEos = true,
        }).ToList();

        // All at once: later prompts hit blocks an earlier one is still computing (chunked), which must not be read.
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, TestContext.Current.CancellationToken)));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(EngineHarness.Reference(requests[i]), results[i].TokenIds);
        }

        // Then one after another: the finished prompts' blocks are cached and computed.
        var again = await engine.GenerateAsync(requests[3], TestContext.Current.CancellationToken);
        Assert.Equal(results[3].TokenIds, again.TokenIds);
        Assert.True(again.Usage.CachedPromptTokens >= prefix.Length - 4, $"cached {again.Usage.CachedPromptTokens}");
        Assert.True(engine.GetStats().PrefixCacheHitRate > 0);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Streamed_chunks_add_up_to_the_full_result()
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner);
        var request = new GenerationRequest { Prompt = "hello", MaxTokens = 30, IgnoreEos = true, TopLogprobs = 3 };
        var full = await engine.GenerateAsync(request, TestContext.Current.CancellationToken);
        var text = "";
        var ids = new List<int>();
        var chunks = 0;
        await foreach (var chunk in engine.StreamAsync(request, TestContext.Current.CancellationToken))
        {
            text += chunk.Text;
            ids.AddRange(chunk.TokenIds);
            chunks++;
        }

        Assert.Equal(full.Text, text);
        Assert.Equal(full.TokenIds, ids);
        Assert.True(chunks > 1);
        Assert.Equal(30, full.Logprobs!.Count);
        foreach (var position in full.Logprobs)
        {
            Assert.Equal(3, position.Top.Count);
            Assert.Equal(position.Top[0].TokenId, position.Chosen.TokenId); // greedy picks the most likely
            Assert.True(position.Top[0].Logprob >= position.Top[1].Logprob && position.Top[1].Logprob >= position.Top[2].Logprob);
            Assert.True(position.Chosen.Logprob <= 0);
        }

        Assert.Equal(full.TokenIds, full.Logprobs.Select(p => p.Chosen.TokenId));
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Synchronous_generate_matches_the_async_result()
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner);
        var request = new GenerationRequest { Prompt = "abc", MaxTokens = 12, IgnoreEos = true };
        var result = await Task.Run(() => engine.Generate(request, TestContext.Current.CancellationToken), TestContext.Current.CancellationToken);
        Assert.Equal(EngineHarness.Reference(request), result.TokenIds);
        await EngineHarness.StopAndAuditAsync(engine);
    }
}
