using System.Diagnostics.Metrics;
using System.Globalization;
using RawInfer.Engine;

namespace RawInfer.Cli.Commands;

/// <summary>
/// Collects the engine's per-step forward-pass times (<c>rawinfer.step_forward_time</c> on the engine's meter) while
/// one offline bench run is in progress, so the run can report its step-time tail: a step that stalls (a page fault
/// storm, a descheduled worker) is invisible in the request percentiles but plain here. It listens by meter name, so
/// it is meant for the bench, which runs one engine at a time.
/// </summary>
internal sealed class StepTimeRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly List<double> _milliseconds = [];

    public StepTimeRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == InferenceEngine.MeterName && instrument.Name == "rawinfer.step_forward_time")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>((_, seconds, _, _) =>
        {
            lock (_milliseconds)
            {
                _milliseconds.Add(seconds * 1e3);
            }
        });
        _listener.Start();
    }

    /// <summary>"N steps, forward p50 / p99 / max X / Y / Z ms" for what has been recorded so far.</summary>
    public string Summary()
    {
        List<double> values;
        lock (_milliseconds)
        {
            values = [.. _milliseconds];
        }

        var max = values.Count == 0 ? 0 : values.Max();
        return string.Create(CultureInfo.InvariantCulture,
            $"{values.Count} steps, forward p50 / p99 / max {EngineRunSummary.Percentile(values, 0.50):F3} / {EngineRunSummary.Percentile(values, 0.99):F3} / {max:F3} ms");
    }

    public void Dispose() => _listener.Dispose();
}
