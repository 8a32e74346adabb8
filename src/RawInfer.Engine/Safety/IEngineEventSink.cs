namespace RawInfer.Engine;

/// <summary>
/// Receives the engine's structured request events (for an audit log). Called on the engine thread (admission
/// refusals on the submitting thread): implementations must be thread-safe and must not block, e.g. write into a
/// channel that another task drains.
/// </summary>
public interface IEngineEventSink
{
    void OnEvent(EngineEvent engineEvent);
}

/// <summary>The default sink: drops every event.</summary>
public sealed class NullEngineEventSink : IEngineEventSink
{
    public static NullEngineEventSink Instance { get; } = new();

    public void OnEvent(EngineEvent engineEvent)
    {
    }
}

/// <summary>Base of all engine events.</summary>
public abstract record EngineEvent(RequestContext Request, DateTimeOffset Timestamp);

/// <summary>The request passed validation, the guards and the queue bound, and is queued.</summary>
public sealed record RequestAdmitted(RequestContext Request, DateTimeOffset Timestamp, int PromptTokens, int Priority)
    : EngineEvent(Request, Timestamp);

/// <summary>The request was refused before queueing. <paramref name="Check"/>: "validation", "overload", "shutdown" or "guard:NAME".</summary>
public sealed record RequestRefused(RequestContext Request, DateTimeOffset Timestamp, string Check, string Reason)
    : EngineEvent(Request, Timestamp);

/// <summary>The request was cancelled by its caller; <paramref name="Stage"/> is "queued", "prefill" or "decode".</summary>
public sealed record RequestCancelled(RequestContext Request, DateTimeOffset Timestamp, string Stage)
    : EngineEvent(Request, Timestamp);

/// <summary>The request lost its KV blocks to make room and will recompute them.</summary>
public sealed record RequestPreempted(RequestContext Request, DateTimeOffset Timestamp, int ComputedTokensDropped)
    : EngineEvent(Request, Timestamp);

/// <summary>The request ended. <paramref name="OutputReplacements"/>: how many times an output guard redacted text.</summary>
public sealed record RequestFinished(
    RequestContext Request, DateTimeOffset Timestamp, FinishReason Reason, string? Detail, RequestUsage Usage,
    int OutputReplacements = 0)
    : EngineEvent(Request, Timestamp);
