using System.Diagnostics.Metrics;

namespace RawInfer.Engine;

/// <summary>
/// The engine's instruments (System.Diagnostics.Metrics, meter <see cref="MeterName"/>), and the counters behind
/// <see cref="InferenceEngine.GetStats"/>. Written on the engine thread, read from any thread.
/// </summary>
internal sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "RawInfer.Engine";

    private readonly Meter _meter;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _timePerOutputToken;
    private readonly Histogram<double> _queueTime;
    private readonly Counter<long> _promptTokens;
    private readonly Counter<long> _generatedTokens;
    private readonly Counter<long> _preemptions;
    private readonly Counter<long> _finished;
    private readonly Histogram<double> _forwardTime;
    private readonly Histogram<long> _stepTokens;

    private long _preemptionCount;
    private long _finishedCount;
    private long _promptTokenCount;
    private long _generatedTokenCount;
    private long _steps;
    private int _running;
    private int _waiting;
    private int _blocksUsed;
    private long _prefixQueryTokens;
    private long _prefixHitTokens;

    public EngineMetrics(int totalBlocks)
    {
        TotalBlocks = totalBlocks;
        _meter = new Meter(MeterName);
        _timeToFirstToken = _meter.CreateHistogram<double>("rawinfer.time_to_first_token", "s", "Submission to first generated token.");
        _timePerOutputToken = _meter.CreateHistogram<double>("rawinfer.time_per_output_token", "s", "Mean time between generated tokens of a request.");
        _queueTime = _meter.CreateHistogram<double>("rawinfer.queue_time", "s", "Submission to first scheduled step.");
        _promptTokens = _meter.CreateCounter<long>("rawinfer.prompt_tokens", "{token}", "Prompt tokens of finished requests.");
        _generatedTokens = _meter.CreateCounter<long>("rawinfer.generated_tokens", "{token}", "Tokens sampled (rate = tokens/s).");
        _preemptions = _meter.CreateCounter<long>("rawinfer.preemptions", "{preemption}", "Requests preempted to free KV blocks.");
        _finished = _meter.CreateCounter<long>("rawinfer.requests_finished", "{request}", "Requests ended, any reason.");
        _forwardTime = _meter.CreateHistogram<double>("rawinfer.step_forward_time", "s", "One step's forward pass over all its rows (a step that stalls shows here).");
        _stepTokens = _meter.CreateHistogram<long>("rawinfer.step_tokens", "{token}", "Rows of one step's forward pass: prompt-chunk and decode tokens together.");
        _meter.CreateObservableGauge("rawinfer.requests_running", () => Volatile.Read(ref _running), "{request}");
        _meter.CreateObservableGauge("rawinfer.requests_waiting", () => Volatile.Read(ref _waiting), "{request}");
        _meter.CreateObservableGauge("rawinfer.kv_blocks_used", () => Volatile.Read(ref _blocksUsed), "{block}");
        _meter.CreateObservableGauge("rawinfer.prefix_cache_hit_rate", () => PrefixHitRate, "1");
    }

    public int TotalBlocks { get; }

    /// <summary>The meter these instruments belong to (tests tell one engine's from another's by it).</summary>
    internal Meter Meter => _meter;

    public double PrefixHitRate
    {
        get
        {
            var query = Volatile.Read(ref _prefixQueryTokens);
            return query == 0 ? 0 : (double)Volatile.Read(ref _prefixHitTokens) / query;
        }
    }

    /// <summary>
    /// After the forward pass, before any token of the step is committed to a reader: the gauges as scheduled and the
    /// tokens about to be sampled. A reader that has seen a token (or a client that got its frame) thus never reads
    /// stats that lack it, or that show no block holding it.
    /// </summary>
    public void OnSampling(int running, int waiting, int blocksUsed, int sampling)
    {
        Volatile.Write(ref _running, running);
        Volatile.Write(ref _waiting, waiting);
        Volatile.Write(ref _blocksUsed, blocksUsed);
        if (sampling > 0)
        {
            Interlocked.Add(ref _generatedTokenCount, sampling);
            _generatedTokens.Add(sampling);
        }
    }

    /// <summary>End of a step: the gauges after the finished requests freed their blocks.</summary>
    public void OnStep(int running, int waiting, int blocksUsed, long prefixQueryTokens, long prefixHitTokens)
    {
        Volatile.Write(ref _running, running);
        Volatile.Write(ref _waiting, waiting);
        Volatile.Write(ref _blocksUsed, blocksUsed);
        Volatile.Write(ref _prefixQueryTokens, prefixQueryTokens);
        Volatile.Write(ref _prefixHitTokens, prefixHitTokens);
        Interlocked.Increment(ref _steps);
    }

    /// <summary>A forward pass of <paramref name="tokens"/> rows that took <paramref name="elapsed"/>.</summary>
    public void OnForward(int tokens, TimeSpan elapsed)
    {
        _forwardTime.Record(elapsed.TotalSeconds);
        _stepTokens.Record(tokens);
    }

    public void OnPreempted()
    {
        Interlocked.Increment(ref _preemptionCount);
        _preemptions.Add(1);
    }

    public void OnFirstScheduled(TimeSpan queueTime) => _queueTime.Record(queueTime.TotalSeconds);

    /// <summary>Called before the request's final chunk is committed, so a caller holding its result sees it counted.</summary>
    public void OnFinished(RequestUsage usage)
    {
        Interlocked.Increment(ref _finishedCount);
        Interlocked.Add(ref _promptTokenCount, usage.PromptTokens);
        _finished.Add(1);
        _promptTokens.Add(usage.PromptTokens);
        if (usage.TimeToFirstToken is { } ttft)
        {
            _timeToFirstToken.Record(ttft.TotalSeconds);
            if (usage.CompletionTokens > 1)
            {
                _timePerOutputToken.Record((usage.TotalTime - ttft).TotalSeconds / (usage.CompletionTokens - 1));
            }
        }
    }

    public EngineStats Snapshot(TimeSpan uptime) => new(
        Volatile.Read(ref _running),
        Volatile.Read(ref _waiting),
        Volatile.Read(ref _blocksUsed),
        TotalBlocks,
        PrefixHitRate,
        Interlocked.Read(ref _preemptionCount),
        Interlocked.Read(ref _finishedCount),
        Interlocked.Read(ref _promptTokenCount),
        Interlocked.Read(ref _generatedTokenCount),
        Interlocked.Read(ref _steps),
        uptime);

    public void Dispose() => _meter.Dispose();
}
