using System.Buffers.Binary;

namespace RawInfer.Protocol.Tests;

/// <summary>ADMIN, ADMIN_RESULT and the suspensions in STATS: fields survive the wire; bad values are named violations.</summary>
public class AdminFrameTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Audit_query_fields_survive_the_wire()
    {
        var got = Assert.IsType<AdminFrame>(RoundTrip(SampleFrames.Get("admin-audit-query").Payload, fromServer: false));
        Assert.Equal(AdminOperation.AuditQuery, got.Operation);
        Assert.Equal("client-1", got.KeyId);
        Assert.Equal("c7-r1", got.RequestId);
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 0, 0, 0, TimeSpan.Zero), got.Since);
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 1, 0, 0, TimeSpan.Zero), got.Until);
        Assert.Equal(50, got.MaxRecords);

        var any = Assert.IsType<AdminFrame>(RoundTrip(AdminFrame.QueryAudit(), fromServer: false));
        Assert.Null(any.KeyId);
        Assert.Null(any.RequestId);
        Assert.Null(any.Since);
        Assert.Null(any.Until);
        Assert.Equal(0, any.MaxRecords);

        var lift = Assert.IsType<AdminFrame>(RoundTrip(SampleFrames.Get("admin-lift").Payload, fromServer: false));
        Assert.Equal(AdminOperation.LiftSuspension, lift.Operation);
        Assert.Equal("client-1", lift.KeyId);
    }

    [Fact]
    public void A_time_range_is_sent_in_whole_microseconds_rounded_down()
    {
        var since = Noon.AddTicks(15); // 1.5 µs past noon
        var got = Assert.IsType<AdminFrame>(RoundTrip(AdminFrame.QueryAudit(since: since, until: since.AddTicks(-30)), fromServer: false));
        Assert.Equal(Noon.AddTicks(10), got.Since);
        Assert.Equal(Noon.AddTicks(-20), got.Until); // down, towards the past, before noon too

        var early = Assert.IsType<AdminFrame>(RoundTrip(AdminFrame.QueryAudit(since: DateTimeOffset.UnixEpoch.AddDays(-1)), fromServer: false));
        Assert.Equal(DateTimeOffset.UnixEpoch, early.Since); // before 1970 is clamped: −1 means none
    }

    [Fact]
    public void Admin_result_fields_survive_the_wire()
    {
        var audit = Assert.IsType<AdminResultFrame>(RoundTrip(SampleFrames.Get("admin-result-audit").Payload, fromServer: true));
        Assert.True(audit.Succeeded);
        Assert.True(audit.Truncated);
        Assert.Equal(5, audit.MatchedRecords);
        Assert.Equal(2, audit.Records.Count);
        var first = audit.Records[0];
        Assert.Equal(41, first.Sequence);
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 0, 30, 0, TimeSpan.Zero).AddTicks(12340), first.Timestamp);
        Assert.Equal("RequestAdmitted", first.Type);
        Assert.Equal("client-1", first.KeyId);
        Assert.Equal("127.0.0.1", first.ClientAddress);
        Assert.Equal("c7-r1", first.RequestId);
        Assert.Equal("prompt_tokens=4; max_tokens=16", first.Fields);
        Assert.Null(audit.Records[1].KeyId);
        Assert.Null(audit.Records[1].RequestId);

        var failed = Assert.IsType<AdminResultFrame>(RoundTrip(SampleFrames.Get("admin-result-reload-failed").Payload, fromServer: true));
        Assert.Equal((AdminOperation.ReloadDenyList, false, -1), (failed.Operation, failed.Succeeded, failed.Count));
        Assert.Equal("no deny-list file was configured", failed.Message);
        Assert.True(Assert.IsType<AdminResultFrame>(RoundTrip(SampleFrames.Get("admin-result-lift").Payload, fromServer: true)).Lifted);

        var stats = Assert.IsType<StatsFrame>(RoundTrip(SampleFrames.Get("stats-reply-suspensions").Payload, fromServer: true));
        var suspension = Assert.Single(stats.Suspensions);
        Assert.Equal(("client-1", "PolicyDenial=3"), (suspension.KeyId, suspension.Reason));
        Assert.Equal(new DateTimeOffset(2026, 11, 28, 1, 5, 0, TimeSpan.Zero), suspension.Until);
    }

    [Fact]
    public void An_unknown_admin_operation_is_named()
    {
        var bytes = FrameWriter.ToArray(3, AdminFrame.ReloadKeys());
        bytes[ProtocolConstants.HeaderSize] = 9;
        var e = Assert.Throws<ProtocolException>(() => Decode(bytes, fromServer: false));
        Assert.Contains("unknown admin operation 9", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Lifting_needs_a_key_id_within_the_limit()
    {
        var empty = FrameWriter.ToArray(3, AdminFrame.LiftSuspension("k"));
        empty = [.. empty[..(ProtocolConstants.HeaderSize + 1)], 0, 0, 0, 0];
        BinaryPrimitives.WriteUInt32LittleEndian(empty, 5);
        Assert.Contains("is required", Assert.Throws<ProtocolException>(() => Decode(empty, fromServer: false)).Message, StringComparison.Ordinal);

        var longId = FrameWriter.ToArray(3, AdminFrame.LiftSuspension(new string('k', AdminFrame.MaxIdBytes + 1)));
        Assert.Contains("exceeds the limit of 256", Assert.Throws<ProtocolException>(() => Decode(longId, fromServer: false)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_negative_instant_other_than_none_is_a_violation()
    {
        var bytes = FrameWriter.ToArray(3, AdminFrame.QueryAudit(since: Noon));
        var sinceOffset = ProtocolConstants.HeaderSize + 1 + 4 + 4; // operation, empty key id, empty request id
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(sinceOffset), -5);
        var e = Assert.Throws<ProtocolException>(() => Decode(bytes, fromServer: false));
        Assert.Contains("'since' at payload offset 9", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_truncated_flag_belongs_to_audit_queries_only_and_status_is_0_or_1()
    {
        var lift = FrameWriter.ToArray(3, new AdminResultFrame { Operation = AdminOperation.LiftSuspension });
        lift[5] = AdminResultFrame.TruncatedFlag;
        Assert.Contains("truncated flag", Assert.Throws<ProtocolException>(() => Decode(lift, fromServer: true)).Message, StringComparison.Ordinal);

        var status = FrameWriter.ToArray(3, new AdminResultFrame { Operation = AdminOperation.ReloadKeys });
        status[ProtocolConstants.HeaderSize + 1] = 2;
        Assert.Contains("unknown status 2", Assert.Throws<ProtocolException>(() => Decode(status, fromServer: true)).Message, StringComparison.Ordinal);

        var lifted = FrameWriter.ToArray(3, new AdminResultFrame { Operation = AdminOperation.LiftSuspension });
        lifted[^1] = 7;
        Assert.Contains("'lifted'", Assert.Throws<ProtocolException>(() => Decode(lifted, fromServer: true)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_record_count_larger_than_the_payload_fails_before_allocating()
    {
        var bytes = FrameWriter.ToArray(3, new AdminResultFrame { Operation = AdminOperation.AuditQuery });
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(bytes.Length - 4), 0x0FFF_FFFF);
        var e = Assert.Throws<ProtocolException>(() => Decode(bytes, fromServer: true));
        Assert.Contains("records", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Admin_frames_travel_one_way_only()
    {
        Assert.Throws<ProtocolException>(() => Decode(FrameWriter.ToArray(3, AdminFrame.ReloadKeys()), fromServer: true));
        Assert.Throws<ProtocolException>(() => Decode(FrameWriter.ToArray(3, new AdminResultFrame { Operation = AdminOperation.ReloadKeys }), fromServer: false));
    }

    private static FramePayload RoundTrip(FramePayload payload, bool fromServer)
    {
        var bytes = FrameWriter.ToArray(1, payload);
        var decoded = Decode(bytes, fromServer);
        Assert.Equal(bytes, FrameWriter.ToArray(1, decoded));
        return decoded;
    }

    private static FramePayload Decode(byte[] bytes, bool fromServer)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, 1 << 20, out var frame, out var violation));
        Assert.Null(violation);
        return SampleFrames.Decode(frame, fromServer);
    }
}
