using RawInfer.Protocol;
using RawInfer.Safety.Access;

namespace RawInfer.Server;

/// <summary>
/// The admin-only operations behind ADMIN frames, and the suspensions STATS shows. The server checks the role first
/// (a client key gets FORBIDDEN, recorded through <see cref="IRequestAudit.RecordAdminAsync"/>) and calls
/// <see cref="ExecuteAsync"/> for admin keys only. Implemented by <see cref="Safety.ServerSafety"/>; the default
/// answers that no admin operations are configured. Must be thread-safe.
/// </summary>
public interface IAdminOperations
{
    /// <summary>
    /// Runs <paramref name="request"/> for <paramref name="admin"/> and completes once its audit record is on disk.
    /// The result's payload must fit in <paramref name="maxPayloadBytes"/> (audit records are dropped, oldest first,
    /// to fit). Throws <see cref="IOException"/> when the audit record could not be written.
    /// </summary>
    Task<AdminResultFrame> ExecuteAsync(long connectionId, Principal admin, AdminFrame request, int maxPayloadBytes, CancellationToken cancellationToken);

    /// <summary>Key suspensions in force now (STATS: all of them to admins, a client key its own).</summary>
    IReadOnlyList<SuspensionEntry> ActiveSuspensions();
}

/// <summary>The default: no admin operations (answered as failed), no suspensions.</summary>
public sealed class NullAdminOperations : IAdminOperations
{
    public static NullAdminOperations Instance { get; } = new();

    public Task<AdminResultFrame> ExecuteAsync(long connectionId, Principal admin, AdminFrame request, int maxPayloadBytes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Task.FromResult(new AdminResultFrame
        {
            Operation = request.Operation, Succeeded = false, Message = "this server has no admin operations configured (no ServerSafety)",
        });
    }

    public IReadOnlyList<SuspensionEntry> ActiveSuspensions() => [];
}

/// <summary>The audit names of admin actions (the "action" field of their records).</summary>
public static class AdminActions
{
    public const string DetailedStats = "stats-detailed";

    /// <summary>The action name of an ADMIN operation.</summary>
    public static string Name(AdminOperation operation) => operation switch
    {
        AdminOperation.AuditQuery => "audit-query",
        AdminOperation.ReloadKeys => "reload-keys",
        AdminOperation.ReloadDenyList => "reload-deny-list",
        AdminOperation.LiftSuspension => "lift-suspension",
        _ => "admin-" + ((byte)operation).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}
