namespace RawInfer.Engine;

/// <summary>Who a request is for: its id and the key and tenant it came with.</summary>
public sealed record RequestContext(string RequestId, string? KeyId, string? Tenant);

/// <summary>What a request guard sees: the request's context and its prompt as text (when given) and as tokens.</summary>
public sealed record RequestGuardContext(RequestContext Request, string? PromptText, IReadOnlyList<int> PromptTokenIds);

/// <summary>A guard's answer: allow, or deny with a reason the caller and the audit trail see.</summary>
public readonly record struct GuardVerdict(bool IsAllowed, string? Reason)
{
    public static GuardVerdict Allow => new(true, null);

    public static GuardVerdict Deny(string reason) => new(false, reason);
}

/// <summary>
/// Consulted for every request after tokenization and before it is queued: a deny ends the request with
/// <see cref="FinishReason.DeniedByPolicy"/> before any model work. Called on the submitting thread, possibly
/// concurrently for different requests.
/// </summary>
public interface IRequestGuard
{
    /// <summary>Name reported in refusal events (which check refused).</summary>
    string Name { get; }

    ValueTask<GuardVerdict> CheckAsync(RequestGuardContext context, CancellationToken cancellationToken);
}
