using System.Net;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;
using static RawInfer.Server.Tests.Safety.SafetyFixtures;

namespace RawInfer.Server.Tests.Safety;

/// <summary>Connection events: audited, and feeding the address throttle and the abuse monitor.</summary>
public sealed class AuditConnectionEventsTests : IDisposable
{
    private static readonly IPEndPoint Remote = new(IPAddress.Parse("10.1.2.3"), 50123);
    private readonly TempDir _dir = new();
    private readonly ManualClock _clock = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Auth_failures_slow_the_address_doubling_and_a_success_clears_it()
    {
        await using var safety = Open(_dir, _clock, o => o with
        {
            AddressThrottle = new AddressThrottleOptions { BaseDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(30) },
        });
        var events = safety.ConnectionEvents;
        var otherPort = new IPEndPoint(Remote.Address, 50999);
        Assert.Equal(TimeSpan.Zero, safety.ConnectionDelay(otherPort));
        for (var id = 1; id <= 3; id++)
        {
            events.OnEvent(new ConnectionOpened(id, Remote, _clock.GetUtcNow()));
            events.OnEvent(new ConnectionRefused(id, Remote, _clock.GetUtcNow(), ErrorCode.Unauthorized, "unknown API key"));
            events.OnEvent(new ConnectionClosed(id, Remote, _clock.GetUtcNow(), "unknown API key"));
        }

        // the throttle is per address, whatever the port: 1 s, 2 s, 4 s
        Assert.Equal(TimeSpan.FromSeconds(4), safety.ConnectionDelay(otherPort));
        Assert.Equal(TimeSpan.Zero, safety.ConnectionDelay(new IPEndPoint(IPAddress.Parse("10.1.2.4"), 1)));
        Assert.Equal(0, events.Connections.Count);
        _clock.Advance(TimeSpan.FromSeconds(4));
        events.OnEvent(new ConnectionOpened(4, Remote, _clock.GetUtcNow()));
        events.OnEvent(new ConnectionRefused(4, Remote, _clock.GetUtcNow(), ErrorCode.Unauthorized, "unknown API key"));
        Assert.Equal(TimeSpan.FromSeconds(8), safety.ConnectionDelay(Remote));

        events.OnEvent(new ConnectionOpened(5, Remote, _clock.GetUtcNow()));
        events.OnEvent(new ConnectionAuthenticated(5, Remote, _clock.GetUtcNow(), "client-1"));
        Assert.Equal(TimeSpan.Zero, safety.ConnectionDelay(Remote));

        var records = await DurableRecordsAsync(safety);
        var refusals = records.Where(r => r.Type == AuditEventType.ConnectionRefused).ToList();
        Assert.Equal(4, refusals.Count);
        Assert.All(refusals, r => Assert.Equal("10.1.2.3", r.ClientAddress));
        Assert.Equal(["1000", "2000", "4000", "8000"], refusals.Select(r => r.Field("address_delay_ms")));
        Assert.Equal("Unauthorized", refusals[0].Field("code"));
        var authenticated = Assert.Single(records, r => r.Type == AuditEventType.ConnectionAuthenticated);
        Assert.Equal("client-1", authenticated.KeyId);
        Assert.Equal("5", authenticated.Field("connection"));
        Assert.Equal(3, records.Count(r => r.Field("event") == "connection_closed"));
    }

    [Fact]
    public async Task Malformed_frames_slow_the_address_and_count_against_the_key_until_it_is_suspended()
    {
        await using var safety = Open(_dir, _clock, o => o with { Abuse = new AbuseOptions { Threshold = 2 } });
        var events = safety.ConnectionEvents;
        events.OnEvent(new MalformedFrameReceived(1, Remote, _clock.GetUtcNow(), "frame length 99999999 above 4096"));
        Assert.True(safety.ConnectionDelay(Remote) > TimeSpan.Zero);
        Assert.Null(safety.Abuse.GetSuspension("client-1")); // before authentication no key is to blame

        for (var id = 2; id <= 3; id++)
        {
            events.OnEvent(new ConnectionOpened(id, Remote, _clock.GetUtcNow()));
            events.OnEvent(new ConnectionAuthenticated(id, Remote, _clock.GetUtcNow(), "client-1"));
            events.OnEvent(new MalformedFrameReceived(id, Remote, _clock.GetUtcNow(), "unknown frame type 77"));
        }

        Assert.NotNull(safety.Abuse.GetSuspension("client-1"));
        var records = await DurableRecordsAsync(safety);
        Assert.Equal(3, records.Count(r => r.Type == AuditEventType.MalformedFrame));
        Assert.Equal("unknown frame type 77", records.Last(r => r.Type == AuditEventType.MalformedFrame).Field("detail"));
        var suspended = Assert.Single(records, r => r.Type == AuditEventType.KeySuspended);
        Assert.Equal("client-1", suspended.KeyId);
        Assert.Equal("MalformedFrame=2", suspended.Field("signals"));
        Assert.Equal(ErrorCode.RateLimited, safety.Admission.TryAdmit(ClientPrincipal, Request("c3-r1")).Code);
    }

    [Fact]
    public async Task Request_records_carry_the_address_of_their_connection()
    {
        await using var safety = Open(_dir, _clock, null, "nope");
        safety.ConnectionEvents.OnEvent(new ConnectionOpened(31, Remote, _clock.GetUtcNow()));
        safety.ConnectionEvents.OnEvent(new ConnectionAuthenticated(31, Remote, _clock.GetUtcNow(), "client-1"));
        Assert.False(safety.Admission.TryAdmit(ClientPrincipal, Request("c31-r9", "nope")).IsAllowed);
        await safety.WaitDurableAsync("c31-r9", TestContext.Current.CancellationToken);
        Assert.Equal("10.1.2.3", Assert.Single(Records(safety, new AuditQuery(RequestId: "c31-r9"))).ClientAddress);
    }
}
