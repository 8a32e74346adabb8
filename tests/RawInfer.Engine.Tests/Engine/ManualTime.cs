namespace RawInfer.Engine.Tests.Engine;

/// <summary>A clock the test moves by hand (the engine's <see cref="EngineOptions.TimeProvider"/>).</summary>
internal sealed class ManualTime : TimeProvider
{
    private long _ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks) + 1;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
