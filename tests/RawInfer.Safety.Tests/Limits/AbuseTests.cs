using RawInfer.Safety.Limits;
using Xunit;

namespace RawInfer.Safety.Tests.Limits;

public sealed class AbuseTests
{
    [Fact]
    public void Signals_past_the_threshold_inside_the_window_suspend_for_the_cooldown()
    {
        var clock = new ManualTimeProvider();
        var monitor = new AbuseMonitor(new AbuseOptions { Threshold = 3, Window = TimeSpan.FromSeconds(10), Cooldown = TimeSpan.FromMinutes(1) }, clock);
        Assert.Null(monitor.Record("k", AbuseSignal.PolicyDenial));
        clock.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(monitor.Record("k", AbuseSignal.MalformedFrame));
        clock.Advance(TimeSpan.FromSeconds(6)); // the first signal left the window
        Assert.Null(monitor.Record("k", AbuseSignal.CancelChurn));
        Assert.Null(monitor.Record("other", AbuseSignal.CancelChurn));
        var suspension = monitor.Record("k", AbuseSignal.RateLimitRefusal);

        Assert.NotNull(suspension);
        Assert.Equal(clock.GetUtcNow() + TimeSpan.FromMinutes(1), suspension.Until);
        Assert.Equal(1, suspension.Signals[AbuseSignal.MalformedFrame]);
        Assert.False(suspension.Signals.ContainsKey(AbuseSignal.PolicyDenial));
        Assert.NotNull(monitor.GetSuspension("k"));
        Assert.Null(monitor.GetSuspension("other"));
        Assert.Single(monitor.ActiveSuspensions());

        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Null(monitor.GetSuspension("k"));
    }

    [Fact]
    public void An_admin_can_lift_a_suspension()
    {
        var clock = new ManualTimeProvider();
        var monitor = new AbuseMonitor(new AbuseOptions { Threshold = 1 }, clock);
        Assert.NotNull(monitor.Record("k", AbuseSignal.PolicyDenial));
        Assert.True(monitor.Lift("k"));
        Assert.Null(monitor.GetSuspension("k"));
        Assert.False(monitor.Lift("k"));
    }

    [Fact]
    public void Address_failures_double_the_wait_up_to_the_cap_and_are_forgotten()
    {
        var clock = new ManualTimeProvider();
        var throttle = new AddressThrottle(new AddressThrottleOptions
        {
            BaseDelay = TimeSpan.FromSeconds(1), MaxDelay = TimeSpan.FromSeconds(5), ForgetAfter = TimeSpan.FromMinutes(1),
        }, clock);
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor("1.2.3.4"));
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.RecordFailure("1.2.3.4"));
        Assert.Equal(TimeSpan.FromSeconds(2), throttle.RecordFailure("1.2.3.4"));
        Assert.Equal(TimeSpan.FromSeconds(4), throttle.RecordFailure("1.2.3.4"));
        Assert.Equal(TimeSpan.FromSeconds(5), throttle.RecordFailure("1.2.3.4"));
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(TimeSpan.FromSeconds(3), throttle.DelayFor("1.2.3.4"));
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor("5.6.7.8"));

        clock.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor("1.2.3.4"));
        Assert.Equal(TimeSpan.FromSeconds(1), throttle.RecordFailure("1.2.3.4"));
        throttle.RecordSuccess("1.2.3.4");
        Assert.Equal(TimeSpan.Zero, throttle.DelayFor("1.2.3.4"));
    }
}
