using RawInfer.Safety.Access;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;
using RawInfer.Server.Safety;
using static RawInfer.Server.Tests.Safety.SafetyFixtures;

namespace RawInfer.Server.Tests.Safety;

/// <summary>The admission adapter: suspension → deny-list at the edge → rate limits, each refusal audited.</summary>
public sealed class SafetyAdmissionControlTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualClock _clock = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_denied_prompt_is_refused_at_the_edge_and_audited_without_the_phrase()
    {
        await using var safety = Open(_dir, _clock, null, "red ball");
        var decision = safety.Admission.TryAdmit(ClientPrincipal, Request("c7-r1", "she saw a RED   Ball"));
        Assert.False(decision.IsAllowed);
        Assert.Equal(ErrorCode.DeniedByPolicy, decision.Code);
        Assert.DoesNotContain("red", decision.Message!, StringComparison.OrdinalIgnoreCase);

        await safety.WaitDurableAsync("c7-r1", TestContext.Current.CancellationToken);
        var record = Assert.Single(Records(safety, new AuditQuery(RequestId: "c7-r1")));
        Assert.Equal(AuditEventType.PolicyDenied, record.Type);
        Assert.Equal("client-1", record.KeyId);
        Assert.Equal("deny-list", record.Field("check"));
        Assert.Equal("edge", record.Field("stage"));
        Assert.DoesNotContain(record.Event.FieldList, f => f.Value.Contains("red", StringComparison.OrdinalIgnoreCase));

        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, Request("c7-r2", "she saw a blue ball")).IsAllowed);
    }

    [Fact]
    public async Task Output_tokens_are_reserved_at_admission_and_the_unused_part_refunded_on_complete()
    {
        await using var safety = Open(_dir, _clock, o => o with { KeyLimits = new RateLimitOptions(OutputTokensPerMinute: 100) });
        var first = Request("c1-r1", maxTokens: 60);
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, first).IsAllowed);

        var second = Request("c1-r2", maxTokens: 60);
        var refused = safety.Admission.TryAdmit(ClientPrincipal, second);
        Assert.False(refused.IsAllowed);
        Assert.Equal(ErrorCode.RateLimited, refused.Code);
        // 20 tokens more are needed at 100/min: 12 s
        Assert.Equal(TimeSpan.FromSeconds(12), refused.RetryAfter);

        safety.Admission.Complete(ClientPrincipal, first, Usage(completionTokens: 10));
        Assert.Equal(0, safety.Admission.OpenReservations);
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, second).IsAllowed); // 50 refunded: 90 left

        await safety.WaitDurableAsync("c1-r2", TestContext.Current.CancellationToken);
        var record = Assert.Single(Records(safety, new AuditQuery(RequestId: "c1-r2")));
        Assert.Equal(AuditEventType.RateLimited, record.Type);
        Assert.Equal("key output_tokens/min", record.Field("limit"));
        Assert.Equal("12000", record.Field("retry_after_ms"));
    }

    [Fact]
    public async Task A_request_that_never_ran_gets_its_whole_reservation_back_and_one_too_large_never_fits()
    {
        await using var safety = Open(_dir, _clock, o => o with { KeyLimits = new RateLimitOptions(OutputTokensPerMinute: 100) });
        var request = Request("c1-r1", maxTokens: 100);
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, request).IsAllowed);
        Assert.Equal(0, safety.Limits.Remaining(ClientPrincipal).Output);
        safety.Admission.Complete(ClientPrincipal, request, usage: null);
        Assert.Equal(100, safety.Limits.Remaining(ClientPrincipal).Output);
        safety.Admission.Complete(ClientPrincipal, request, usage: null); // a second complete refunds nothing more
        Assert.Equal(100, safety.Limits.Remaining(ClientPrincipal).Output);

        var tooLarge = safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r2", maxTokens: 101));
        Assert.Equal(ErrorCode.RateLimited, tooLarge.Code);
        Assert.Null(tooLarge.RetryAfter);
        Assert.Contains("never", tooLarge.Message!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Input_tokens_count_the_token_ids_or_an_estimate_from_the_text()
    {
        await using var safety = Open(_dir, _clock, o => o with { KeyLimits = new RateLimitOptions(InputTokensPerMinute: 10) });
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r1")).IsAllowed); // 4 token ids
        Assert.Equal(6, safety.Limits.Remaining(ClientPrincipal).Input);
        var text = new RawInfer.Engine.GenerationRequest { RequestId = "c1-r2", Prompt = new string('a', 40), KeyId = "client-1" };
        var refused = safety.Admission.TryAdmit(ClientPrincipal, text); // 40 bytes ≈ 10 tokens > 6 left
        Assert.Equal(ErrorCode.RateLimited, refused.Code);
        Assert.Equal(10, SafetyAdmissionControl.EstimateTokens(new string('a', 40)));
        Assert.Equal(1, SafetyAdmissionControl.EstimateTokens(""));
    }

    [Fact]
    public async Task Repeated_refusals_suspend_the_key_for_the_cooldown_audited_and_then_it_recovers()
    {
        await using var safety = Open(_dir, _clock,
            o => o with { Abuse = new AbuseOptions { Threshold = 3, Window = TimeSpan.FromMinutes(1), Cooldown = TimeSpan.FromMinutes(5) } },
            "forbidden words");
        for (var i = 1; i <= 3; i++)
        {
            Assert.Equal(ErrorCode.DeniedByPolicy, safety.Admission.TryAdmit(ClientPrincipal, Request($"c1-r{i}", "some forbidden words")).Code);
        }

        Assert.NotNull(safety.Abuse.GetSuspension("client-1"));
        var suspended = safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r4", "a harmless prompt"));
        Assert.Equal(ErrorCode.RateLimited, suspended.Code);
        Assert.Equal(TimeSpan.FromMinutes(5), suspended.RetryAfter);
        Assert.True(safety.Admission.TryAdmit(AdminPrincipal, Request("c2-r1", "a harmless prompt", keyId: "admin-1")).IsAllowed); // other keys go on

        await safety.WaitDurableAsync("c1-r4", TestContext.Current.CancellationToken);
        var suspension = Assert.Single(Records(safety), r => r.Type == AuditEventType.KeySuspended);
        Assert.Equal("client-1", suspension.KeyId);
        Assert.Equal("c1-r3", suspension.RequestId);
        Assert.Equal("PolicyDenial=3", suspension.Field("signals"));
        var refusal = Assert.Single(Records(safety, new AuditQuery(RequestId: "c1-r4")));
        Assert.Equal("suspension", refusal.Field("check"));

        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r5", "a harmless prompt")).IsAllowed);
    }

    [Fact]
    public async Task Concurrent_admissions_and_completions_leave_every_budget_whole()
    {
        await using var safety = Open(_dir, _clock, o => o with
        {
            KeyLimits = new RateLimitOptions(RequestsPerMinute: 1_000_000, OutputTokensPerMinute: 5_000),
            Abuse = new AbuseOptions { Threshold = int.MaxValue },
        });
        var admitted = 0;
        var refused = 0;
        await Parallel.ForAsync(0, 4000, TestContext.Current.CancellationToken, (i, _) =>
        {
            var request = Request($"c{i % 8}-r{i}", maxTokens: 1 + (i % 50));
            if (safety.Admission.TryAdmit(ClientPrincipal, request).IsAllowed)
            {
                Interlocked.Increment(ref admitted);
                safety.Admission.Complete(ClientPrincipal, request, Usage(0)); // the clock stands still: only refunds refill
            }
            else
            {
                Interlocked.Increment(ref refused);
            }

            return ValueTask.CompletedTask;
        });

        Assert.Equal(4000, admitted + refused);
        Assert.True(admitted > 0);
        Assert.Equal(0, safety.Admission.OpenReservations);
        Assert.Equal(5_000, safety.Limits.Remaining(ClientPrincipal).Output);
    }

    [Fact]
    public void Request_ids_made_by_the_server_map_back_to_their_connection()
    {
        var submit = new SubmitFrame { Prompt = "Hi", MaxTokens = 4 };
        var tokenizer = new FixedTokenizer();
        var request = RequestMapping.ToGenerationRequest(submit, ClientPrincipal, new ServerOptions(), tokenizer, connectionId: 4242, requestId: 17, out var invalid);
        Assert.Null(invalid);
        Assert.True(ConnectionDirectory.TryGetConnectionId(request!.RequestId, out var connection));
        Assert.Equal(4242, connection);
        Assert.False(ConnectionDirectory.TryGetConnectionId("req-5", out _));
        Assert.False(ConnectionDirectory.TryGetConnectionId("c-r1", out _));
        Assert.False(ConnectionDirectory.TryGetConnectionId(null, out _));
    }

    /// <summary>A tokenizer that maps each character to one id (enough for the request mapping).</summary>
    private sealed class FixedTokenizer : RawInfer.Tokenizers.ITokenizer
    {
        public int VocabSize => 256;

        public int BosId => 1;

        public int EosId => 2;

        public int[] Encode(string text, bool addBos, bool addEos) => [.. text.Select(c => (int)c % 256)];

        private static readonly byte[] Bytes = [.. Enumerable.Range(0, 256).Select(i => (byte)i)];

        public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId) => Bytes.AsSpan(tokenId, 1);
    }
}
