using System.Collections.Concurrent;
using RawInfer.Safety.Access;

namespace RawInfer.Safety.Limits;

/// <summary>Per-minute budgets; null = unlimited.</summary>
public sealed record RateLimitOptions(int? RequestsPerMinute = null, int? InputTokensPerMinute = null, int? OutputTokensPerMinute = null);

/// <summary>An admitted request's reservation: give it back through <see cref="AdmissionController.Complete"/>.</summary>
public sealed class AdmissionTicket
{
    internal AdmissionTicket(string keyId, int reservedOutputTokens, RefundableTokenBucket? keyOutput, RefundableTokenBucket? globalOutput)
    {
        KeyId = keyId;
        ReservedOutputTokens = reservedOutputTokens;
        KeyOutput = keyOutput;
        GlobalOutput = globalOutput;
    }

    public string KeyId { get; }

    public int ReservedOutputTokens { get; }

    internal RefundableTokenBucket? KeyOutput { get; }

    internal RefundableTokenBucket? GlobalOutput { get; }

    internal int Completed; // 0 or 1, for Interlocked
}

/// <summary>
/// The admission decision: admitted with a ticket, or refused naming the limit (e.g. "key output_tokens/min") with a
/// retry-after (null when the request can never fit that budget).
/// </summary>
public sealed record AdmissionResult(AdmissionTicket? Ticket, string? Limit, TimeSpan? RetryAfter)
{
    public bool IsAdmitted => Ticket is not null;
}

/// <summary>
/// Rate limits at admission: per key (partitioned by the authenticated key id only, from the key's own limits or the
/// defaults) and global, for requests, input tokens and output tokens per minute. A request takes 1 request, its
/// prompt tokens and its max output tokens from the key's buckets and then from the global ones, all or nothing;
/// <see cref="Complete"/> refunds the output tokens it did not use to both.
/// </summary>
/// <remarks>
/// The chain is walked here rather than with <c>PartitionedRateLimiter.CreateChained</c>: when a later limiter in a
/// chained limiter refuses, the earlier leases are disposed, and disposing a token-bucket lease does not give its
/// permits back, so a refused request would still be charged to the key. Taking bucket by bucket and refunding the
/// ones already taken keeps a refusal free.
/// </remarks>
public sealed class AdmissionController
{
    private readonly RateLimitOptions _defaults;
    private readonly TimeProvider _time;
    private readonly Buckets _global;
    private readonly ConcurrentDictionary<string, Buckets> _perKey = new(StringComparer.Ordinal);

    public AdmissionController(RateLimitOptions keyDefaults, RateLimitOptions? global = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(keyDefaults);
        _defaults = keyDefaults;
        _time = time ?? TimeProvider.System;
        _global = new Buckets(global ?? new RateLimitOptions(), _time);
    }

    /// <summary>Tries to admit a request of <paramref name="inputTokens"/> prompt tokens that may generate up to <paramref name="maxOutputTokens"/>.</summary>
    public AdmissionResult TryAdmit(Principal principal, int inputTokens, int maxOutputTokens)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentOutOfRangeException.ThrowIfNegative(inputTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(maxOutputTokens);
        var key = BucketsFor(principal);
        Span<(RefundableTokenBucket? Bucket, long Count, string Name)> steps =
        [
            (key.Requests, 1, "key requests/min"),
            (_global.Requests, 1, "global requests/min"),
            (key.Input, inputTokens, "key input_tokens/min"),
            (_global.Input, inputTokens, "global input_tokens/min"),
            (key.Output, maxOutputTokens, "key output_tokens/min"),
            (_global.Output, maxOutputTokens, "global output_tokens/min"),
        ];
        for (var i = 0; i < steps.Length; i++)
        {
            var (bucket, count, name) = steps[i];
            if (bucket is null || bucket.TryTake(count, out var retryAfter))
            {
                continue;
            }

            for (var j = 0; j < i; j++)
            {
                steps[j].Bucket?.Refund(steps[j].Count);
            }

            return new AdmissionResult(null, name, retryAfter);
        }

        return new AdmissionResult(new AdmissionTicket(principal.KeyId, maxOutputTokens, key.Output, _global.Output), null, null);
    }

    /// <summary>The request ended having generated <paramref name="outputTokensUsed"/>: refunds the rest of its reservation (once).</summary>
    public void Complete(AdmissionTicket ticket, int outputTokensUsed)
    {
        ArgumentNullException.ThrowIfNull(ticket);
        if (Interlocked.Exchange(ref ticket.Completed, 1) != 0)
        {
            return;
        }

        var unused = Math.Max(0, ticket.ReservedOutputTokens - outputTokensUsed);
        ticket.KeyOutput?.Refund(unused);
        ticket.GlobalOutput?.Refund(unused);
    }

    /// <summary>Tokens left now in a key's buckets (stats): requests, input, output; null = unlimited.</summary>
    public (long? Requests, long? Input, long? Output) Remaining(Principal principal)
    {
        ArgumentNullException.ThrowIfNull(principal);
        var b = BucketsFor(principal);
        return (b.Requests?.Available, b.Input?.Available, b.Output?.Available);
    }

    private Buckets BucketsFor(Principal principal)
    {
        var options = new RateLimitOptions(
            principal.Limits.RequestsPerMinute ?? _defaults.RequestsPerMinute,
            principal.Limits.InputTokensPerMinute ?? _defaults.InputTokensPerMinute,
            principal.Limits.OutputTokensPerMinute ?? _defaults.OutputTokensPerMinute);
        var buckets = _perKey.GetOrAdd(principal.KeyId, _ => new Buckets(options, _time));
        if (buckets.Options != options)
        {
            // The key's limits changed (key reload): start it on fresh buckets of the new size.
            buckets = new Buckets(options, _time);
            _perKey[principal.KeyId] = buckets;
        }

        return buckets;
    }

    private sealed class Buckets(RateLimitOptions options, TimeProvider time)
    {
        public RateLimitOptions Options { get; } = options;

        public RefundableTokenBucket? Requests { get; } = Make(options.RequestsPerMinute, time);

        public RefundableTokenBucket? Input { get; } = Make(options.InputTokensPerMinute, time);

        public RefundableTokenBucket? Output { get; } = Make(options.OutputTokensPerMinute, time);

        private static RefundableTokenBucket? Make(int? perMinute, TimeProvider time) => perMinute is { } n ? new RefundableTokenBucket(n, time) : null;
    }
}
