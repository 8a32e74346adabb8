using System.Globalization;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;

namespace RawInfer.Server.Safety;

// Admin actions (detailed stats, audit queries, key reload, suspension lifting): the server checks the role with
// TryAuthorize before acting, and every decision, allowed or forbidden, is audited.
public sealed partial class ServerSafety
{
    /// <summary>
    /// Whether <paramref name="principal"/> may perform the admin action <paramref name="action"/>. A client key is
    /// refused (answer FORBIDDEN) and the refusal queued as <see cref="AuditEventType.AdminForbidden"/>; returns the
    /// record's sequence in <paramref name="sequence"/> so the refusal can wait for it (0 when allowed).
    /// </summary>
    public bool TryAuthorize(Principal principal, string action, long connectionId, out long sequence)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentException.ThrowIfNullOrEmpty(action);
        if (principal.IsAdmin)
        {
            sequence = 0;
            return true;
        }

        sequence = RecordAdmin(AuditEventType.AdminForbidden, principal.KeyId, connectionId,
            ("action", action), ("role", principal.Role.ToString()));
        return false;
    }

    /// <inheritdoc/>
    public async Task RecordAdminAsync(long connectionId, Principal principal, string action, bool allowed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(principal);
        ArgumentException.ThrowIfNullOrEmpty(action);
        var sequence = RecordAdmin(allowed ? AuditEventType.AdminAction : AuditEventType.AdminForbidden, principal.KeyId, connectionId,
            ("action", action), ("role", principal.Role.ToString()));
        if (sequence == long.MaxValue)
        {
            throw new IOException($"the audit record of admin action {action} could not be queued");
        }

        await Log.WaitDurableAsync(sequence, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Admin: re-reads the key file (the old keys stay on error). Audited as <see cref="AuditEventType.KeysReloaded"/>.</summary>
    public ApiKeyReloadResult ReloadKeys(Principal admin, long connectionId = 0) => ReloadKeysCore(admin, connectionId, out _);

    /// <summary>Admin: ends <paramref name="keyId"/>'s suspension now. Audited as <see cref="AuditEventType.SuspensionLifted"/>.</summary>
    public bool LiftSuspension(Principal admin, string keyId, long connectionId = 0) => LiftSuspensionCore(admin, keyId, connectionId, out _);

    /// <summary>Admin: audit records matching <paramref name="query"/> (at most <paramref name="limit"/>, newest last). Audited.</summary>
    public IReadOnlyList<AuditRecord> QueryAudit(Principal admin, AuditQuery query, int limit = 1000, long connectionId = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(limit);
        var records = QueryAuditCore(admin, query, connectionId, out _);
        return records.Count <= limit ? records : [.. records.Skip(records.Count - limit)];
    }

    private ApiKeyReloadResult ReloadKeysCore(Principal admin, long connectionId, out long sequence)
    {
        RequireAdmin(admin);
        var result = Keys.Reload();
        sequence = RecordAdmin(AuditEventType.KeysReloaded, admin.KeyId, connectionId,
            ("result", result.Succeeded ? "ok" : result.Error ?? "failed"), ("keys", result.KeyCount.ToString(CultureInfo.InvariantCulture)));
        return result;
    }

    private bool LiftSuspensionCore(Principal admin, string keyId, long connectionId, out long sequence)
    {
        RequireAdmin(admin);
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        var lifted = Abuse.Lift(keyId);
        sequence = RecordAdmin(AuditEventType.SuspensionLifted, admin.KeyId, connectionId,
            ("target_key", keyId), ("was_suspended", lifted ? "true" : "false"));
        return lifted;
    }

    /// <summary>Every match, in sequence order; the query itself is audited first.</summary>
    private IReadOnlyList<AuditRecord> QueryAuditCore(Principal admin, AuditQuery query, long connectionId, out long sequence)
    {
        RequireAdmin(admin);
        ArgumentNullException.ThrowIfNull(query);
        sequence = RecordAdmin(AuditEventType.AdminAction, admin.KeyId, connectionId,
            ("action", "audit-query"), ("key", query.KeyId ?? ""), ("request", query.RequestId ?? ""),
            ("since", query.Since?.ToString("O", CultureInfo.InvariantCulture) ?? ""),
            ("until", query.Until?.ToString("O", CultureInfo.InvariantCulture) ?? ""));
        return AuditReader.Query(Log.Directory, query);
    }

    /// <summary>Suspensions in force (for STATS).</summary>
    public IReadOnlyList<Suspension> ActiveSuspensions() => Abuse.ActiveSuspensions();

    private static void RequireAdmin(Principal admin)
    {
        ArgumentNullException.ThrowIfNull(admin);
        if (!admin.IsAdmin)
        {
            throw new UnauthorizedAccessException($"key {admin.KeyId} is not an admin key; check TryAuthorize first");
        }
    }

    private long RecordAdmin(AuditEventType type, string keyId, long? connectionId, params (string Name, string Value)[] fields)
    {
        var list = new List<KeyValuePair<string, string>>(fields.Length + 1);
        if (connectionId is { } id and not 0)
        {
            list.Add(new("connection", id.ToString(CultureInfo.InvariantCulture)));
        }

        foreach (var (name, value) in fields)
        {
            list.Add(new(name, value));
        }

        var address = connectionId is { } c ? ConnectionEvents.Connections.AddressOfConnection(c) : null;
        try
        {
            return Log.Enqueue(new AuditEvent(type, keyId, address, null, list));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return long.MaxValue;
        }
    }
}
