namespace RawInfer.Safety.Limits;

/// <summary>Delays for addresses that fail authentication or send malformed frames.</summary>
public sealed record AddressThrottleOptions
{
    /// <summary>Delay after the first failure; each further failure doubles it.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>An address with no failure for this long starts over.</summary>
    public TimeSpan ForgetAfter { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>
/// Per client address: each auth failure or malformed frame closes the connection (the caller does) and makes the
/// address wait before its next attempt, the wait doubling per failure up to a cap. Thread-safe; injected clock.
/// </summary>
public sealed class AddressThrottle
{
    private readonly AddressThrottleOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, (int Failures, DateTimeOffset Last)> _state = new(StringComparer.Ordinal);

    public AddressThrottle(AddressThrottleOptions? options = null, TimeProvider? time = null)
    {
        _options = options ?? new AddressThrottleOptions();
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Counts a failure; returns how long the address must now wait before it is served again.</summary>
    public TimeSpan RecordFailure(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var failures = _state.TryGetValue(address, out var s) && now - s.Last < _options.ForgetAfter ? s.Failures + 1 : 1;
            _state[address] = (failures, now);
            return DelayAfter(failures);
        }
    }

    /// <summary>How much longer a new connection from <paramref name="address"/> must wait (zero when none).</summary>
    public TimeSpan DelayFor(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (!_state.TryGetValue(address, out var s))
            {
                return TimeSpan.Zero;
            }

            if (now - s.Last >= _options.ForgetAfter)
            {
                _state.Remove(address);
                return TimeSpan.Zero;
            }

            var left = s.Last + DelayAfter(s.Failures) - now;
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    /// <summary>A successful authentication clears the address's record.</summary>
    public void RecordSuccess(string address)
    {
        lock (_lock)
        {
            _state.Remove(address);
        }
    }

    private TimeSpan DelayAfter(int failures)
    {
        var ticks = _options.BaseDelay.Ticks * Math.Pow(2, Math.Min(failures - 1, 30));
        return ticks >= _options.MaxDelay.Ticks ? _options.MaxDelay : TimeSpan.FromTicks((long)ticks);
    }
}
