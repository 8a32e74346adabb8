using System.Globalization;
using RawInfer.Engine;

namespace RawInfer.Safety.Audit;

/// <summary>
/// The engine's event hook writing into an <see cref="AuditLog"/>. <see cref="OnEvent"/> only queues the record (a
/// short lock, no I/O), so the engine thread never waits on the disk; the server awaits
/// <see cref="LastSequenceOf"/>'s durability before sending a request's final frame.
/// </summary>
public sealed class AuditEventSink : IEngineEventSink
{
    private readonly AuditLog _log;
    private readonly Func<RequestContext, string?>? _addressOf;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _lastSequence = new(StringComparer.Ordinal);

    /// <param name="log">Where records go.</param>
    /// <param name="addressOf">The client address of a request (the server knows it; the engine does not).</param>
    public AuditEventSink(AuditLog log, Func<RequestContext, string?>? addressOf = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        _log = log;
        _addressOf = addressOf;
    }

    /// <summary>Sequence of the latest record queued for a request (0 when none); wait on it with <see cref="AuditLog.WaitDurableAsync"/>.</summary>
    public long LastSequenceOf(string requestId) => _lastSequence.GetValueOrDefault(requestId);

    /// <summary>Forgets a finished request's bookkeeping once its final frame is out.</summary>
    public void Release(string requestId) => _lastSequence.TryRemove(requestId, out _);

    public void OnEvent(EngineEvent engineEvent)
    {
        ArgumentNullException.ThrowIfNull(engineEvent);
        var inv = CultureInfo.InvariantCulture;
        var (type, fields) = engineEvent switch
        {
            RequestAdmitted a => (AuditEventType.RequestAdmitted, new KeyValuePair<string, string>[]
            {
                new("prompt_tokens", a.PromptTokens.ToString(inv)),
                new("priority", a.Priority.ToString(inv)),
            }),
            RequestRefused r => (AuditEventType.RequestRefused, [new("check", r.Check), new("reason", r.Reason)]),
            RequestCancelled c => (AuditEventType.RequestCancelled, [new("stage", c.Stage)]),
            RequestPreempted p => (AuditEventType.RequestPreempted, [new("tokens_dropped", p.ComputedTokensDropped.ToString(inv))]),
            RequestFinished f => (AuditEventType.RequestFinished,
            [
                new("finish_reason", f.Reason.ToString()),
                new("detail", f.Detail ?? string.Empty),
                new("prompt_tokens", f.Usage.PromptTokens.ToString(inv)),
                new("completion_tokens", f.Usage.CompletionTokens.ToString(inv)),
                new("cached_prompt_tokens", f.Usage.CachedPromptTokens.ToString(inv)),
                new("queue_ms", f.Usage.QueueTime.TotalMilliseconds.ToString("F3", inv)),
                new("ttft_ms", f.Usage.TimeToFirstToken?.TotalMilliseconds.ToString("F3", inv) ?? string.Empty),
                new("total_ms", f.Usage.TotalTime.TotalMilliseconds.ToString("F3", inv)),
            ]),
            _ => (AuditEventType.Custom, new KeyValuePair<string, string>[] { new("event", engineEvent.GetType().Name) }),
        };

        var request = engineEvent.Request;
        try
        {
            var sequence = _log.Enqueue(new AuditEvent(type, request.KeyId, _addressOf?.Invoke(request), request.RequestId, fields));
            _lastSequence[request.RequestId] = sequence;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // Never throw on the engine thread. The request's durability wait fails instead (the log is faulted or
            // closed), so the server cannot send a final frame whose records are missing.
            _lastSequence[request.RequestId] = long.MaxValue;
        }
    }
}
