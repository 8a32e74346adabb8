using System.Diagnostics.Metrics;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>
/// The engine's System.Diagnostics.Metrics instruments report what it did: one forward-pass time and one row count
/// per step, the counters equal to the stats snapshot, a TTFT, TPOT and queue time per request, and the gauges back
/// to zero once it is idle. A clock moved by hand makes every pass take exactly 5 ms.
/// </summary>
public sealed class MetricsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Every_instrument_reports_what_the_engine_did()
    {
        var time = new ManualTime();
        var runner = new FakeRunner();
        long rows = 0, passes = 0;
        runner.BeforeExecute = batch =>
        {
            rows += batch.NumTokens;
            passes++;
            time.Advance(TimeSpan.FromMilliseconds(5));
        };
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 12, BlockSize = 8, MaxBatchedTokens = 64, WatermarkBlocks = 0, TimeProvider = time,
        });
        using var recorder = new Recorder(engine.Meter);
        var requests = EngineHarness.MixedRequests(40, seed: 3);
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, Ct)));
        for (var i = 0; i < requests.Count; i++)
        {
            Assert.Equal(EngineHarness.Reference(requests[i]), results[i].TokenIds);
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (engine.GetStats() is { RunningRequests: > 0 } or { WaitingRequests: > 0 } or { KvBlocksUsed: > 0 })
        {
            Assert.True(DateTime.UtcNow < deadline, "the engine did not go idle");
            await Task.Delay(10, Ct);
        }

        var stats = engine.GetStats();
        Assert.True(stats.Preemptions > 0, "the tiny pool forced preemption");

        var forward = recorder.Values("rawinfer.step_forward_time");
        Assert.Equal(passes, forward.Count);
        Assert.All(forward, seconds => Assert.Equal(0.005, seconds, 1e-12));
        var stepTokens = recorder.Values("rawinfer.step_tokens");
        Assert.Equal(passes, stepTokens.Count);
        Assert.Equal(rows, stepTokens.Sum());
        Assert.Equal(stats.Steps, passes);

        Assert.Equal(stats.GeneratedTokens, recorder.Values("rawinfer.generated_tokens").Sum());
        Assert.Equal(stats.PromptTokens, recorder.Values("rawinfer.prompt_tokens").Sum());
        Assert.Equal(requests.Count, recorder.Values("rawinfer.requests_finished").Sum());
        Assert.Equal(stats.Preemptions, recorder.Values("rawinfer.preemptions").Sum());

        // a request whose first sample is its end of sequence has a first token (and a TTFT) but no output
        var ttft = recorder.Values("rawinfer.time_to_first_token");
        Assert.Equal(results.Select(r => r.Usage.TimeToFirstToken?.TotalSeconds).OfType<double>().Order(), ttft.Order());
        Assert.All(ttft, seconds => Assert.True(seconds >= 0.005, $"a first token took {seconds} s, less than one pass"));
        Assert.Equal(
            results.Count(r => r.Usage.TimeToFirstToken is not null && r.Usage.CompletionTokens > 1),
            recorder.Values("rawinfer.time_per_output_token").Count);
        Assert.Equal(results.Select(r => r.Usage.QueueTime.TotalSeconds).Order(), recorder.Values("rawinfer.queue_time").Order());

        recorder.Observe();
        Assert.Equal([0.0], recorder.Values("rawinfer.requests_running"));
        Assert.Equal([0.0], recorder.Values("rawinfer.requests_waiting"));
        Assert.Equal([0.0], recorder.Values("rawinfer.kv_blocks_used"));
        Assert.Equal([stats.PrefixCacheHitRate], recorder.Values("rawinfer.prefix_cache_hit_rate"));
        await EngineHarness.StopAndAuditAsync(engine);
    }

    /// <summary>Every measurement of one meter's instruments, by instrument name.</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly Dictionary<string, List<double>> _values = [];

        public Recorder(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, meter))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((instrument, value, _, _) => Add(instrument.Name, value));
            _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => Add(instrument.Name, value));
            _listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => Add(instrument.Name, value));
            _listener.Start();
        }

        /// <summary>Reads the observable gauges once.</summary>
        public void Observe() => _listener.RecordObservableInstruments();

        public List<double> Values(string name)
        {
            lock (_values)
            {
                return _values.TryGetValue(name, out var list) ? [.. list] : [];
            }
        }

        public void Dispose() => _listener.Dispose();

        private void Add(string name, double value)
        {
            lock (_values)
            {
                if (!_values.TryGetValue(name, out var list))
                {
                    _values[name] = list = [];
                }

                list.Add(value);
            }
        }
    }
}
