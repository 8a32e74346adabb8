using RawInfer.Server;

namespace RawInfer.Server.Tests;

/// <summary>The protocol end to end on real sockets: handshake, keys, multiplexing, cancel, disconnect, stats.</summary>
public class ServerTests
{
    [Fact]
    public async Task Handshake_returns_welcome_with_the_configured_limits()
    {
        await using var h = new ServerHarness(new ServerOptions { MaxInFlightPerConnection = 7, MaxTokens = 99, MaxFrameBytes = 65536 });
        await using var client = await h.ConnectAsync();
        Assert.Equal(ProtocolConstants.Version, client.Welcome.Version);
        Assert.Equal(7, client.Welcome.MaxInFlightRequests);
        Assert.Equal(99, client.Welcome.MaxTokens);
        Assert.Equal(65536, client.Welcome.MaxFrameBytes);
        await using var other = await h.ConnectAsync();
        Assert.NotEqual(client.Welcome.SessionId, other.Welcome.SessionId);
        Assert.True(await client.PingAsync(ServerHarness.Timeout()) >= TimeSpan.Zero);
    }

    [Fact]
    public async Task A_bad_key_gets_unauthorized_and_the_connection_closes()
    {
        await using var h = new ServerHarness();
        var e = await Assert.ThrowsAsync<RawInferException>(() => h.ConnectAsync("wrong-key"));
        Assert.Equal(ErrorCode.Unauthorized, e.Code);

        using var raw = await h.RawAsync();
        await ServerHarness.SendAsync(raw, FrameWriter.ToArray(0, ServerHarness.Hello("")));
        var frames = await ServerHarness.ReadUntilClosedAsync(raw);
        var error = Assert.IsType<ErrorFrame>(Assert.Single(frames).Payload);
        Assert.Equal(ErrorCode.Unauthorized, error.Code);
    }

    [Fact]
    public async Task Many_requests_multiplexed_on_one_connection_each_get_their_own_tokens_in_order()
    {
        await using var h = new ServerHarness();
        string[] prompts = ["Once upon a time", "Tom had a dog", "The sun was", "One day", "Lily liked", "A big bird", "The cat", "Sam went"];
        var expected = new List<int[]>();
        foreach (var prompt in prompts)
        {
            expected.Add([.. (await h.ReferenceAsync(prompt, 24)).TokenIds]);
        }

        await using var client = await h.ConnectAsync();
        var tasks = prompts.Select(async p =>
        {
            var ids = new List<int>();
            DoneFrame? done = null;
            await foreach (var chunk in client.StreamAsync(new SubmitFrame { Prompt = p, MaxTokens = 24 }, ServerHarness.Timeout()))
            {
                ids.AddRange(chunk.TokenIds);
                done ??= chunk.Done;
            }

            Assert.NotNull(done);
            Assert.Equal(ids.Count, done.Usage.CompletionTokens);
            return ids.ToArray();
        }).ToArray();
        var results = await Task.WhenAll(tasks);
        for (var i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(expected[i], results[i]);
        }

        // the non-streamed form and the blocking call give the same text
        var whole = await client.CompleteAsync(new SubmitFrame { Prompt = prompts[0], MaxTokens = 24, Stream = false }, ServerHarness.Timeout());
        Assert.Equal(expected[0], whole.TokenIds);
        var sync = await Task.Run(() => client.Complete(new SubmitFrame { Prompt = prompts[1], MaxTokens = 24 }));
        Assert.Equal(expected[1], sync.TokenIds);
    }

    [Fact]
    public async Task Cancel_ends_the_request_with_cancelled_and_frees_its_blocks()
    {
        await using var h = new ServerHarness();
        await using var client = await h.ConnectAsync();
        using var cancel = new CancellationTokenSource();
        var received = 0;

        // Forward passes one at a time, 20 ms apart: the CANCEL always reaches the server long before 400 tokens
        // could be made (the engine free, a slow client or a loaded machine could let the request finish first).
        h.Runner.Close();
        var streaming = Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var chunk in client.StreamAsync(new SubmitFrame { Prompt = "Once", MaxTokens = 400, IgnoreEos = true }, cancel.Token))
            {
                received += chunk.TokenIds.Count;
                if (received >= 3)
                {
                    await cancel.CancelAsync();
                }
            }
        });
        await h.Runner.TrickleUntilAsync(() => streaming.IsCompleted, ServerHarness.Timeout());
        await streaming;
        h.Runner.Open();
        Assert.True(received < 400);
        await h.WaitForIdleEngineAsync();

        // the connection goes on serving
        var after = await client.CompleteAsync(new SubmitFrame { Prompt = "Once", MaxTokens = 5 }, ServerHarness.Timeout());
        Assert.Equal(5, after.Done.Usage.CompletionTokens);
    }

    [Fact]
    public async Task A_disconnect_mid_stream_cancels_the_requests_in_the_engine_and_frees_their_blocks()
    {
        await using var h = new ServerHarness();
        var raw = await h.RawAsync(hello: true);
        h.Runner.Close();
        for (uint id = 1; id <= 4; id++)
        {
            await ServerHarness.SendAsync(raw, FrameWriter.ToArray(id, new SubmitFrame { Prompt = "Once upon", MaxTokens = 450, IgnoreEos = true }));
        }

        // Forward passes one at a time from here, so the requests are still running when the client goes, however fast
        // the machine; the engine still steps, and each step is where a cancellation takes effect.
        h.Runner.OpenFor(1);
        Assert.IsType<TokensFrame>((await ServerHarness.ReadFrameAsync(raw))?.Payload);
        Assert.True(h.Engine.GetStats().KvBlocksUsed > 0);
        raw.Close();

        // the server drops the connection once its requests have ended in the engine, which may be just after idle
        await h.Runner.TrickleUntilAsync(() => h.Server.ConnectionCount == 0, ServerHarness.Timeout(30));
        await h.WaitForIdleEngineAsync();

        Assert.True(h.Engine.GetStats().GeneratedTokens < 4 * 450, "the requests ran to the end instead of being cancelled");
    }

    [Fact]
    public async Task Stats_are_served_and_the_detailed_form_needs_an_admin_key()
    {
        await using var h = new ServerHarness();
        await using var client = await h.ConnectAsync();
        await client.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = 4 }, ServerHarness.Timeout());
        var stats = await client.GetStatsAsync(cancellationToken: ServerHarness.Timeout());
        Assert.True(stats.GeneratedTokens >= 4);
        Assert.True(stats.KvBlocksTotal > 0);
        Assert.Equal(1, stats.Connections);
        Assert.Equal(0, stats.EngineSteps); // detailed part withheld

        var e = await Assert.ThrowsAsync<RawInferException>(() => client.GetStatsAsync(detailed: true, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.Forbidden, e.Code);

        await using var admin = await h.ConnectAsync(ServerHarness.AdminKey);
        var detailed = await admin.GetStatsAsync(detailed: true, ServerHarness.Timeout());
        Assert.True(detailed.EngineSteps > 0);
        Assert.Empty(detailed.Suspensions);
    }

    [Fact]
    public async Task Admin_frames_without_safety_wired_in_are_answered_as_failed_or_forbidden()
    {
        await using var h = new ServerHarness();
        await using var admin = await h.ConnectAsync(ServerHarness.AdminKey);
        var reload = await admin.ReloadKeysAsync(ServerHarness.Timeout());
        Assert.False(reload.Succeeded);
        Assert.Contains("no admin operations", reload.Message, StringComparison.Ordinal);

        await using var client = await h.ConnectAsync();
        var e = await Assert.ThrowsAsync<RawInferException>(() => client.QueryAuditAsync(cancellationToken: ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.Forbidden, e.Code);
        await Assert.ThrowsAsync<ArgumentException>(() => admin.AdminAsync(new AdminFrame { Operation = AdminOperation.LiftSuspension }, ServerHarness.Timeout()));
        Assert.True(admin.IsConnected); // refused before anything was sent
    }

    [Fact]
    public async Task Limits_refuse_with_bad_request_or_overloaded_naming_the_limit()
    {
        await using var h = new ServerHarness(new ServerOptions { MaxTokens = 50, MaxPromptTokens = 8, MaxInFlightPerConnection = 2 });
        await using var client = await h.ConnectAsync();
        var tooMany = await Assert.ThrowsAsync<RawInferException>(() => client.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = 51 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.BadRequest, tooMany.Code);
        Assert.Contains("0..50", tooMany.Message, StringComparison.Ordinal);
        var tooLong = await Assert.ThrowsAsync<RawInferException>(() => client.CompleteAsync(new SubmitFrame { PromptTokenIds = [.. Enumerable.Repeat(5, 9)], MaxTokens = 1 }, ServerHarness.Timeout()));
        Assert.Contains("limit is 8", tooLong.Message, StringComparison.Ordinal);
        var badSampling = await Assert.ThrowsAsync<RawInferException>(() => client.CompleteAsync(new SubmitFrame { Prompt = "Hi", Temperature = -1 }, ServerHarness.Timeout()));
        Assert.Equal(ErrorCode.BadRequest, badSampling.Code);

        // a raw client that ignores WELCOME's in-flight limit gets OVERLOADED with a retry hint for the third. The engine
        // is held until the refusal arrives: unheld, the first request could finish (and free its slot) before the server
        // read the third SUBMIT, as it did on a loaded machine where the test thread was descheduled between the sends.
        using var raw = await h.RawAsync(hello: true);
        h.Runner.Close();
        for (uint id = 1; id <= 3; id++)
        {
            await ServerHarness.SendAsync(raw, FrameWriter.ToArray(id, new SubmitFrame { Prompt = "Once", MaxTokens = 40, IgnoreEos = true }));
        }

        var errors = new List<(uint, ErrorFrame)>();
        var done = 0;
        while (done < 2 && await ServerHarness.ReadFrameAsync(raw) is { } frame)
        {
            if (frame.Payload is ErrorFrame error)
            {
                errors.Add((frame.RequestId, error));
                h.Runner.Open(); // the two admitted requests may run to the end now
            }

            done += frame.Payload is DoneFrame ? 1 : 0;
        }

        var (refusedId, refused) = Assert.Single(errors);
        Assert.Equal(3u, refusedId);
        Assert.Equal(ErrorCode.Overloaded, refused.Code);
        Assert.NotNull(refused.RetryAfter);
    }
}
