using RawInfer.Engine;
using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;
using RawInfer.Server.Safety;
using RawInfer.Tokenizers;
using static RawInfer.Server.Tests.Safety.SafetyFixtures;

namespace RawInfer.Server.Tests.Safety;

/// <summary>The composition: durability barrier, wiring into the options, admin actions, files.</summary>
public sealed class ServerSafetyTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualClock _clock = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task The_durability_wait_holds_until_the_engine_has_queued_the_terminal_record_and_it_is_on_disk()
    {
        await using var safety = Open(_dir, _clock);
        var sink = safety.EngineEvents;
        var request = Context("c1-r1");
        sink.OnEvent(new RequestAdmitted(request, _clock.GetUtcNow(), 4, 0));

        // the engine has written the final chunk but not yet raised RequestFinished
        var wait = safety.WaitDurableAsync("c1-r1", TestContext.Current.CancellationToken);
        await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.False(wait.IsCompleted);

        sink.OnEvent(new RequestFinished(request, _clock.GetUtcNow(), FinishReason.Length, null, Usage(8)));
        await wait;
        var records = Records(safety, new AuditQuery(RequestId: "c1-r1"));
        Assert.Equal([AuditEventType.RequestAdmitted, AuditEventType.RequestFinished], records.Select(r => r.Type));
        Assert.Equal("8", records[1].Field("completion_tokens"));

        safety.Release("c1-r1");
        Assert.Equal(0, safety.TrackedRequests);
        Assert.Equal(0, safety.AuditSink.LastSequenceOf("c1-r1"));
    }

    [Fact]
    public async Task A_request_released_before_the_engine_finished_it_leaves_no_bookkeeping_behind()
    {
        await using var safety = Open(_dir, _clock);
        var request = Context("c1-r2");
        safety.EngineEvents.OnEvent(new RequestAdmitted(request, _clock.GetUtcNow(), 4, 0));
        safety.Release("c1-r2"); // the client left; the engine still owes the terminal record
        Assert.Equal(1, safety.TrackedRequests);
        safety.EngineEvents.OnEvent(new RequestCancelled(request, _clock.GetUtcNow(), "decode"));
        safety.EngineEvents.OnEvent(new RequestFinished(request, _clock.GetUtcNow(), FinishReason.Cancelled, "cancelled while decode", Usage(2)));
        Assert.Equal(0, safety.TrackedRequests);
        Assert.Equal(0, safety.AuditSink.LastSequenceOf("c1-r2"));
        Assert.Equal(3, (await DurableRecordsAsync(safety, new AuditQuery(RequestId: "c1-r2"))).Count);
    }

    [Fact]
    public async Task A_refusal_whose_record_cannot_be_written_fails_its_durability_wait()
    {
        var safety = Open(_dir, _clock, null, "bad");
        await safety.Log.DisposeAsync();
        Assert.False(safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r1", "bad")).IsAllowed);
        await Assert.ThrowsAsync<IOException>(() => safety.WaitDurableAsync("c1-r1", TestContext.Current.CancellationToken));
        await safety.DisposeAsync();
    }

    [Fact]
    public async Task Apply_wires_the_guards_the_sink_the_admission_and_the_events()
    {
        await using var safety = Open(_dir, _clock);
        IRequestGuard existing = new RawInfer.Safety.DenyList.DenyListRequestGuard(() => RawInfer.Safety.DenyList.DenyListPolicy.Empty);
        var engine = safety.ApplyTo(new EngineOptions { RequestGuards = [existing] });
        Assert.Equal([existing, safety.RequestGuard], engine.RequestGuards);
        Assert.Equal([safety.OutputGuardFactory], engine.OutputGuards);
        Assert.Same(safety.EngineEvents, engine.EventSink);
        var server = safety.ApplyTo(new ServerOptions { MaxTokens = 7 });
        Assert.Same(safety.Admission, server.Admission);
        Assert.Same(safety.ConnectionEvents, server.Events);
        Assert.Equal(7, server.MaxTokens);
    }

    [Fact]
    public async Task Admin_actions_are_refused_to_client_keys_and_every_decision_is_audited()
    {
        await using var safety = Open(_dir, _clock, o => o with { Abuse = new AbuseOptions { Threshold = 1 } }, "x y z");
        Assert.False(safety.TryAuthorize(ClientPrincipal, "audit-query", connectionId: 9, out var forbidden));
        Assert.True(forbidden > 0);
        Assert.True(safety.TryAuthorize(AdminPrincipal, "audit-query", connectionId: 9, out var none));
        Assert.Equal(0, none);
        Assert.Throws<UnauthorizedAccessException>(() => safety.LiftSuspension(ClientPrincipal, "client-1"));

        Assert.False(safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r1", "x y z")).IsAllowed); // threshold 1: suspended
        Assert.Single(safety.ActiveSuspensions());
        Assert.True(safety.LiftSuspension(AdminPrincipal, "client-1", connectionId: 9));
        Assert.Empty(safety.ActiveSuspensions());
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r2")).IsAllowed);
        Assert.False(safety.ReloadKeys(AdminPrincipal).Succeeded); // an in-memory store has no file

        var records = await DurableRecordsAsync(safety);
        var refusal = Assert.Single(records, r => r.Type == AuditEventType.AdminForbidden);
        Assert.Equal(forbidden, refusal.Sequence);
        Assert.Equal("client-1", refusal.KeyId);
        Assert.Equal("audit-query", refusal.Field("action"));
        Assert.Equal("client-1", Assert.Single(records, r => r.Type == AuditEventType.SuspensionLifted).Field("target_key"));
        Assert.Single(records, r => r.Type == AuditEventType.KeysReloaded);

        var found = safety.QueryAudit(AdminPrincipal, new AuditQuery(KeyId: "client-1"), limit: 2);
        Assert.Equal(2, found.Count);
        Assert.All(found, r => Assert.Equal("client-1", r.KeyId));
    }

    [Fact]
    public async Task Open_reads_the_key_file_and_the_deny_list_file_and_reloads_both()
    {
        var keysFile = _dir.File("keys.json");
        var denyFile = _dir.File("deny.txt");
        ApiKeyStore.WriteConfig(keysFile, [ApiKeyStore.CreateEntry("ops", KeyRole.Admin, "ops-secret", new KeyLimits(RequestsPerMinute: 5))]);
        File.WriteAllLines(denyFile, ["# comment", "red ball", ""]);
        await using var safety = ServerSafety.Open(new ServerSafetyOptions
        {
            KeysFile = keysFile, DenyListFile = denyFile, AuditDirectory = _dir.File("audit"), TimeProvider = _clock,
        });
        var ops = safety.Authenticator.Authenticate("ops-secret"u8);
        Assert.NotNull(ops);
        Assert.True(ops.IsAdmin);
        Assert.Null(safety.Authenticator.Authenticate("wrong"u8));
        Assert.NotNull(safety.DenyList.Check("a Red Ball", "ops"));

        ApiKeyStore.WriteConfig(keysFile, [
            ApiKeyStore.CreateEntry("ops", KeyRole.Admin, "ops-secret"),
            ApiKeyStore.CreateEntry("new", KeyRole.Client, "new-secret"),
        ]);
        File.WriteAllLines(denyFile, ["blue ball"]);
        Assert.Equal(2, safety.ReloadKeys(ops).KeyCount);
        Assert.NotNull(safety.Authenticator.Authenticate("new-secret"u8));
        var reloaded = safety.ReloadDenyList(ops);
        Assert.True(reloaded.Succeeded, reloaded.Error);
        Assert.Equal(1, reloaded.PatternCount);
        Assert.Null(safety.DenyList.Check("a red ball"));
        Assert.NotNull(safety.DenyList.Check("a blue ball"));

        Assert.Throws<ArgumentException>(() => ServerSafety.Open(new ServerSafetyOptions { AuditDirectory = _dir.File("other") }));
    }

    [Fact]
    public async Task Token_id_prompts_are_decoded_for_the_edge_deny_list()
    {
        using var model = RawInfer.Models.Llama2c.Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        var decode = ServerSafety.Decoder(tokenizer);
        Assert.Equal("Once upon a time", decode(tokenizer.Encode("Once upon a time", addBos: true, addEos: false)));

        await using var safety = Open(_dir, _clock, o => o.WithTokenizer(tokenizer), "upon a");
        var ids = tokenizer.Encode("Once upon a time", addBos: true, addEos: false);
        var request = new GenerationRequest { RequestId = "c1-r1", PromptTokenIds = ids, KeyId = "client-1" };
        Assert.Equal(ErrorCode.DeniedByPolicy, safety.Admission.TryAdmit(ClientPrincipal, request).Code);
    }
}
