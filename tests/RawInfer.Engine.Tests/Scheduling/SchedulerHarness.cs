using RawInfer.Engine.Output;
using RawInfer.Engine.Sampling;
using RawInfer.Engine.Scheduling;
using RawInfer.Engine.Tests.Engine;
using RawInfer.KvCache;

namespace RawInfer.Engine.Tests.Scheduling;

/// <summary>
/// Drives a <see cref="Scheduler"/> without a model: each step schedules, marks the work computed, appends a token to
/// every sequence that reached its end, and finishes requests at their max tokens, as the engine does.
/// </summary>
internal sealed class SchedulerHarness
{
    private long _nextId;

    public SchedulerHarness(EngineOptions options, int numBlocks, int watermark = 0)
    {
        Options = options with { TimeProvider = new FrozenTime(), AgingPerSecond = 0 };
        Blocks = new BlockManager(numBlocks, options.BlockSize, watermark);
        Scheduler = new Scheduler(Blocks, Options);
    }

    public EngineOptions Options { get; }

    public BlockManager Blocks { get; }

    public Scheduler Scheduler { get; }

    public List<EngineRequest> Finished { get; } = [];

    /// <summary>Queues a request whose prompt is <paramref name="prompt"/> (token ids 3 and up).</summary>
    public EngineRequest Submit(int[] prompt, int maxTokens, int priority = 0)
    {
        var id = ++_nextId;
        var request = new GenerationRequest { PromptTokenIds = prompt, MaxTokens = maxTokens, Priority = priority };
        var engineRequest = new EngineRequest(
            id, new RequestContext($"s{id}", null, null), request, prompt, maxTokens,
            new Sampler(SamplingParams.Greedy, 64), new OutputPipeline(EngineHarness.Tokenizer, prompt[^1], [], []),
            arrivalTimestamp: id); // later submissions arrive later
        Scheduler.AddWaiting(engineRequest);
        return engineRequest;
    }

    /// <summary>Schedules one step (callers inspect <see cref="Scheduler.Scheduled"/>), then completes it.</summary>
    public void Schedule() => Scheduler.Schedule();

    public void Complete()
    {
        Scheduler.OnExecuted();
        foreach (var step in Scheduler.Scheduled)
        {
            var request = step.Request;
            if (!step.NeedsLogits || request.IsPadRow)
            {
                continue;
            }

            request.Tokens[request.NumTokens] = 3 + (request.NumTokens % 50);
            request.NumTokens++;
            if (request.NumGenerated >= request.MaxTokens)
            {
                Scheduler.Remove(request);
                Finished.Add(request);
            }
        }
    }

    /// <summary>A clock that never moves (no aging, deterministic priority order).</summary>
    private sealed class FrozenTime : TimeProvider
    {
        public override long GetTimestamp() => 1;
    }
}
