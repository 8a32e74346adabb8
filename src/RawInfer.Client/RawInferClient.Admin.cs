using RawInfer.Protocol;

namespace RawInfer.Client;

// Admin-only operations (ADMIN frames, docs/protocol.md). They need an admin key: a client key's request ends with
// RawInferException FORBIDDEN (and the server audits the refusal).
public sealed partial class RawInferClient
{
    /// <summary>Sends one ADMIN frame and returns its ADMIN_RESULT.</summary>
    /// <exception cref="RawInferException">FORBIDDEN for a client key; INTERNAL when the server could not audit it.</exception>
    /// <exception cref="ArgumentException">The request would break the protocol (unknown operation, id too long).</exception>
    public async Task<AdminResultFrame> AdminAsync(AdminFrame request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.FindProblem() is { } problem)
        {
            throw new ArgumentException(problem, nameof(request));
        }

        var reply = await RoundTripAsync(request, cancellationToken).ConfigureAwait(false);
        return reply is AdminResultFrame result && result.Operation == request.Operation
            ? result
            : throw new RawInferException(ErrorCode.ProtocolViolation, $"expected ADMIN_RESULT for {request.Operation}, got {Describe(reply)}");
    }

    /// <summary>
    /// Audit records by key id, request id and time range (null: any), the newest <paramref name="maxRecords"/>
    /// (0: the server's default) oldest first; <see cref="AdminResultFrame.Truncated"/> when some matches were left
    /// out (the limit, or the frame size).
    /// </summary>
    public Task<AdminResultFrame> QueryAuditAsync(
        string? keyId = null, string? requestId = null, DateTimeOffset? since = null, DateTimeOffset? until = null,
        int maxRecords = 0, CancellationToken cancellationToken = default) =>
        AdminAsync(AdminFrame.QueryAudit(keyId, requestId, since, until, maxRecords), cancellationToken);

    /// <summary>Re-reads the server's key file; <see cref="AdminResultFrame.Count"/> keys are in force (the old ones on failure).</summary>
    public Task<AdminResultFrame> ReloadKeysAsync(CancellationToken cancellationToken = default) =>
        AdminAsync(AdminFrame.ReloadKeys(), cancellationToken);

    /// <summary>Re-reads the server's deny-list file; <see cref="AdminResultFrame.Count"/> patterns are in force (−1: unknown).</summary>
    public Task<AdminResultFrame> ReloadDenyListAsync(CancellationToken cancellationToken = default) =>
        AdminAsync(AdminFrame.ReloadDenyList(), cancellationToken);

    /// <summary>Ends <paramref name="keyId"/>'s suspension now; returns whether one was in force.</summary>
    public async Task<bool> LiftSuspensionAsync(string keyId, CancellationToken cancellationToken = default) =>
        (await AdminAsync(AdminFrame.LiftSuspension(keyId), cancellationToken).ConfigureAwait(false)).Lifted;

    private static string Describe(FramePayload reply) =>
        reply is AdminResultFrame other ? $"ADMIN_RESULT for {other.Operation}" : reply.Type.ToString();
}
