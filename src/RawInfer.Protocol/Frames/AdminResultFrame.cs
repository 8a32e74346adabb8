namespace RawInfer.Protocol;

/// <summary>One audit record in an ADMIN_RESULT: what the server logged, with its details as one short text.</summary>
/// <param name="Sequence">The record's sequence number in the audit chain.</param>
/// <param name="Timestamp">When it was written (whole µs, UTC).</param>
/// <param name="Type">The record's type name (e.g. <c>AdminForbidden</c>).</param>
/// <param name="KeyId">The key it concerns, or null.</param>
/// <param name="ClientAddress">The client address, or null.</param>
/// <param name="RequestId">The request's audit id (<c>c{session}-r{request}</c>), or null.</param>
/// <param name="Fields">The details as <c>name=value</c> pairs separated by "; " (shortened by the server).</param>
public sealed record AuditRecordEntry(
    long Sequence, DateTimeOffset Timestamp, string Type, string? KeyId, string? ClientAddress, string? RequestId, string Fields)
{
    /// <summary>Fixed bytes of one record on the wire besides its strings' contents.</summary>
    internal const int MinWireBytes = 8 + 8 + (5 * 4);

    /// <summary>Bytes this record takes in an ADMIN_RESULT payload.</summary>
    public int WireBytes => 8 + 8 + PayloadWriter.StringSize(Type) + PayloadWriter.StringSize(KeyId)
        + PayloadWriter.StringSize(ClientAddress) + PayloadWriter.StringSize(RequestId) + PayloadWriter.StringSize(Fields);

    internal void Write(ref PayloadWriter writer)
    {
        writer.I64(Sequence);
        writer.I64(WireTime.ToMicros(Timestamp));
        writer.String(Type);
        writer.String(KeyId);
        writer.String(ClientAddress);
        writer.String(RequestId);
        writer.String(Fields);
    }

    internal static AuditRecordEntry Read(ref PayloadReader reader)
    {
        var sequence = reader.I64("sequence");
        var timestamp = WireTime.Read(ref reader, "timestamp");
        var type = reader.String("type");
        var keyId = reader.String("key id");
        var address = reader.String("address");
        var requestId = reader.String("request id");
        var fields = reader.String("fields");
        return new AuditRecordEntry(sequence, timestamp, type, NullIfEmpty(keyId), NullIfEmpty(address), NullIfEmpty(requestId), fields);
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}

/// <summary>
/// ADMIN_RESULT: the answer to an <see cref="AdminFrame"/>. <see cref="Succeeded"/> false with a
/// <see cref="Message"/> when the operation ran but failed (a reload keeps the old set). The rest depends on
/// <see cref="Operation"/>: audit query → <see cref="Records"/>; reloads → <see cref="Count"/>; lift → <see cref="Lifted"/>.
/// </summary>
public sealed record AdminResultFrame : FramePayload
{
    /// <summary>Header flag (audit query only): fewer records were sent than matched.</summary>
    public const byte TruncatedFlag = 0x01;

    public AdminOperation Operation { get; init; }

    public bool Succeeded { get; init; } = true;

    /// <summary>Why the operation failed; empty on success.</summary>
    public string Message { get; init; } = "";

    /// <summary>Audit query: the records sent, oldest first.</summary>
    public IReadOnlyList<AuditRecordEntry> Records { get; init; } = [];

    /// <summary>Audit query: how many records matched the filter (at least <see cref="Records"/>' count).</summary>
    public int MatchedRecords { get; init; }

    /// <summary>Audit query: the oldest matches were left out (max records, or the frame size limit).</summary>
    public bool Truncated { get; init; }

    /// <summary>Reloads: keys or deny-list patterns now in force (−1: unknown).</summary>
    public int Count { get; init; }

    /// <summary>Lift suspension: whether a suspension was in force and is now lifted.</summary>
    public bool Lifted { get; init; }

    public override FrameType Type => FrameType.AdminResult;

    internal override byte HeaderFlags => Operation == AdminOperation.AuditQuery && Truncated ? TruncatedFlag : (byte)0;

    /// <summary>Payload bytes of this result without its audit records (for fitting records into a frame limit).</summary>
    public int MeasureWithoutRecords() => 1 + 1 + PayloadWriter.StringSize(Message) + Operation switch
    {
        AdminOperation.AuditQuery => 4 + 4,
        AdminOperation.ReloadKeys or AdminOperation.ReloadDenyList => 4,
        _ => 1,
    };

    internal override int MeasurePayload()
    {
        var size = MeasureWithoutRecords();
        if (Operation == AdminOperation.AuditQuery)
        {
            foreach (var record in Records)
            {
                size += record.WireBytes;
            }
        }

        return size;
    }

    internal override void WritePayload(ref PayloadWriter writer)
    {
        writer.U8((byte)Operation);
        writer.U8(Succeeded ? (byte)0 : (byte)1);
        writer.String(Message);
        switch (Operation)
        {
            case AdminOperation.AuditQuery:
                writer.U32((uint)Math.Max(MatchedRecords, 0));
                writer.U32((uint)Records.Count);
                foreach (var record in Records)
                {
                    record.Write(ref writer);
                }

                break;
            case AdminOperation.ReloadKeys or AdminOperation.ReloadDenyList:
                writer.I32(Count);
                break;
            default:
                writer.U8(Lifted ? (byte)1 : (byte)0);
                break;
        }
    }

    internal static AdminResultFrame Read(ref PayloadReader reader, byte flags)
    {
        var operation = AdminFrame.ReadOperation(ref reader);
        var status = reader.U8("status");
        if (status > 1)
        {
            reader.Fail("status", 1, $"unknown status {status} (0 ok, 1 failed)");
        }

        var message = reader.String("message");
        var truncated = (flags & TruncatedFlag) != 0;
        if (truncated && operation != AdminOperation.AuditQuery)
        {
            reader.Fail("flags", 0, $"the truncated flag is defined for audit queries only, not {operation}");
        }

        var result = new AdminResultFrame { Operation = operation, Succeeded = status == 0, Message = message, Truncated = truncated };
        switch (operation)
        {
            case AdminOperation.AuditQuery:
                var matched = WelcomeFrame.NonNegative(ref reader, "matched records");
                var count = reader.U32("record count");
                reader.CheckCount(count, AuditRecordEntry.MinWireBytes, "records");
                var records = new AuditRecordEntry[count];
                for (var i = 0; i < records.Length; i++)
                {
                    records[i] = AuditRecordEntry.Read(ref reader);
                }

                return result with { MatchedRecords = matched, Records = records };
            case AdminOperation.ReloadKeys or AdminOperation.ReloadDenyList:
                return result with { Count = reader.I32("count") };
            default:
                return result with { Lifted = WireTime.ReadBool(ref reader, "lifted") };
        }
    }
}
