namespace RawInfer.Safety.Audit;

/// <summary>Kinds of audit records. Values are stored on disk: append new ones, never renumber.</summary>
public enum AuditEventType : byte
{
    ConnectionOpened = 1,
    ConnectionAuthenticated = 2,
    ConnectionRefused = 3,
    RequestAdmitted = 10,
    RequestRefused = 11,
    RequestFinished = 12,
    RequestCancelled = 13,
    RequestPreempted = 14,
    PolicyDenied = 20,
    RateLimited = 21,
    KeySuspended = 22,
    SuspensionLifted = 23,
    MalformedFrame = 24,
    AdminAction = 30,
    AdminForbidden = 31,
    KeysReloaded = 32,
    KeyRotated = 33,
    KeyForgotten = 34,
    SegmentsPruned = 40,
    Recovery = 41,
    ChainRestarted = 42,
    LogOpened = 43,
    Custom = 99,
}

/// <summary>An event to append: what happened, to whom, and its details as ordered name/value pairs.</summary>
public sealed record AuditEvent(
    AuditEventType Type,
    string? KeyId = null,
    string? ClientAddress = null,
    string? RequestId = null,
    IReadOnlyList<KeyValuePair<string, string>>? Fields = null)
{
    /// <summary>The details, never null.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> FieldList => Fields ?? [];
}

/// <summary>A stored record: the event plus its sequence number and timestamp, and where it lies.</summary>
public sealed record AuditRecord(
    long Sequence,
    DateTimeOffset Timestamp,
    AuditEvent Event,
    string Segment,
    long Offset)
{
    public AuditEventType Type => Event.Type;

    public string? KeyId => Event.KeyId;

    public string? RequestId => Event.RequestId;

    public string? ClientAddress => Event.ClientAddress;

    /// <summary>The value of the first field named <paramref name="name"/>, or null.</summary>
    public string? Field(string name)
    {
        foreach (var (n, v) in Event.FieldList)
        {
            if (string.Equals(n, name, StringComparison.Ordinal))
            {
                return v;
            }
        }

        return null;
    }
}

/// <summary>Where a log is damaged: the first sequence number that does not verify and its byte offset.</summary>
public sealed record AuditDamage(long Sequence, string Segment, long Offset, string Reason)
{
    public override string ToString() => $"sequence {Sequence} at offset {Offset} of {Segment}: {Reason}";
}

/// <summary>Damage in the middle of the audit log at start-up (a torn last record is repaired instead).</summary>
public sealed class AuditLogCorruptException : IOException
{
    public AuditLogCorruptException(AuditDamage damage)
        : base($"audit log damaged at {damage}; verify it with `rawinfer audit verify`, or start a new chain (StartNewChainOnDamage)")
    {
        Damage = damage;
    }

    public AuditLogCorruptException()
    {
        Damage = new AuditDamage(0, "", 0, "unknown");
    }

    public AuditLogCorruptException(string message)
        : base(message)
    {
        Damage = new AuditDamage(0, "", 0, message);
    }

    public AuditLogCorruptException(string message, Exception innerException)
        : base(message, innerException)
    {
        Damage = new AuditDamage(0, "", 0, message);
    }

    public AuditDamage Damage { get; }
}
