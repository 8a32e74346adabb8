using RawInfer.Safety.Limits;
using RawInfer.Server.Safety;
using static RawInfer.Server.Tests.Safety.SafetyFixtures;

namespace RawInfer.Server.Tests.Safety;

/// <summary>Cancelling is not a way around the output budget, and cancelling over and over is an abuse signal.</summary>
public sealed class CancelAccountingTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly ManualClock _clock = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_request_cancelled_mid_stream_is_charged_for_the_tokens_it_delivered()
    {
        await using var safety = Open(_dir, _clock, o => o with { KeyLimits = new RateLimitOptions(OutputTokensPerMinute: 100) });
        var request = Request("c1-r1", maxTokens: 60);
        Assert.True(safety.Admission.TryAdmit(ClientPrincipal, request).IsAllowed);
        Assert.Equal(40, safety.Limits.Remaining(ClientPrincipal).Output);

        safety.Admission.ClientCancelled(ClientPrincipal, request);
        safety.Admission.Complete(ClientPrincipal, request, usage: null, deliveredTokens: 25);

        // 60 reserved, 25 delivered: 35 come back, 25 stay spent.
        Assert.Equal(75, safety.Limits.Remaining(ClientPrincipal).Output);
    }

    [Fact]
    public async Task Cancel_churn_past_the_threshold_suspends_the_key_audited()
    {
        await using var safety = Open(_dir, _clock, o => o with { Abuse = new AbuseOptions { Threshold = 3 } });
        for (var i = 1; i <= 3; i++)
        {
            var request = Request($"c1-r{i}");
            Assert.True(safety.Admission.TryAdmit(ClientPrincipal, request).IsAllowed);
            safety.Admission.ClientCancelled(ClientPrincipal, request);
            safety.Admission.Complete(ClientPrincipal, request, usage: null);
        }

        Assert.NotNull(safety.Abuse.GetSuspension("client-1"));
        Assert.False(safety.Admission.TryAdmit(ClientPrincipal, Request("c1-r4")).IsAllowed);
        await safety.WaitDurableAsync("c1-r4", TestContext.Current.CancellationToken);
        var suspension = Assert.Single(Records(safety), r => r.Type == RawInfer.Safety.Audit.AuditEventType.KeySuspended);
        Assert.Equal("CancelChurn=3", suspension.Field("signals"));
    }
}
