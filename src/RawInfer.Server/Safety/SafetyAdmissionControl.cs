using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using RawInfer.Engine;
using RawInfer.Protocol;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.DenyList;
using RawInfer.Safety.Limits;

namespace RawInfer.Server.Safety;

/// <summary>
/// The server's admission check, in order: the key's suspension (abuse cooldown) → the deny-list on the prompt at
/// the edge → the per-key and global rate limits (one request, its prompt tokens, and its max tokens reserved as
/// output). Each refusal is queued to the audit log (which check, why) and counted as an abuse signal; a signal
/// that crosses the threshold suspends the key, also audited. <see cref="Complete"/> refunds the output tokens a
/// request did not use. Thread-safe; never waits on I/O.
/// </summary>
public sealed class SafetyAdmissionControl : IAdmissionControl
{
    private readonly AdmissionController _limits;
    private readonly AbuseMonitor _abuse;
    private readonly Func<DenyListPolicy> _policy;
    private readonly AuditLog _log;
    private readonly Func<IReadOnlyList<int>, string>? _decodeTokens;
    private readonly Func<string?, string?>? _addressOfRequest;
    private readonly Action<string, long>? _recorded;
    private readonly TimeProvider _time;

    // Keyed by the request instance: a client may reuse a request id once it has its final frame.
    private readonly ConcurrentDictionary<GenerationRequest, AdmissionTicket> _tickets = new(ReferenceEqualityComparer.Instance);

    /// <param name="limits">Rate limits (per key and global).</param>
    /// <param name="abuse">Suspensions and the signals that lead to them.</param>
    /// <param name="policy">The current deny-list (a function, so a reload applies to the next request).</param>
    /// <param name="log">Where refusals are recorded.</param>
    /// <param name="decodeTokens">Text of a prompt given as token ids, for the deny-list; null skips such prompts here (the engine's request guard still checks them).</param>
    /// <param name="addressOfRequest">Client address of a request id, for the records.</param>
    /// <param name="recorded">Told (request id, sequence) for every record queued about a request: the durability barrier waits on it.</param>
    /// <param name="time">Clock for retry-after of suspensions.</param>
    public SafetyAdmissionControl(
        AdmissionController limits, AbuseMonitor abuse, Func<DenyListPolicy> policy, AuditLog log,
        Func<IReadOnlyList<int>, string>? decodeTokens = null, Func<string?, string?>? addressOfRequest = null,
        Action<string, long>? recorded = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(abuse);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(log);
        _limits = limits;
        _abuse = abuse;
        _policy = policy;
        _log = log;
        _decodeTokens = decodeTokens;
        _addressOfRequest = addressOfRequest;
        _recorded = recorded;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Admitted requests whose <see cref="Complete"/> has not come yet.</summary>
    public int OpenReservations => _tickets.Count;

    public AdmissionDecision TryAdmit(Principal principal, GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(request);
        var keyId = principal.KeyId;

        // suspension: the key crossed the abuse threshold and is cooling down
        if (_abuse.GetSuspension(keyId) is { } suspension)
        {
            var left = suspension.Until - _time.GetUtcNow();
            var until = suspension.Until.ToString("O", CultureInfo.InvariantCulture);
            Record(request, keyId, AuditEventType.RequestRefused, ("check", "suspension"), ("reason", "key suspended until " + until));
            return AdmissionDecision.Refuse(ErrorCode.RateLimited,
                $"key {keyId} is suspended until {until} after repeated refusals", left > TimeSpan.Zero ? left : TimeSpan.Zero);
        }

        // deny-list at the edge: the prompt as submitted (the engine's guard checks it again after tokenization)
        var text = request.Prompt ?? (request.PromptTokenIds is { } ids && _decodeTokens is { } decode ? decode(ids) : null);
        if (text is not null && _policy().Check(text, keyId) is { } match)
        {
            // The phrase itself stays out of the record and the message: only where it matched.
            Record(request, keyId, AuditEventType.PolicyDenied,
                ("check", "deny-list"), ("stage", "edge"), ("normalized_start", match.NormalizedStart.ToString(CultureInfo.InvariantCulture)));
            Signal(request, keyId, AbuseSignal.PolicyDenial);
            return AdmissionDecision.Refuse(ErrorCode.DeniedByPolicy, "the prompt matched the deny-list");
        }

        // rate limits: 1 request, the prompt tokens, and max tokens reserved as output
        var inputTokens = request.PromptTokenIds?.Count ?? EstimateTokens(request.Prompt);
        var result = _limits.TryAdmit(principal, inputTokens, request.MaxTokens);
        if (result.Ticket is not { } ticket)
        {
            var retryMs = result.RetryAfter is { } r ? ((long)Math.Ceiling(r.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) : "never";
            Record(request, keyId, AuditEventType.RateLimited,
                ("check", "rate-limit"), ("limit", result.Limit ?? "?"), ("retry_after_ms", retryMs),
                ("input_tokens", inputTokens.ToString(CultureInfo.InvariantCulture)),
                ("max_tokens", request.MaxTokens.ToString(CultureInfo.InvariantCulture)));
            Signal(request, keyId, AbuseSignal.RateLimitRefusal);
            var message = result.RetryAfter is { } after
                ? string.Create(CultureInfo.InvariantCulture, $"{result.Limit} is spent; retry after {after.TotalSeconds:0.###} s")
                : string.Create(CultureInfo.InvariantCulture,
                    $"the request ({inputTokens} prompt tokens, {request.MaxTokens} max tokens) is larger than the whole {result.Limit} budget and can never be admitted");
            return AdmissionDecision.Refuse(ErrorCode.RateLimited, message, result.RetryAfter);
        }

        if (!_tickets.TryAdd(request, ticket))
        {
            // The same request object admitted twice: the server's bug, but the reservation must not leak.
            _limits.Complete(ticket, 0);
        }

        return AdmissionDecision.Allow;
    }

    public void Complete(Principal principal, GenerationRequest request, RequestUsage? usage, int deliveredTokens = 0)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_tickets.TryRemove(request, out var ticket))
        {
            // Charged what the engine reports, or, for a request that ended without a report (cancelled mid-stream),
            // what reached the client: streaming and then cancelling must not make output free.
            _limits.Complete(ticket, Math.Max(usage?.CompletionTokens ?? 0, deliveredTokens));
        }
    }

    /// <summary>A client cancel counts toward the key's cancel-churn signal; crossing the threshold suspends the key.</summary>
    public void ClientCancelled(Principal principal, GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentNullException.ThrowIfNull(request);
        Signal(request, principal.KeyId, AbuseSignal.CancelChurn);
    }

    /// <summary>A prompt not yet tokenized: about four UTF-8 bytes per token, at least one.</summary>
    internal static int EstimateTokens(string? text) =>
        text is null ? 1 : Math.Max(1, (int)Math.Min(int.MaxValue, (Encoding.UTF8.GetByteCount(text) + 3L) / 4));

    private void Signal(GenerationRequest request, string keyId, AbuseSignal signal)
    {
        if (_abuse.Record(keyId, signal) is not { } suspension)
        {
            return;
        }

        var counts = new StringBuilder();
        foreach (var (kind, count) in suspension.Signals)
        {
            counts.Append(counts.Length == 0 ? "" : ",").Append(kind).Append('=').Append(count.ToString(CultureInfo.InvariantCulture));
        }

        Record(request, keyId, AuditEventType.KeySuspended,
            ("since", suspension.Since.ToString("O", CultureInfo.InvariantCulture)),
            ("until", suspension.Until.ToString("O", CultureInfo.InvariantCulture)),
            ("signals", counts.ToString()));
    }

    private void Record(GenerationRequest request, string keyId, AuditEventType type, params (string Name, string Value)[] fields)
    {
        var list = new KeyValuePair<string, string>[fields.Length];
        for (var i = 0; i < fields.Length; i++)
        {
            list[i] = new(fields[i].Name, fields[i].Value);
        }

        var requestId = request.RequestId;
        long sequence;
        try
        {
            sequence = _log.Enqueue(new AuditEvent(type, keyId, _addressOfRequest?.Invoke(requestId), requestId, list));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The durability wait of this request fails instead, so its refusal is not sent without its record.
            sequence = long.MaxValue;
        }

        if (requestId is not null)
        {
            _recorded?.Invoke(requestId, sequence);
        }
    }
}
