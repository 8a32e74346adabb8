using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;

namespace RawInfer.Server.Tests.Safety;

/// <summary>
/// ADMIN frames over TCP with every safety check wired in: a client key is refused with FORBIDDEN and the refusal is
/// on disk first; an admin key's audit query, key and deny-list reloads and suspension lifting work and are audited;
/// suspensions show in STATS. The harness verifies the audit chain when it is disposed.
/// </summary>
public sealed class AdminFrameEndToEndTests
{
    [Fact]
    public async Task Every_admin_operation_from_a_client_key_is_forbidden_and_its_refusal_is_on_disk_first()
    {
        await using var h = new SafeServerHarness();
        await using var client = await h.ConnectAsync();
        var calls = new (string Action, Func<Task> Call)[]
        {
            ("audit-query", () => client.QueryAuditAsync(keyId: "admin-1", cancellationToken: ServerHarness.Timeout())),
            ("reload-keys", () => client.ReloadKeysAsync(ServerHarness.Timeout())),
            ("reload-deny-list", () => client.ReloadDenyListAsync(ServerHarness.Timeout())),
            ("lift-suspension", () => client.LiftSuspensionAsync("client-1", ServerHarness.Timeout())),
        };
        for (var i = 0; i < calls.Length; i++)
        {
            var e = await Assert.ThrowsAsync<RawInferException>(calls[i].Call);
            Assert.Equal(ErrorCode.Forbidden, e.Code);
            Assert.Contains(calls[i].Action, e.Message, StringComparison.Ordinal);
            var refusals = h.Records(new AuditQuery(KeyId: "client-1")).Where(r => r.Type == AuditEventType.AdminForbidden).ToList();
            Assert.Equal(calls[..(i + 1)].Select(c => c.Action), refusals.Select(r => r.Field("action")));
            Assert.All(refusals, r => Assert.Equal("127.0.0.1", r.ClientAddress));
        }

        // nothing was done, and the connection still serves
        Assert.DoesNotContain(h.Records(new AuditQuery()), r => r.Type is AuditEventType.AdminAction or AuditEventType.KeysReloaded or AuditEventType.SuspensionLifted);
        Assert.True((await client.GetStatsAsync(cancellationToken: ServerHarness.Timeout())).Connections >= 1);
    }

    [Fact]
    public async Task An_admin_audit_query_returns_what_is_on_disk_by_key_request_and_time()
    {
        await using var h = new SafeServerHarness();
        await using var client = await h.ConnectAsync();
        await client.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 4, IgnoreEos = true }, ServerHarness.Timeout());
        await using var admin = await h.ConnectAsync(SafeServerHarness.AdminKey);

        var byKey = await admin.QueryAuditAsync(keyId: "client-1", cancellationToken: ServerHarness.Timeout());
        Assert.True(byKey.Succeeded);
        Assert.False(byKey.Truncated);
        Assert.Equal(h.Records(new AuditQuery(KeyId: "client-1")).Select(r => r.Sequence), byKey.Records.Select(r => r.Sequence));
        var finished = Assert.Single(byKey.Records, r => r.Type == nameof(AuditEventType.RequestFinished));
        Assert.StartsWith($"c{client.Welcome.SessionId}-r", finished.RequestId, StringComparison.Ordinal);
        Assert.Contains("completion_tokens=4", finished.Fields, StringComparison.Ordinal);
        Assert.Equal("127.0.0.1", finished.ClientAddress);

        var byRequest = await admin.QueryAuditAsync(requestId: finished.RequestId, cancellationToken: ServerHarness.Timeout());
        Assert.Equal(h.Records(new AuditQuery(RequestId: finished.RequestId)).Select(r => r.Sequence), byRequest.Records.Select(r => r.Sequence));
        Assert.Contains(byRequest.Records, r => r.Type == nameof(AuditEventType.RequestAdmitted));
        Assert.All(byRequest.Records, r => Assert.Equal(finished.RequestId, r.RequestId));

        var instant = await admin.QueryAuditAsync(since: finished.Timestamp, until: finished.Timestamp, cancellationToken: ServerHarness.Timeout());
        Assert.Contains(instant.Records, r => r.Sequence == finished.Sequence);
        Assert.All(instant.Records, r => Assert.Equal(finished.Timestamp, r.Timestamp));
        var future = await admin.QueryAuditAsync(since: finished.Timestamp.AddDays(1), cancellationToken: ServerHarness.Timeout());
        Assert.Equal(0, future.MatchedRecords);
        Assert.Empty(future.Records);

        // a limit keeps the newest matches and says so
        var newest = await admin.QueryAuditAsync(keyId: "client-1", maxRecords: 1, cancellationToken: ServerHarness.Timeout());
        Assert.True(newest.Truncated);
        Assert.Equal(byKey.MatchedRecords, newest.MatchedRecords);
        Assert.Equal(byKey.Records[^1].Sequence, Assert.Single(newest.Records).Sequence);

        // each query is an audited admin action, on disk before its answer
        var queries = h.Records(new AuditQuery(KeyId: "admin-1")).Where(r => r.Field("action") == "audit-query").ToList();
        Assert.Equal(5, queries.Count);
        Assert.Equal("client-1", queries[0].Field("key"));
    }

    [Fact]
    public async Task An_audit_query_larger_than_a_frame_keeps_the_newest_records_that_fit()
    {
        await using var h = new SafeServerHarness();
        await using (var client = await h.ConnectAsync())
        {
            await client.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 2 }, ServerHarness.Timeout());
        }

        // Half the size of everything on disk now: the log only grows, so the second answer cannot fit whole. (A
        // fixed limit depended on how many connection records were durable yet, and once fitted everything.)
        var whole = await h.Safety.ExecuteAsync(0, SafetyFixtures.AdminPrincipal, AdminFrame.QueryAudit(), 1 << 20, ServerHarness.Timeout());
        Assert.False(whole.Truncated);
        var maxPayload = (FrameWriter.Measure(whole) - ProtocolConstants.HeaderSize) / 2;
        var before = h.Records(new AuditQuery());
        var result = await h.Safety.ExecuteAsync(0, SafetyFixtures.AdminPrincipal, AdminFrame.QueryAudit(), maxPayload, ServerHarness.Timeout());
        Assert.True(result.Truncated);
        Assert.NotEmpty(result.Records);
        Assert.True(FrameWriter.Measure(result) - ProtocolConstants.HeaderSize <= maxPayload);
        Assert.True(result.MatchedRecords >= before.Count);

        // the newest records, consecutive (the query's own record may or may not have been on disk yet)
        var last = result.Records[^1].Sequence;
        Assert.True(last >= before[^1].Sequence);
        var expected = h.Records(new AuditQuery()).Where(r => r.Sequence <= last).Select(r => r.Sequence).TakeLast(result.Records.Count);
        Assert.Equal(expected, result.Records.Select(r => r.Sequence));
    }

    [Fact]
    public async Task An_admin_key_reloads_the_key_file_and_the_deny_list_over_the_wire()
    {
        using var files = new TempDir();
        var denyFile = files.File("deny.txt");
        File.WriteAllLines(denyFile, ["# phrases", "red ball"]);
        await using var h = new SafeServerHarness(o => o with { DenyListFile = denyFile }, keysFromFile: true);
        await using var admin = await h.ConnectAsync(SafeServerHarness.AdminKey);

        h.WriteKeys(ApiKeyStore.CreateEntry("new-1", KeyRole.Client, "new-secret"));
        Assert.Null(h.Safety.Authenticator.Authenticate("new-secret"u8)); // not before the reload
        var keys = await admin.ReloadKeysAsync(ServerHarness.Timeout());
        Assert.True(keys.Succeeded, keys.Message);
        Assert.Equal(4, keys.Count);
        await using (var fresh = await h.ConnectAsync("new-secret"))
        {
            var done = await fresh.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 3, IgnoreEos = true }, ServerHarness.Timeout());
            Assert.Equal(3, done.Done.Usage.CompletionTokens);
        }

        File.WriteAllLines(denyFile, ["blue cup", "green hat"]);
        var deny = await admin.ReloadDenyListAsync(ServerHarness.Timeout());
        Assert.True(deny.Succeeded, deny.Message);
        Assert.Equal(2, deny.Count);
        await using var client = await h.ConnectAsync();
        var e = await Assert.ThrowsAsync<RawInferException>(() =>
            client.CompleteAsync(new SubmitFrame { Prompt = "a Green  Hat", MaxTokens = 4 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.DeniedByPolicy, e.Code);

        var records = h.Records(new AuditQuery(KeyId: "admin-1"));
        Assert.Equal("4", Assert.Single(records, r => r.Type == AuditEventType.KeysReloaded).Field("keys"));
        Assert.Equal("2", Assert.Single(records, r => r.Field("action") == "reload-deny-list").Field("patterns"));
    }

    [Fact]
    public async Task A_suspension_from_repeated_refusals_shows_in_stats_until_an_admin_lifts_it()
    {
        await using var h = new SafeServerHarness(o => o with { Abuse = new AbuseOptions { Threshold = 2 } });
        await using var client = await h.ConnectAsync();
        for (var i = 0; i < 2; i++)
        {
            var denied = await Assert.ThrowsAsync<RawInferException>(() =>
                client.CompleteAsync(new SubmitFrame { Prompt = "a forbidden prompt", MaxTokens = 4 }, ServerHarness.Timeout()));
            Assert.Equal(ErrorCode.DeniedByPolicy, denied.Code);
        }

        var suspended = await Assert.ThrowsAsync<RawInferException>(() =>
            client.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 4 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.RateLimited, suspended.Code);

        // the key sees its own suspension; another client key sees none; an admin sees all of them in detailed STATS
        var own = Assert.Single((await client.GetStatsAsync(cancellationToken: ServerHarness.Timeout())).Suspensions);
        Assert.Equal(("client-1", "PolicyDenial=2"), (own.KeyId, own.Reason));
        var keySuspended = Assert.Single(h.Records(new AuditQuery(KeyId: "client-1")), r => r.Type == AuditEventType.KeySuspended);
        var until = DateTimeOffset.Parse(keySuspended.Field("until")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(until - own.Until, TimeSpan.Zero, TimeSpan.FromTicks(9)); // the wire carries whole µs
        await using var other = await h.ConnectAsync(SafeServerHarness.BudgetKey);
        Assert.Empty((await other.GetStatsAsync(cancellationToken: ServerHarness.Timeout())).Suspensions);
        await using var admin = await h.ConnectAsync(SafeServerHarness.AdminKey);
        Assert.Empty((await admin.GetStatsAsync(detailed: false, ServerHarness.Timeout())).Suspensions);
        Assert.Equal("client-1", Assert.Single((await admin.GetStatsAsync(detailed: true, ServerHarness.Timeout())).Suspensions).KeyId);

        Assert.True(await admin.LiftSuspensionAsync("client-1", ServerHarness.Timeout()));
        Assert.False(await admin.LiftSuspensionAsync("client-1", ServerHarness.Timeout())); // none in force any more
        Assert.Empty((await admin.GetStatsAsync(detailed: true, ServerHarness.Timeout())).Suspensions);
        Assert.Empty((await client.GetStatsAsync(cancellationToken: ServerHarness.Timeout())).Suspensions);
        var served = await client.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 4, IgnoreEos = true }, ServerHarness.Timeout());
        Assert.Equal(4, served.Done.Usage.CompletionTokens);

        var lifts = h.Records(new AuditQuery(KeyId: "admin-1")).Where(r => r.Type == AuditEventType.SuspensionLifted).ToList();
        Assert.Equal(["true", "false"], lifts.Select(r => r.Field("was_suspended")));
        Assert.All(lifts, r => Assert.Equal("client-1", r.Field("target_key")));
    }
}
