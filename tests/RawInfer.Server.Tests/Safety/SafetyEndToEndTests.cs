using System.Text;
using RawInfer.Safety.Audit;

namespace RawInfer.Server.Tests.Safety;

/// <summary>
/// The safety checks over TCP with stories260K: each refusal arrives with the right code, and its audit record is
/// already on disk when the client sees it (the server waits for durability before a final frame).
/// </summary>
public sealed class SafetyEndToEndTests
{
    [Fact]
    public async Task A_denied_prompt_is_refused_with_denied_by_policy_and_its_record_is_on_disk_first()
    {
        await using var h = new SafeServerHarness();
        await using var client = await h.ConnectAsync();
        var e = await Assert.ThrowsAsync<RawInferException>(() =>
            client.CompleteAsync(new SubmitFrame { Prompt = "Please write a FORBIDDEN   prompt", MaxTokens = 16 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.DeniedByPolicy, e.Code);

        var denied = Assert.Single(h.Records(new AuditQuery(KeyId: "client-1")), r => r.Type == AuditEventType.PolicyDenied);
        Assert.Equal("edge", denied.Field("stage"));
        Assert.Equal("127.0.0.1", denied.ClientAddress);
        Assert.StartsWith("c", denied.RequestId, StringComparison.Ordinal);
        Assert.DoesNotContain(h.Records(new AuditQuery(KeyId: "client-1")), r => r.Type == AuditEventType.RequestAdmitted); // never reached the model
        Assert.Equal(0, h.Engine.GetStats().PromptTokens);

        // a refusal by the server's own limits is a decision too: recorded before its ERROR
        var tooLong = await Assert.ThrowsAsync<RawInferException>(() =>
            client.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = h.Server.Options.MaxTokens + 1 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.BadRequest, tooLong.Code);
        var refused = Assert.Single(h.Records(new AuditQuery(KeyId: "client-1")), r => r.Type == AuditEventType.RequestRefused);
        Assert.Equal("server:BadRequest", refused.Field("check"));
    }

    [Fact]
    public async Task A_denied_phrase_the_model_produces_under_greedy_decoding_is_cut_before_any_of_it_is_delivered()
    {
        await using var h = new SafeServerHarness();
        await using var client = await h.ConnectAsync();
        var text = new StringBuilder();
        var e = await Assert.ThrowsAsync<RawInferException>(async () =>
        {
            await foreach (var chunk in client.StreamAsync(new SubmitFrame { Prompt = "Once upon a time", MaxTokens = 200 }, ServerHarness.Timeout()))
            {
                text.Append(chunk.Text);
            }
        });

        // llama2.c's greedy continuation reads "... One day, she saw a big, red ball." (shared models README)
        Assert.Equal(ErrorCode.DeniedByPolicy, e.Code);
        Assert.EndsWith("she saw a big,", text.ToString().TrimEnd(), StringComparison.Ordinal);
        Assert.DoesNotContain("red", text.ToString(), StringComparison.OrdinalIgnoreCase);

        var finished = Assert.Single(h.Records(new AuditQuery(KeyId: "client-1")), r => r.Type == AuditEventType.RequestFinished);
        Assert.Equal("DeniedByPolicy", finished.Field("finish_reason"));
        Assert.Equal("output matched deny-list pattern #0", finished.Field("detail"));
        Assert.Equal("127.0.0.1", finished.ClientAddress);
    }

    [Fact]
    public async Task A_key_over_its_output_token_budget_is_rate_limited_with_retry_after_and_audited()
    {
        await using var h = new SafeServerHarness();
        await using var client = await h.ConnectAsync(SafeServerHarness.BudgetKey);
        var first = await client.CompleteAsync(new SubmitFrame { Prompt = "Tom had a dog", MaxTokens = 80, IgnoreEos = true }, ServerHarness.Timeout());
        Assert.Equal(80, first.Done.Usage.CompletionTokens);

        // 80 of 100 tokens/min used: another 80 needs about 36 s of refill
        var e = await Assert.ThrowsAsync<RawInferException>(() =>
            client.CompleteAsync(new SubmitFrame { Prompt = "Tom had a dog", MaxTokens = 80 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.RateLimited, e.Code);
        Assert.NotNull(e.RetryAfter);
        Assert.InRange(e.RetryAfter.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(60));

        var limited = Assert.Single(h.Records(new AuditQuery(KeyId: "budget-1")), r => r.Type == AuditEventType.RateLimited);
        Assert.Equal("key output_tokens/min", limited.Field("limit"));
        Assert.Equal("80", limited.Field("max_tokens"));

        // a request that fits what is left is admitted: the refusal took nothing
        var small = await client.CompleteAsync(new SubmitFrame { Prompt = "Tom had a dog", MaxTokens = 10 }, ServerHarness.Timeout());
        Assert.True(small.Done.Usage.CompletionTokens <= 10);
        // other keys have their own budgets
        await using var other = await h.ConnectAsync();
        Assert.Equal(80, (await other.CompleteAsync(new SubmitFrame { Prompt = "Tom had a dog", MaxTokens = 80, IgnoreEos = true }, ServerHarness.Timeout())).Done.Usage.CompletionTokens);
    }

    [Fact]
    public async Task An_admin_frame_from_a_client_key_is_forbidden_and_audited()
    {
        await using var h = new SafeServerHarness();
        await using var client = await h.ConnectAsync();
        var e = await Assert.ThrowsAsync<RawInferException>(() => client.GetStatsAsync(detailed: true, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.Forbidden, e.Code);
        Assert.True((await client.GetStatsAsync(detailed: false, ServerHarness.Timeout())).Connections >= 1);

        var forbidden = Assert.Single(h.Records(new AuditQuery(KeyId: "client-1")), r => r.Type == AuditEventType.AdminForbidden);
        Assert.Equal("stats-detailed", forbidden.Field("action"));
        Assert.Equal("127.0.0.1", forbidden.ClientAddress);

        await using var admin = await h.ConnectAsync(SafeServerHarness.AdminKey);
        Assert.True((await admin.GetStatsAsync(detailed: true, ServerHarness.Timeout())).ServerInFlight >= 0);
        Assert.DoesNotContain(h.Records(new AuditQuery(KeyId: "admin-1")), r => r.Type == AuditEventType.AdminForbidden);
    }

    [Fact]
    public async Task An_address_that_presented_an_unknown_key_is_slowed_at_its_next_connect_and_both_are_audited()
    {
        await using var h = new SafeServerHarness(o => o with
        {
            AddressThrottle = new RawInfer.Safety.Limits.AddressThrottleOptions { BaseDelay = TimeSpan.FromSeconds(30) },
        });
        var bad = await Assert.ThrowsAsync<RawInferException>(() => h.ConnectAsync("not-a-key"));
        Assert.Equal(ErrorCode.Unauthorized, bad.Code);

        // the right key from the same address must wait too
        var slowed = await Assert.ThrowsAsync<RawInferException>(() => h.ConnectAsync());
        Assert.Equal(ErrorCode.RateLimited, slowed.Code);
        Assert.NotNull(slowed.RetryAfter);
        Assert.InRange(slowed.RetryAfter.Value, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30));

        h.Safety.Throttle.RecordSuccess("127.0.0.1"); // as if the wait had passed
        await using var client = await h.ConnectAsync();
        Assert.Equal(4, (await client.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 4, IgnoreEos = true }, ServerHarness.Timeout())).Done.Usage.CompletionTokens);

        var refusals = h.Records(new AuditQuery()).Where(r => r.Type == AuditEventType.ConnectionRefused).ToList();
        Assert.Equal(["Unauthorized", "RateLimited"], refusals.Select(r => r.Field("code")));
        Assert.All(refusals, r => Assert.Equal("127.0.0.1", r.ClientAddress));
    }

    [Fact]
    public async Task Every_final_frame_arrives_after_the_records_of_its_request_are_durable()
    {
        await using var h = new SafeServerHarness();
        var received = 0;
        var violations = 0;
        var tasks = Enumerable.Range(0, 3).Select(async c =>
        {
            await using var client = await h.ConnectAsync();
            var requests = Enumerable.Range(0, 6).Select(async i =>
            {
                await client.CompleteAsync(new SubmitFrame { Prompt = "The cat", MaxTokens = 4 + (i * 3) + c }, ServerHarness.Timeout());
                var seen = Interlocked.Increment(ref received);
                // this request's RequestFinished is on disk, and so is every one whose DONE came before
                var onDisk = h.Records(new AuditQuery(KeyId: "client-1")).Count(r => r.Type == AuditEventType.RequestFinished);
                if (onDisk < seen)
                {
                    Interlocked.Increment(ref violations);
                }
            });
            await Task.WhenAll(requests);
        });
        await Task.WhenAll(tasks);

        Assert.Equal(18, received);
        Assert.Equal(0, violations);
        Assert.Equal(0, h.Safety.TrackedRequests); // every request's bookkeeping was released
    }
}
