namespace RawInfer.Safety.Limits;

/// <summary>Things a key does that count towards suspension.</summary>
public enum AbuseSignal
{
    PolicyDenial,
    RateLimitRefusal,
    MalformedFrame,
    CancelChurn,
}

/// <summary>When a key is suspended: more than <see cref="Threshold"/> signals inside <see cref="Window"/> → suspended for <see cref="Cooldown"/>.</summary>
public sealed record AbuseOptions
{
    public TimeSpan Window { get; init; } = TimeSpan.FromMinutes(1);

    public int Threshold { get; init; } = 20;

    public TimeSpan Cooldown { get; init; } = TimeSpan.FromMinutes(5);
}

/// <summary>A key's suspension: since when, until when, and the signals that caused it.</summary>
public sealed record Suspension(string KeyId, DateTimeOffset Since, DateTimeOffset Until, IReadOnlyDictionary<AbuseSignal, int> Signals);

/// <summary>
/// Per-key sliding window of abuse signals. When a key's signals inside the window reach the threshold it is
/// suspended for the cooldown (the caller audits the returned <see cref="Suspension"/>); an admin may lift it early.
/// Thread-safe; time comes from the injected <see cref="TimeProvider"/>.
/// </summary>
public sealed class AbuseMonitor
{
    private readonly AbuseOptions _options;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Queue<(DateTimeOffset At, AbuseSignal Signal)>> _windows = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Suspension> _suspended = new(StringComparer.Ordinal);

    public AbuseMonitor(AbuseOptions? options = null, TimeProvider? time = null)
    {
        _options = options ?? new AbuseOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(_options.Threshold, nameof(AbuseOptions.Threshold));
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Counts a signal; returns the new suspension when this signal crossed the threshold, else null.</summary>
    public Suspension? Record(string keyId, AbuseSignal signal)
    {
        ArgumentNullException.ThrowIfNull(keyId);
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            if (ActiveSuspension(keyId, now) is not null)
            {
                return null;
            }

            if (!_windows.TryGetValue(keyId, out var window))
            {
                window = new Queue<(DateTimeOffset, AbuseSignal)>();
                _windows[keyId] = window;
            }

            window.Enqueue((now, signal));
            while (window.Count > 0 && window.Peek().At <= now - _options.Window)
            {
                window.Dequeue();
            }

            if (window.Count < _options.Threshold)
            {
                return null;
            }

            var counts = new Dictionary<AbuseSignal, int>();
            foreach (var (_, s) in window)
            {
                counts[s] = counts.GetValueOrDefault(s) + 1;
            }

            window.Clear();
            var suspension = new Suspension(keyId, now, now + _options.Cooldown, counts);
            _suspended[keyId] = suspension;
            return suspension;
        }
    }

    /// <summary>The key's suspension if one is in force now.</summary>
    public Suspension? GetSuspension(string keyId)
    {
        lock (_lock)
        {
            return ActiveSuspension(keyId, _time.GetUtcNow());
        }
    }

    /// <summary>All suspensions in force (for stats).</summary>
    public IReadOnlyList<Suspension> ActiveSuspensions()
    {
        var now = _time.GetUtcNow();
        lock (_lock)
        {
            var result = new List<Suspension>();
            foreach (var keyId in _suspended.Keys.ToArray())
            {
                if (ActiveSuspension(keyId, now) is { } s)
                {
                    result.Add(s);
                }
            }

            return result;
        }
    }

    /// <summary>Admin: ends a suspension now. Returns whether one was in force.</summary>
    public bool Lift(string keyId)
    {
        lock (_lock)
        {
            var active = ActiveSuspension(keyId, _time.GetUtcNow()) is not null;
            _suspended.Remove(keyId);
            return active;
        }
    }

    private Suspension? ActiveSuspension(string keyId, DateTimeOffset now)
    {
        if (!_suspended.TryGetValue(keyId, out var s))
        {
            return null;
        }

        if (now < s.Until)
        {
            return s;
        }

        _suspended.Remove(keyId);
        return null;
    }
}
