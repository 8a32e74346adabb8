using RawInfer.Engine;
using RawInfer.Safety.Audit;
using Xunit;

namespace RawInfer.Safety.Tests.Audit;

public sealed class AuditLogTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Concurrent_appends_get_consecutive_sequences_and_are_durable_when_awaited()
    {
        await using (var log = AuditLog.Open(_dir.Path, new AuditLogOptions { SegmentBytes = 4096, CheckpointEvery = 10 }))
        {
            var sequences = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(async () => await log.AppendAsync(AuditTestLog.Event(i), Ct), Ct)));
            Assert.Equal(Enumerable.Range(2, 200).Select(i => (long)i), sequences.Order());
            Assert.True(log.DurableSequence >= sequences.Max());
        }

        var result = AuditReader.Verify(_dir.Path);
        Assert.True(result.IsValid, result.Damage?.ToString());
        Assert.Equal(201, result.Records);
    }

    [Fact]
    public async Task Each_opening_names_its_log_opened_record_which_becomes_durable()
    {
        long first;
        await using (var log = AuditLog.Open(_dir.Path))
        {
            first = log.OpenedSequence;
            await log.WaitDurableAsync(first, Ct);
            var opened = Assert.Single(AuditReader.Query(_dir.Path, new AuditQuery()));
            Assert.Equal((first, AuditEventType.LogOpened), (opened.Sequence, opened.Type));
            log.Enqueue(AuditTestLog.Event(1));
        }

        await using (var log = AuditLog.Open(_dir.Path))
        {
            Assert.Equal(first + 2, log.OpenedSequence); // after the first opening and its one event
            await log.WaitDurableAsync(log.OpenedSequence, Ct);
            var records = AuditReader.Query(_dir.Path, new AuditQuery());
            Assert.Equal(AuditEventType.LogOpened, records.Single(r => r.Sequence == log.OpenedSequence).Type);
        }
    }

    [Fact]
    public async Task Enqueue_returns_at_once_and_WaitDurable_covers_every_earlier_record()
    {
        await using var log = AuditLog.Open(_dir.Path);
        var last = 0L;
        for (var i = 0; i < 50; i++)
        {
            last = log.Enqueue(AuditTestLog.Event(i));
        }

        await log.WaitDurableAsync(last, Ct);
        Assert.True(log.DurableSequence >= last);
        Assert.Equal(51, AuditReader.Query(_dir.Path, new AuditQuery()).Count);
    }

    [Fact]
    public async Task Query_filters_by_key_request_and_time_range()
    {
        var clock = new ManualTimeProvider();
        await using (var log = AuditLog.Open(_dir.Path, new AuditLogOptions { TimeProvider = clock }))
        {
            for (var i = 0; i < 9; i++)
            {
                await log.AppendAsync(AuditTestLog.Event(i), Ct);
                clock.Advance(TimeSpan.FromMinutes(1));
            }
        }

        Assert.Equal(["req-0", "req-3", "req-6"], AuditReader.Query(_dir.Path, new AuditQuery(KeyId: "alice")).Select(r => r.RequestId));
        var one = Assert.Single(AuditReader.Query(_dir.Path, new AuditQuery(RequestId: "req-4")));
        Assert.Equal("4", one.Field("completion_tokens"));
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var window = AuditReader.Query(_dir.Path, new AuditQuery(Since: start.AddMinutes(2), Until: start.AddMinutes(4)));
        Assert.Equal(["req-2", "req-3", "req-4"], window.Select(r => r.RequestId));
    }

    [Fact]
    public async Task A_torn_last_record_is_truncated_on_open_and_the_recovery_is_audited()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 5, new AuditLogOptions());
        var segment = Directory.GetFiles(_dir.Path, "audit-*.seg").Single();
        var last = AuditTestLog.Layout(_dir.Path)[^1];

        // Simulate a crash mid-write: keep only part of the last record (it was never checkpointed, so drop that line too).
        await using (var stream = new FileStream(segment, FileMode.Open))
        {
            stream.SetLength(last.Offset + (last.Length / 2));
        }

        Assert.False(File.Exists(_dir.File("checkpoints.txt"))); // default: a checkpoint every 1000 records
        Assert.Equal(last.Sequence, AuditReader.Verify(_dir.Path).Damage?.Sequence);

        await using (var log = AuditLog.Open(_dir.Path))
        {
            await log.AppendAsync(AuditTestLog.Event(100), Ct);
        }

        Assert.True(AuditReader.Verify(_dir.Path).IsValid);
        var recovery = Assert.Single(AuditReader.Query(_dir.Path, new AuditQuery()), r => r.Type == AuditEventType.Recovery);
        Assert.Equal(last.Sequence, recovery.Sequence); // the torn record's number is reused by the recovery event
        Assert.Equal((last.Length - (last.Length / 2)).ToString(System.Globalization.CultureInfo.InvariantCulture), recovery.Field("bytes_removed"));
    }

    [Fact]
    public async Task Damage_in_the_middle_stops_open_with_segment_offset_and_sequence_unless_told_to_start_a_new_chain()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 6, new AuditLogOptions());
        var victim = AuditTestLog.Layout(_dir.Path)[2];
        var bytes = await File.ReadAllBytesAsync(victim.Path, Ct);
        bytes[victim.Offset + 30] ^= 1;
        await File.WriteAllBytesAsync(victim.Path, bytes, Ct);

        var error = Assert.Throws<AuditLogCorruptException>(() => AuditLog.Open(_dir.Path));
        Assert.Equal(victim.Sequence, error.Damage.Sequence);
        Assert.Equal(victim.Offset, error.Damage.Offset);
        Assert.Contains(Path.GetFileName(victim.Path), error.Message, StringComparison.Ordinal);

        await using (var log = AuditLog.Open(_dir.Path, new AuditLogOptions { StartNewChainOnDamage = true }))
        {
            await log.AppendAsync(AuditTestLog.Event(7), Ct);
        }

        var result = AuditReader.Verify(_dir.Path);
        Assert.True(result.IsValid, result.Damage?.ToString());
        Assert.Equal(victim.Sequence, result.FirstSequence);
        var restart = Assert.Single(AuditReader.Query(_dir.Path, new AuditQuery()), r => r.Type == AuditEventType.ChainRestarted);
        Assert.Equal(victim.Sequence.ToString(System.Globalization.CultureInfo.InvariantCulture), restart.Field("damaged_sequence"));
        Assert.NotEmpty(Directory.GetFiles(_dir.Path, "*.damaged-*"));
    }

    [Fact]
    public async Task Prompts_are_hashed_by_default_and_encrypted_content_is_shredded_by_forget()
    {
        await using (var plain = AuditLog.Open(_dir.File("plain")))
        {
            await plain.AppendAsync(new AuditEvent(AuditEventType.RequestAdmitted, "alice", Fields: plain.Content.Describe("alice", "prompt", "a secret")), Ct);
        }

        var hashed = AuditReader.Query(_dir.File("plain"), new AuditQuery(KeyId: "alice")).Single();
        Assert.Null(hashed.Field("prompt_enc"));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("a secret"u8)), hashed.Field("prompt_sha256"));
        Assert.DoesNotContain("a secret", System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(Directory.GetFiles(_dir.File("plain"), "*.seg").Single())), StringComparison.Ordinal);

        var options = new AuditLogOptions { Retention = ContentRetention.Encrypted };
        await using (var log = AuditLog.Open(_dir.Path, options))
        {
            await log.AppendAsync(new AuditEvent(AuditEventType.RequestAdmitted, "alice", Fields: log.Content.Describe("alice", "prompt", "the red ball")), Ct);
            await log.AppendAsync(new AuditEvent(AuditEventType.RequestAdmitted, "bob", Fields: log.Content.Describe("bob", "prompt", "bob's text")), Ct);
            var stored = AuditReader.Query(_dir.Path, new AuditQuery(KeyId: "alice")).Single();
            Assert.Equal("the red ball", log.Content.TryDecrypt(stored, "prompt"));

            Assert.True(await log.ForgetAsync("alice", actorKeyId: "admin", Ct));
            Assert.Null(log.Content.TryDecrypt(stored, "prompt"));
        }

        Assert.True(AuditReader.Verify(_dir.Path).IsValid);
        var fresh = AuditContentProtector.ForDirectory(_dir.Path);
        var records = AuditReader.Query(_dir.Path, new AuditQuery());
        Assert.Null(fresh.TryDecrypt(records.Single(r => r.KeyId == "alice"), "prompt"));
        Assert.Equal("bob's text", fresh.TryDecrypt(records.Single(r => r.KeyId == "bob" && r.Type == AuditEventType.RequestAdmitted), "prompt"));
        var erased = Assert.Single(records, r => r.Type == AuditEventType.KeyForgotten);
        Assert.Equal("alice", erased.Field("forgotten_key_id"));
        Assert.Equal("admin", erased.KeyId);
    }

    [Fact]
    public async Task Pruning_old_segments_leaves_an_anchor_that_verify_accepts()
    {
        var clock = new ManualTimeProvider();
        await using (var log = AuditLog.Open(_dir.Path, new AuditLogOptions { SegmentBytes = 600, TimeProvider = clock, CheckpointEvery = 3 }))
        {
            for (var i = 0; i < 12; i++)
            {
                await log.AppendAsync(AuditTestLog.Event(i), Ct);
            }

            clock.Advance(TimeSpan.FromDays(40));
            for (var i = 12; i < 24; i++)
            {
                await log.AppendAsync(AuditTestLog.Event(i), Ct);
            }

            var before = Directory.GetFiles(_dir.Path, "audit-*.seg").Length;
            var pruned = await log.PruneAsync(clock.GetUtcNow() - TimeSpan.FromDays(30), Ct);
            Assert.InRange(pruned, 1, before - 1);
        }

        var result = AuditReader.Verify(_dir.Path);
        Assert.True(result.IsValid, result.Damage?.ToString());
        Assert.True(result.FirstSequence > 1);
        Assert.Contains(AuditReader.Query(_dir.Path, new AuditQuery()), r => r.Type == AuditEventType.SegmentsPruned);
    }

    [Fact]
    public async Task The_engine_sink_queues_records_and_tracks_each_request_s_last_sequence()
    {
        await using var log = AuditLog.Open(_dir.Path);
        var sink = new AuditEventSink(log, _ => "127.0.0.1:5000");
        var context = new RequestContext("r1", "alice", null);
        var now = DateTimeOffset.UnixEpoch;
        sink.OnEvent(new RequestAdmitted(context, now, 7, 0));
        sink.OnEvent(new RequestFinished(context, now, FinishReason.DeniedByPolicy, "output matched deny-list pattern #0",
            new RequestUsage(7, 3, 0, 0, TimeSpan.Zero, TimeSpan.FromMilliseconds(2), TimeSpan.FromMilliseconds(5))));
        await log.WaitDurableAsync(sink.LastSequenceOf("r1"), Ct);

        var records = AuditReader.Query(_dir.Path, new AuditQuery(RequestId: "r1"));
        Assert.Equal([AuditEventType.RequestAdmitted, AuditEventType.RequestFinished], records.Select(r => r.Type));
        Assert.Equal("DeniedByPolicy", records[1].Field("finish_reason"));
        Assert.Equal("3", records[1].Field("completion_tokens"));
        Assert.Equal("127.0.0.1:5000", records[1].ClientAddress);
        Assert.Equal(records[1].Sequence, sink.LastSequenceOf("r1"));
    }

    [Fact]
    public async Task A_directory_has_one_writer_at_a_time()
    {
        await using (AuditLog.Open(_dir.Path))
        {
            var e = Assert.Throws<IOException>(() => AuditLog.Open(_dir.Path));
            Assert.Contains("open in another process", e.Message, StringComparison.Ordinal);
        }

        await using var again = AuditLog.Open(_dir.Path);
        Assert.True(again.DurableSequence >= 1);
    }

    [Fact]
    public async Task A_segment_whose_header_was_torn_at_creation_is_removed_on_open()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 3, new AuditLogOptions());
        var next = AuditReader.Verify(_dir.Path).LastSequence + 1;
        var torn = Path.Combine(_dir.Path, $"audit-{next:D20}.seg");
        await File.WriteAllBytesAsync(torn, new byte[20], Ct);
        Assert.NotNull(AuditReader.Verify(_dir.Path).Damage);

        await using (AuditLog.Open(_dir.Path))
        {
        }

        Assert.True(AuditReader.Verify(_dir.Path).IsValid);
        var recovery = Assert.Single(AuditReader.Query(_dir.Path, new AuditQuery()), r => r.Type == AuditEventType.Recovery);
        Assert.Equal("20", recovery.Field("bytes_removed"));
    }
}
