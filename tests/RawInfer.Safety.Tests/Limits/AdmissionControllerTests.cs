using System.Threading.RateLimiting;
using RawInfer.Safety.Access;
using RawInfer.Safety.Limits;
using Xunit;

namespace RawInfer.Safety.Tests.Limits;

public sealed class AdmissionControllerTests
{
    private static readonly Principal Alice = new("alice", KeyRole.Client, new KeyLimits(OutputTokensPerMinute: 100));
    private static readonly Principal Bob = new("bob", KeyRole.Client, new KeyLimits());

    [Fact]
    public void Requests_per_minute_refuse_with_retry_after_and_refill_with_the_clock()
    {
        var clock = new ManualTimeProvider();
        var admission = new AdmissionController(new RateLimitOptions(RequestsPerMinute: 3), time: clock);
        for (var i = 0; i < 3; i++)
        {
            Assert.True(admission.TryAdmit(Bob, 1, 1).IsAdmitted);
        }

        var refused = admission.TryAdmit(Bob, 1, 1);
        Assert.False(refused.IsAdmitted);
        Assert.Equal("key requests/min", refused.Limit);
        Assert.Equal(TimeSpan.FromSeconds(20), refused.RetryAfter); // 3 per minute: one every 20 s

        clock.Advance(TimeSpan.FromSeconds(19));
        Assert.False(admission.TryAdmit(Bob, 1, 1).IsAdmitted);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(admission.TryAdmit(Bob, 1, 1).IsAdmitted);
    }

    [Fact]
    public void Output_tokens_are_reserved_at_admission_and_the_unused_part_refunded()
    {
        var clock = new ManualTimeProvider();
        var admission = new AdmissionController(new RateLimitOptions(), time: clock);
        var first = admission.TryAdmit(Alice, 10, 80);
        Assert.True(first.IsAdmitted);
        Assert.Equal(20, admission.Remaining(Alice).Output);

        var second = admission.TryAdmit(Alice, 10, 30);
        Assert.False(second.IsAdmitted);
        Assert.Equal("key output_tokens/min", second.Limit);
        Assert.Equal(TimeSpan.FromSeconds(6), second.RetryAfter); // 10 tokens short at 100/min

        admission.Complete(first.Ticket!, outputTokensUsed: 25);
        admission.Complete(first.Ticket!, outputTokensUsed: 0); // a second completion changes nothing
        Assert.Equal(75, admission.Remaining(Alice).Output);
        Assert.True(admission.TryAdmit(Alice, 10, 30).IsAdmitted);

        var never = admission.TryAdmit(Alice, 1, 101);
        Assert.False(never.IsAdmitted);
        Assert.Null(never.RetryAfter); // larger than the whole budget
    }

    [Fact]
    public void Keys_are_partitioned_and_a_global_refusal_charges_no_key_bucket()
    {
        var clock = new ManualTimeProvider();
        var admission = new AdmissionController(new RateLimitOptions(InputTokensPerMinute: 100), new RateLimitOptions(InputTokensPerMinute: 150), clock);
        Assert.True(admission.TryAdmit(Alice, 100, 0).IsAdmitted);
        Assert.False(admission.TryAdmit(Alice, 1, 0).IsAdmitted); // alice's own bucket is empty

        var bob = admission.TryAdmit(Bob, 60, 0); // bob has 100, but only 50 are left globally
        Assert.False(bob.IsAdmitted);
        Assert.Equal("global input_tokens/min", bob.Limit);
        Assert.Equal(100, admission.Remaining(Bob).Input);
        Assert.True(admission.TryAdmit(Bob, 50, 0).IsAdmitted);
    }

    [Fact]
    public void The_bucket_is_a_rate_limiter_whose_refusals_carry_retry_after_metadata()
    {
        var clock = new ManualTimeProvider();
        RateLimiter limiter = new RefundableTokenBucket(60, clock);
        using (var all = limiter.AttemptAcquire(60))
        {
            Assert.True(all.IsAcquired);
        }

        using var refused = limiter.AttemptAcquire(2);
        Assert.False(refused.IsAcquired);
        Assert.True(refused.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.Equal(TimeSpan.FromSeconds(2), retryAfter);
        Assert.Equal(1, limiter.GetStatistics()!.TotalFailedLeases);
    }
}
