using RawInfer.Cpu.Runner;
using RawInfer.Engine.Sampling;
using RawInfer.KvCache;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>The engine on the real stories260K checkpoint and the CPU runner's batched, paged forward pass.</summary>
public class StoriesEngineTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    [InlineData(KvCacheType.BF16)]
    public async Task Greedy_output_matches_llama2c_and_is_the_same_alone_in_a_batch_and_preempted(KvCacheType kvCacheType)
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        var requests = MixedRequests();

        var alone = new List<GenerationResult>();
        using (var runner = new CpuModelRunner(model, threads: 1, kvCacheType))
        {
            var engine = new InferenceEngine(runner, tokenizer, new EngineOptions { NumKvBlocks = 256, CheckInvariantsWhenIdle = true });
            foreach (var request in requests)
            {
                alone.Add(await engine.GenerateAsync(request, Ct));
            }

            await EngineHarness.StopAndAuditAsync(engine);
        }

        // llama2.c's reference continuation of "Once upon a time" (README of the shared models); a 16-bit cache
        // keeps it too (its logits move by a few thousandths of the largest, see CpuModelRunnerTests)
        Assert.StartsWith(", there was a little girl named Lily. She loved to play outside in the park.", alone[0].Text, StringComparison.Ordinal);

        // Continuous batching (whole prompts, chunked prompts, a tiny pool), then a padded static batch whose finished
        // rows keep recomputing their last position beside the live ones.
        foreach (var (blocks, budget, batching) in new[]
        {
            (256, 2048, BatchingMode.Continuous), (256, 40, BatchingMode.Continuous), (24, 2048, BatchingMode.Continuous),
            (256, 2048, BatchingMode.StaticPadded),
        })
        {
            using var runner = new CpuModelRunner(model, threads: 0, kvCacheType);
            var engine = new InferenceEngine(runner, tokenizer, new EngineOptions
            {
                NumKvBlocks = blocks, MaxBatchedTokens = budget, WatermarkBlocks = 0, CheckInvariantsWhenIdle = true, Batching = batching,
            });
            var batched = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, Ct)));
            var stats = engine.GetStats();
            await EngineHarness.StopAndAuditAsync(engine);
            for (var i = 0; i < requests.Count; i++)
            {
                Assert.True(alone[i].TokenIds.SequenceEqual(batched[i].TokenIds), $"request {i} differs with {blocks} blocks, budget {budget}, {batching}");
                Assert.Equal(alone[i].Text, batched[i].Text);
            }

            if (blocks == 24)
            {
                Assert.True(stats.Preemptions > 0, "the tiny pool forced preemption");
            }
        }
    }

    [Fact]
    public void A_pool_the_runner_refuses_fails_the_engine_before_the_block_tables_are_sized_by_it()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        using var runner = new CpuModelRunner(model, threads: 1);
        var blocks = PagedKvStorage.MaxBlocks(16, model.Config.KvDim) + 1; // block tables for these would take ~0.5 GB
        var before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<NotSupportedException>(() => new InferenceEngine(runner, tokenizer, new EngineOptions { NumKvBlocks = blocks }));
        Assert.Contains($"a KV cache of {blocks} blocks", e.Message, StringComparison.Ordinal);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated for a pool that was refused");
    }

    [Fact]
    public async Task A_16_bit_cache_fits_twice_the_blocks_in_the_same_byte_budget()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        var totals = new Dictionary<KvCacheType, int>();
        foreach (var type in new[] { KvCacheType.F32, KvCacheType.F16, KvCacheType.BF16 })
        {
            using var runner = new CpuModelRunner(model, threads: 1, type);
            Assert.Equal(2L * model.Config.NumLayers * model.Config.KvDim * type.ElementBytes(), runner.KvBytesPerToken);
            var engine = new InferenceEngine(runner, tokenizer, new EngineOptions { KvCacheBytes = 1 << 20, CheckInvariantsWhenIdle = true });
            var result = await engine.GenerateAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 8 }, Ct);
            Assert.Equal(8, result.TokenIds.Count);
            totals[type] = engine.GetStats().KvBlocksTotal;
            await EngineHarness.StopAndAuditAsync(engine);
        }

        Assert.Equal(2 * totals[KvCacheType.F32], totals[KvCacheType.F16]);
        Assert.Equal(2 * totals[KvCacheType.F32], totals[KvCacheType.BF16]);
    }

    [Fact]
    public async Task A_denied_phrase_from_the_model_is_never_delivered()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        using var runner = new CpuModelRunner(model, threads: 1);
        var engine = new InferenceEngine(runner, tokenizer, new EngineOptions
        {
            NumKvBlocks = 64, CheckInvariantsWhenIdle = true, OutputGuards = [_ => new SafetyHookTests.DenyPhraseGuard("red ball")],
        });
        var streamed = "";
        TokenChunk? last = null;
        await foreach (var chunk in engine.StreamAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 200 }, Ct))
        {
            streamed += chunk.Text;
            last = chunk;
        }

        await EngineHarness.StopAndAuditAsync(engine);
        Assert.Equal(FinishReason.DeniedByPolicy, last!.FinishReason);
        Assert.DoesNotContain("red", streamed, StringComparison.Ordinal);
        Assert.EndsWith("she saw a big,", streamed.TrimEnd(), StringComparison.Ordinal);
    }

    /// <summary>Greedy and seeded requests with different prompts and lengths (index 0: the llama2.c reference prompt).</summary>
    private static List<GenerationRequest> MixedRequests()
    {
        string[] prompts = ["Once upon a time", "Tom had a dog", "The sun was", "Lily and Ben went to the park. They saw", "One day", "A cat"];
        var requests = new List<GenerationRequest> { new() { Prompt = prompts[0], MaxTokens = 40 } };
        for (var i = 1; i < 100; i++)
        {
            requests.Add(new GenerationRequest
            {
                Prompt = prompts[i % prompts.Length],
                MaxTokens = 8 + (i * 7 % 40),
                Sampling = i % 2 == 0 ? SamplingParams.Greedy : new SamplingParams { Temperature = 0.8f, TopP = 0.9f, Seed = (ulong)i },
            });
        }

        return requests;
    }
}
