using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Engine.Runner;
using RawInfer.Engine.Sampling;
using RawInfer.Gpu.Runner;
using RawInfer.Models.Gguf;
using RawInfer.Tests;
using RawInfer.Tokenizers;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// Whole greedy generations through the engine, CUDA runner against CPU runner on the same F16 stories260K
/// weights: the same tokens (GPU only; skipped without a device).
/// </summary>
public sealed class CudaEngineGenerationTests(GpuRunnerFixture fixture) : IClassFixture<GpuRunnerFixture>
{
    [Fact]
    public async Task GreedyGenerationGivesTheCpuBackendsTokens()
    {
        fixture.RequireDevice();
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 200, Sampling = SamplingParams.Greedy };
        var cpu = await Generate(cuda: false, [request]);
        var gpu = await Generate(cuda: true, [request]);
        Assert.True(cpu[0].TokenIds.Count > 50);
        Assert.Equal(cpu[0].TokenIds, gpu[0].TokenIds);
        Assert.Equal(cpu[0].Text, gpu[0].Text);
    }

    [Fact]
    public async Task ConcurrentGreedyGenerationsGiveTheCpuBackendsTokens()
    {
        fixture.RequireDevice();
        string[] prompts = ["Once upon a time", "Lily and Tom", "The cat", "One day, a big dog", "Sam had a red ball", "The sun was", "Mom said", "A little bird"];
        var requests = prompts.Select((p, i) => new GenerationRequest
        {
            Prompt = p, MaxTokens = 60 + (10 * i), Sampling = SamplingParams.Greedy, RequestId = $"r{i}",
        }).ToArray();
        var cpu = await Generate(cuda: false, requests);
        var gpu = await Generate(cuda: true, requests);
        for (var i = 0; i < requests.Length; i++)
        {
            Assert.Equal(cpu[i].TokenIds, gpu[i].TokenIds);
        }
    }

    private async Task<GenerationResult[]> Generate(bool cuda, GenerationRequest[] requests)
    {
        using var model = GgufLlamaLoader.Load(fixture.Stories16Path);
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        var options = new EngineOptions { MaxRunningSequences = 8, MaxBatchedTokens = 256, NumKvBlocks = 512 };
        using IModelRunner runner = cuda
            ? new CudaModelRunner(model, new CudaRunnerOptions { MaxBatchedTokens = 256, MaxSequences = 8 })
            : new CpuModelRunner(model, threads: 2);
        await using var engine = new InferenceEngine(runner, tokenizer, options);
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, TestContext.Current.CancellationToken)));
        return results;
    }
}
