using System.Collections.Concurrent;
using RawInfer.Engine.Sampling;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>Builds engines on the fake model and audits the allocator once they stop.</summary>
internal static class EngineHarness
{
    public static readonly CharTokenizer Tokenizer = new();

    public static InferenceEngine Create(FakeRunner runner, EngineOptions? options = null) =>
        new(runner, Tokenizer, (options ?? new EngineOptions { NumKvBlocks = 512 }) with { CheckInvariantsWhenIdle = true });

    /// <summary>Drains the engine, then checks that it never faulted, the allocator is sound and every block is free.</summary>
    public static async Task StopAndAuditAsync(InferenceEngine engine)
    {
        await engine.DisposeAsync();
        Assert.Null(engine.Fault);
        engine.Blocks.CheckInvariants();
        Assert.Equal(engine.Blocks.TotalBlocks, engine.Blocks.FreeBlocks);
        Assert.Equal(0, engine.Blocks.NumSequences);
    }

    /// <summary>What the fake model generates for the request on its own, computed without the engine.</summary>
    public static int[] Reference(GenerationRequest request, int vocabSize = 64, int maxSeqLen = 256)
    {
        var history = new List<int>(request.PromptTokenIds ?? Tokenizer.Encode(request.Prompt!, request.AddBos, false));
        var promptLength = history.Count;
        var sampler = new Sampler(request.Sampling, vocabSize);
        var logits = new float[vocabSize];
        var output = new List<int>();
        var maxTokens = Math.Min(request.MaxTokens, maxSeqLen + 1 - promptLength);
        for (var i = 0; i < maxTokens; i++)
        {
            FakeRunner.ReferenceLogits(history.ToArray(), logits);
            var token = sampler.SampleAt(logits, history.ToArray(), promptLength, i);
            if ((token == Tokenizer.EosId && !request.IgnoreEos) || request.StopTokenIds.Contains(token))
            {
                break;
            }

            history.Add(token);
            output.Add(token);
        }

        return [.. output];
    }

    /// <summary>100 requests of mixed prompt and output lengths, greedy and seeded, some with penalties.</summary>
    public static List<GenerationRequest> MixedRequests(int count, int seed, int maxPrompt = 60, int maxOutput = 40)
    {
        var random = new Random(seed);
        var requests = new List<GenerationRequest>();
        for (var i = 0; i < count; i++)
        {
            var prompt = new char[random.Next(0, maxPrompt)];
            for (var c = 0; c < prompt.Length; c++)
            {
                prompt[c] = CharTokenizer.Alphabet[random.Next(CharTokenizer.Alphabet.Length)];
            }

            var sampling = (i % 3) switch
            {
                0 => SamplingParams.Greedy,
                1 => new SamplingParams { Temperature = 0.9f, TopP = 0.9f, Seed = (ulong)(1000 + i) },
                _ => new SamplingParams { Temperature = 1.1f, TopK = 20, PresencePenalty = 0.5f, FrequencyPenalty = 0.3f, Seed = (ulong)i },
            };
            requests.Add(new GenerationRequest
            {
                Prompt = new string(prompt),
                MaxTokens = random.Next(1, maxOutput),
                Sampling = sampling,
                IgnoreEos = i % 2 == 0,
                RequestId = $"r{i}",
            });
        }

        return requests;
    }

    /// <summary>Makes the runner stop before each forward pass until the test lets it go.</summary>
    public sealed class StepGate : IDisposable
    {
        private readonly SemaphoreSlim _entered = new(0);
        private readonly SemaphoreSlim _release = new(0);

        public StepGate(FakeRunner runner)
        {
            runner.BeforeExecute = _ =>
            {
                _entered.Release();
                _release.Wait(TimeSpan.FromSeconds(30));
            };
        }

        /// <summary>Waits until the engine is inside a forward pass (blocked).</summary>
        public Task WaitEnteredAsync() => _entered.WaitAsync(TimeSpan.FromSeconds(30)).ContinueWith(t => Assert.True(t.Result), TaskScheduler.Default);

        public void Release(int steps = 1) => _release.Release(steps);

        public void Open(FakeRunner runner)
        {
            runner.BeforeExecute = null;
            _release.Release(1000);
        }

        public void Dispose()
        {
            _entered.Dispose();
            _release.Dispose();
        }
    }

    /// <summary>Collects events (thread-safe, never blocks).</summary>
    public sealed class RecordingSink : IEngineEventSink
    {
        public ConcurrentQueue<EngineEvent> Events { get; } = new();

        public void OnEvent(EngineEvent engineEvent) => Events.Enqueue(engineEvent);
    }
}
