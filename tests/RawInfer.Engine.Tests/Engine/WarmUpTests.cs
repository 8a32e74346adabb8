using RawInfer.Cpu.Runner;
using RawInfer.Engine.Runner;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>
/// The engine's warm-up: its rounds (a prefill chunk, a one-row and a four-row decode) run before the first request
/// on well-formed batches within every limit, leave nothing behind (no request, token, step or block counted; no
/// K/V a later request reads: outputs equal the reference), and a failing pass faults the engine and its task.
/// </summary>
public sealed class WarmUpTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Rounds_run_before_the_first_request_and_leave_no_trace()
    {
        var runner = new FakeRunner();
        var shapes = new List<(int Sequences, int Tokens, int MaxBlock)>();
        var options = new EngineOptions { NumKvBlocks = 64, WarmUpRounds = 2 };
        runner.BeforeExecute = batch =>
        {
            batch.Validate(runner.Config, runner.NumBlocks, options.BlockSize, batch.NumLogitRows * runner.Config.VocabSize);
            var maxBlock = 0;
            for (var s = 0; s < batch.NumSequences; s++)
            {
                maxBlock = Math.Max(maxBlock, batch.BlockTable(s)[0]);
            }

            lock (shapes)
            {
                shapes.Add((batch.NumSequences, batch.NumTokens, maxBlock));
            }
        };
        var engine = EngineHarness.Create(runner, options);
        await engine.WarmedUp.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        // per round: a 15-token prefill in block 0, its next token, then that and one token in each of blocks 1..3
        (int, int, int)[] round = [(1, 15, 0), (1, 1, 0), (4, 4, 3)];
        Assert.Equal([.. round, .. round], shapes);
        var stats = engine.GetStats();
        Assert.Equal((0L, 0L, 0L, 0L, 0), (stats.RequestsFinished, stats.PromptTokens, stats.GeneratedTokens, stats.Steps, stats.KvBlocksUsed));

        // the blocks the warm-up wrote hold stale "K/V" that no request may read: every output is the reference
        var requests = EngineHarness.MixedRequests(12, seed: 5);
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, Ct)));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(EngineHarness.Reference(requests[i]), results[i].TokenIds);
        }

        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Theory]
    [InlineData(true, 0)]
    [InlineData(true, 2)]
    [InlineData(false, 1)]
    public async Task The_kv_cache_is_committed_once_on_the_engine_thread_before_any_pass_only_when_asked(bool prefault, int rounds)
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 64, WarmUpRounds = rounds, PrefaultKvCache = prefault });
        await engine.WarmedUp.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(prefault ? 1 : 0, runner.Prefaults);
        if (prefault)
        {
            Assert.Equal((0, "rawinfer-engine"), runner.AtPrefault);
        }

        var request = new GenerationRequest { Prompt = "abc", MaxTokens = 5, IgnoreEos = true };
        Assert.Equal(EngineHarness.Reference(request), (await engine.GenerateAsync(request, Ct)).TokenIds);
        Assert.Equal(prefault ? 1 : 0, runner.Prefaults);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task A_request_submitted_during_the_warm_up_waits_and_is_served_after_it()
    {
        var runner = new FakeRunner();
        using var gate = new EngineHarness.StepGate(runner);
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 64, WarmUpRounds = 1 });
        await gate.WaitEnteredAsync(); // the first warm-up pass is running
        var request = new GenerationRequest { Prompt = "abc", MaxTokens = 5, IgnoreEos = true };
        var pending = engine.GenerateAsync(request, Ct);
        Assert.False(engine.WarmedUp.IsCompleted);
        gate.Open(runner);
        await engine.WarmedUp.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(EngineHarness.Reference(request), (await pending).TokenIds);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Theory]
    [InlineData(1, 1, 1, 8)]   // one-slot blocks, one token and one sequence per step: a one-row decode only
    [InlineData(16, 4, 2, 3)]  // the prefill chunk capped by the token budget, two decode rows
    [InlineData(4, 2048, 100, 2)]
    public async Task Small_limits_shrink_the_rounds_and_every_pass_stays_within_them(int blockSize, int maxTokens, int maxRunning, int blocks)
    {
        var runner = new FakeRunner();
        var options = new EngineOptions
        {
            NumKvBlocks = blocks, BlockSize = blockSize, MaxBatchedTokens = maxTokens, MaxRunningSequences = maxRunning,
            WatermarkBlocks = 0, WarmUpRounds = 1,
        };
        var passes = 0;
        var warming = true; // the warm-up's passes all come before WarmedUp completes, a request's after it
        runner.BeforeExecute = batch =>
        {
            batch.Validate(runner.Config, runner.NumBlocks, options.BlockSize, batch.NumLogitRows * runner.Config.VocabSize);
            if (!Volatile.Read(ref warming))
            {
                return;
            }

            Assert.True(batch.NumTokens <= maxTokens && batch.NumSequences <= maxRunning);
            for (var s = 0; s < batch.NumSequences; s++)
            {
                Assert.InRange(batch.ContextLengths[s], 1, blockSize); // one block per warm-up sequence
            }

            passes++;
        };
        var engine = EngineHarness.Create(runner, options);
        await engine.WarmedUp.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Volatile.Write(ref warming, false);
        Assert.Equal(blockSize == 1 ? 1 : 3, passes);
        var request = new GenerationRequest { Prompt = "ab", MaxTokens = 3, IgnoreEos = true };
        Assert.Equal(EngineHarness.Reference(request), (await engine.GenerateAsync(request, Ct)).TokenIds);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Without_rounds_the_runner_is_untouched_until_a_request()
    {
        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner);
        await engine.WarmedUp.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(0, runner.Executions);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task A_failing_warm_up_pass_faults_the_engine_and_its_task()
    {
        var runner = new FakeRunner { BeforeExecute = _ => throw new InvalidOperationException("device lost") };
        var engine = EngineHarness.Create(runner, new EngineOptions { NumKvBlocks = 64, WarmUpRounds = 3 });
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => engine.WarmedUp.WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal("device lost", e.Message);
        Assert.Same(e, engine.Fault);
        await Assert.ThrowsAsync<InvalidOperationException>(() => engine.GenerateAsync(new GenerationRequest { Prompt = "a", MaxTokens = 1 }, Ct));
        await engine.DisposeAsync();
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(EngineOptions.MaxWarmUpRounds + 1)]
    public void Rounds_out_of_range_are_refused(int rounds)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new EngineOptions { WarmUpRounds = rounds }.Validate());
        Assert.Equal(nameof(EngineOptions.WarmUpRounds), e.ParamName);
    }

    [Fact]
    public async Task On_stories260K_the_warm_up_changes_no_token()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        var requests = new[] { "Once upon a time", "The cat sat", "Lily and Tom went to" }
            .Select(p => new GenerationRequest { Prompt = p, MaxTokens = 40 }).ToList();
        var outputs = new List<IReadOnlyList<int>[]>();
        foreach (var rounds in new[] { 0, 3 })
        {
            using var runner = new CpuModelRunner(model, threads: 1);
            var engine = new InferenceEngine(runner, tokenizer, new EngineOptions { NumKvBlocks = 64, WarmUpRounds = rounds, CheckInvariantsWhenIdle = true });
            await engine.WarmedUp;
            outputs.Add((await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, Ct)))).Select(r => r.TokenIds).ToArray());
            await EngineHarness.StopAndAuditAsync(engine);
        }

        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(outputs[0][i], outputs[1][i]);
        }
    }
}
