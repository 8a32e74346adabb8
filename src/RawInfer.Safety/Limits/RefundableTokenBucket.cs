using System.Threading.RateLimiting;

namespace RawInfer.Safety.Limits;

/// <summary>
/// A token bucket that refills continuously (capacity per minute, from a <see cref="TimeProvider"/>, so tests step the
/// clock) and can take tokens back. Why not <see cref="TokenBucketRateLimiter"/>: output tokens are reserved at
/// admission (the request's max tokens) and the unused part must be returned when it finishes, and the built-in
/// bucket has no way to give permits back (disposing a lease does not refill it) and replenishes on a timer or a
/// manual tick rather than from an injectable clock. Here <see cref="Refund"/> adds tokens back up to the capacity.
/// Acquisition never queues: a refusal carries <see cref="MetadataName.RetryAfter"/> — when enough tokens will have
/// refilled — or none when the request is larger than the whole bucket.
/// </summary>
public sealed class RefundableTokenBucket : RateLimiter
{
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly double _perSecond;
    private double _tokens;
    private DateTimeOffset _last;
    private long _successful;
    private long _failed;

    /// <param name="capacity">Bucket size, which is also what refills per minute.</param>
    /// <param name="time">Clock.</param>
    public RefundableTokenBucket(long capacity, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentNullException.ThrowIfNull(time);
        Capacity = capacity;
        _time = time;
        _perSecond = capacity / 60.0;
        _tokens = capacity;
        _last = time.GetUtcNow();
    }

    public long Capacity { get; }

    /// <summary>Tokens available now (whole tokens).</summary>
    public long Available
    {
        get
        {
            lock (_lock)
            {
                Refill();
                return (long)_tokens;
            }
        }
    }

    public override TimeSpan? IdleDuration => null;

    /// <summary>Takes <paramref name="count"/> tokens if all are there; otherwise takes none and says when to retry (null: never fits).</summary>
    public bool TryTake(long count, out TimeSpan? retryAfter)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (_lock)
        {
            Refill();
            if (count <= _tokens)
            {
                _tokens -= count;
                _successful++;
                retryAfter = null;
                return true;
            }

            _failed++;
            retryAfter = count > Capacity ? null : TimeSpan.FromSeconds(Math.Ceiling((count - _tokens) / _perSecond * 1000) / 1000);
            return false;
        }
    }

    /// <summary>Returns tokens taken earlier and not used (never above the capacity).</summary>
    public void Refund(long count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        lock (_lock)
        {
            Refill();
            _tokens = Math.Min(Capacity, _tokens + count);
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_lock)
        {
            Refill();
            return new RateLimiterStatistics
            {
                CurrentAvailablePermits = (long)_tokens,
                CurrentQueuedCount = 0,
                TotalSuccessfulLeases = _successful,
                TotalFailedLeases = _failed,
            };
        }
    }

    protected override RateLimitLease AttemptAcquireCore(int permitCount) =>
        TryTake(permitCount, out var retryAfter) ? BucketLease.Granted : new BucketLease(false, retryAfter);

    protected override ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken) =>
        ValueTask.FromResult(AttemptAcquireCore(permitCount));

    private void Refill()
    {
        var now = _time.GetUtcNow();
        var elapsed = (now - _last).TotalSeconds;
        if (elapsed > 0)
        {
            _tokens = Math.Min(Capacity, _tokens + (elapsed * _perSecond));
            _last = now;
        }
    }

    private sealed class BucketLease(bool acquired, TimeSpan? retryAfter) : RateLimitLease
    {
        public static readonly BucketLease Granted = new(true, null);

        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => retryAfter is null ? [] : [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            if (retryAfter is { } r && metadataName == MetadataName.RetryAfter.Name)
            {
                metadata = r;
                return true;
            }

            metadata = null;
            return false;
        }
    }
}
