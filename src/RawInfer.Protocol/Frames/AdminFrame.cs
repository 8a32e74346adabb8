namespace RawInfer.Protocol;

/// <summary>
/// ADMIN: an admin-only operation (admin keys; a client key is answered ERROR FORBIDDEN, audited). The server answers
/// with one <see cref="AdminResultFrame"/> on the same request id. Build one with <see cref="QueryAudit"/>,
/// <see cref="ReloadKeys"/>, <see cref="ReloadDenyList"/> or <see cref="LiftSuspension"/>.
/// </summary>
public sealed record AdminFrame : FramePayload
{
    /// <summary>Longest key id or request id an ADMIN frame may carry, in UTF-8 bytes.</summary>
    public const int MaxIdBytes = 256;

    public AdminOperation Operation { get; init; }

    /// <summary>Audit query: only this key's records (null: any). Lift suspension: the key to lift (required).</summary>
    public string? KeyId { get; init; }

    /// <summary>Audit query: only this request's records (null: any).</summary>
    public string? RequestId { get; init; }

    /// <summary>Audit query: records at or after this instant (null: no bound). Sent in whole µs, rounded down.</summary>
    public DateTimeOffset? Since { get; init; }

    /// <summary>
    /// Audit query: records at or before this instant (null: no bound). Sent in whole µs, rounded down; the server
    /// includes that whole microsecond, so a record's own (truncated) timestamp finds it.
    /// </summary>
    public DateTimeOffset? Until { get; init; }

    /// <summary>Audit query: at most this many records, the newest (0: the server's default).</summary>
    public int MaxRecords { get; init; }

    public override FrameType Type => FrameType.Admin;

    /// <summary>An audit query; null filters match everything.</summary>
    public static AdminFrame QueryAudit(
        string? keyId = null, string? requestId = null, DateTimeOffset? since = null, DateTimeOffset? until = null, int maxRecords = 0) =>
        new()
        {
            Operation = AdminOperation.AuditQuery, KeyId = keyId, RequestId = requestId, Since = since, Until = until,
            MaxRecords = maxRecords,
        };

    public static AdminFrame ReloadKeys() => new() { Operation = AdminOperation.ReloadKeys };

    public static AdminFrame ReloadDenyList() => new() { Operation = AdminOperation.ReloadDenyList };

    public static AdminFrame LiftSuspension(string keyId)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        return new() { Operation = AdminOperation.LiftSuspension, KeyId = keyId };
    }

    /// <summary>What the server would reject as a protocol violation in this frame, or null when it is valid.</summary>
    public string? FindProblem()
    {
        if (Operation is 0 or > AdminOperation.LiftSuspension)
        {
            return $"unknown admin operation {(byte)Operation}";
        }

        if (Operation == AdminOperation.LiftSuspension && string.IsNullOrEmpty(KeyId))
        {
            return "lifting a suspension needs the key id";
        }

        return System.Text.Encoding.UTF8.GetByteCount(KeyId ?? "") > MaxIdBytes || System.Text.Encoding.UTF8.GetByteCount(RequestId ?? "") > MaxIdBytes
            ? $"key id and request id are limited to {MaxIdBytes} UTF-8 bytes"
            : null;
    }

    internal override int MeasurePayload() => 1 + Operation switch
    {
        AdminOperation.AuditQuery => PayloadWriter.StringSize(KeyId) + PayloadWriter.StringSize(RequestId) + 8 + 8 + 4,
        AdminOperation.LiftSuspension => PayloadWriter.StringSize(KeyId),
        _ => 0,
    };

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U8((byte)Operation);
        switch (Operation)
        {
            case AdminOperation.AuditQuery:
                writer.String(KeyId);
                writer.String(RequestId);
                writer.I64(WireTime.ToOptionalMicros(Since));
                writer.I64(WireTime.ToOptionalMicros(Until));
                writer.U32((uint)Math.Max(MaxRecords, 0));
                break;
            case AdminOperation.LiftSuspension:
                writer.String(KeyId);
                break;
        }
    }

    internal static AdminFrame Read(ref PayloadReader reader)
    {
        var operation = ReadOperation(ref reader);
        switch (operation)
        {
            case AdminOperation.AuditQuery:
                var keyId = reader.String("key id", MaxIdBytes);
                var requestId = reader.String("request id", MaxIdBytes);
                var since = WireTime.ReadOptional(ref reader, "since");
                var until = WireTime.ReadOptional(ref reader, "until");
                var max = WelcomeFrame.NonNegative(ref reader, "max records");
                return QueryAudit(keyId.Length == 0 ? null : keyId, requestId.Length == 0 ? null : requestId, since, until, max);
            case AdminOperation.LiftSuspension:
                var start = reader.Position;
                var target = reader.String("key id", MaxIdBytes);
                if (target.Length == 0)
                {
                    reader.Fail("key id", start, "the key whose suspension to lift is required");
                }

                return LiftSuspension(target);
            default:
                return new AdminFrame { Operation = operation };
        }
    }

    /// <summary>The operation byte; an unknown one is a violation.</summary>
    internal static AdminOperation ReadOperation(ref PayloadReader reader)
    {
        var operation = reader.U8("operation");
        if (operation is 0 or > (byte)AdminOperation.LiftSuspension)
        {
            reader.Fail("operation", 0, $"unknown admin operation {operation}");
        }

        return (AdminOperation)operation;
    }
}
