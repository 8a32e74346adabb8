using RawInfer.Server;

namespace RawInfer.Server.Tests;

/// <summary>Shutdown drains, deadlines close stuck or idle clients, and a client that does not read slows nobody else.</summary>
public class LifecycleTests
{
    [Fact]
    public async Task Shutdown_sends_goaway_and_lets_in_flight_requests_finish()
    {
        var h = new ServerHarness();
        await using var client = await h.ConnectAsync();
        h.Runner.Close();
        var streams = Enumerable.Range(0, 4).Select(i => client.CompleteAsync(
            new SubmitFrame { Prompt = "Once upon a time", MaxTokens = 60, IgnoreEos = true }, ServerHarness.Timeout())).ToArray();
        // All four SUBMITs must have reached the server before shutdown starts: one generating is not enough, the
        // others may still be in the socket and would rightly be refused with SHUTTING_DOWN (or reset, when the server
        // closes with a SUBMIT unread). With the engine held none of them can finish meanwhile, so the in-flight count
        // reaches four exactly when the last one is in. (Counting finished requests too counted one twice: the engine
        // counts a finish before the server drops the request from its table.)
        while (h.Server.InFlightRequests < 4)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        // Two forward passes and no more: a request has begun generating, and none can finish (60 tokens each) before
        // the drain has begun and the client holds the GOAWAY. Letting the engine run free here raced the shutdown: on a fast
        // machine all four could finish before GOAWAY was queued, which then came after their DONEs.
        var stepsBefore = h.Engine.GetStats().Steps;
        h.Runner.OpenFor(2);
        while (h.Engine.GetStats().Steps < stepsBefore + 2)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        var shutdown = h.Server.ShutdownAsync(TimeSpan.FromSeconds(60), ServerHarness.Timeout());
        var goAwayDeadline = ServerHarness.Timeout();
        while (client.GoAway is null)
        {
            await Task.Delay(5, goAwayDeadline);
        }

        var atDrain = h.Engine.GetStats();
        Assert.True(atDrain.GeneratedTokens > 0);
        Assert.Equal(0, atDrain.RequestsFinished);
        h.Runner.Open();
        var cancelled = await shutdown;
        Assert.Equal(0, cancelled);
        foreach (var completion in await Task.WhenAll(streams))
        {
            Assert.Equal(60, completion.Done.Usage.CompletionTokens);
        }

        Assert.NotNull(client.GoAway);
        Assert.Equal(4u, client.GoAway.LastRequestId);
        await client.Completion.WaitAsync(ServerHarness.Timeout());
        Assert.False(client.IsConnected);
        await Assert.ThrowsAnyAsync<Exception>(() => h.ConnectAsync());
        await h.DisposeAsync();
    }

    [Fact]
    public async Task Requests_still_running_at_the_drain_deadline_end_with_shutting_down()
    {
        var h = new ServerHarness();
        await using var client = await h.ConnectAsync();
        h.Runner.Close();
        var running = client.CompleteAsync(new SubmitFrame { Prompt = "Once", MaxTokens = 450, IgnoreEos = true }, ServerHarness.Timeout());
        while (h.Server.InFlightRequests == 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        // One forward pass and no more: the request has begun generating and cannot finish within the drain, however
        // fast the machine.
        h.Runner.OpenFor(1);
        while (h.Engine.GetStats().GeneratedTokens == 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        // The shutdown cancels the request once the drain has expired, and then waits for the engine to free it, which
        // takes a step: forward passes go through one at a time, slowly, far too few to finish 450 tokens.
        var shutdown = h.Server.ShutdownAsync(TimeSpan.FromMilliseconds(1), ServerHarness.Timeout());
        await h.Runner.TrickleUntilAsync(() => shutdown.IsCompleted, ServerHarness.Timeout());

        Assert.Equal(1, await shutdown);
        var e = await Assert.ThrowsAsync<RawInferException>(() => running);
        Assert.Equal(ErrorCode.ShuttingDown, e.Code);
        await h.WaitForIdleEngineAsync();
        await h.DisposeAsync();
    }

    [Fact]
    public async Task A_client_that_never_says_hello_is_closed_at_the_handshake_deadline()
    {
        await using var h = new ServerHarness(new ServerOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(200), HeartbeatInterval = TimeSpan.FromMilliseconds(20) });
        using var raw = await h.RawAsync();
        var error = Assert.IsType<ErrorFrame>(Assert.Single(await ServerHarness.ReadUntilClosedAsync(raw)).Payload);
        Assert.Equal(ErrorCode.ProtocolViolation, error.Code);
        Assert.Contains("no HELLO within", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_idle_connection_gets_goaway_and_is_closed()
    {
        await using var h = new ServerHarness(new ServerOptions { IdleTimeout = TimeSpan.FromMilliseconds(200), HeartbeatInterval = TimeSpan.FromMilliseconds(20) });
        using var raw = await h.RawAsync(hello: true);
        var goAway = Assert.IsType<GoAwayFrame>(Assert.Single(await ServerHarness.ReadUntilClosedAsync(raw)).Payload);
        Assert.Equal("idle timeout", goAway.Reason);
    }

    [Fact]
    public async Task A_slowloris_partial_frame_is_cut_off_by_the_minimum_data_rate()
    {
        await using var h = new ServerHarness(new ServerOptions
        {
            MinDataRateBytesPerSecond = 1000, MinDataRateGrace = TimeSpan.FromMilliseconds(200), HeartbeatInterval = TimeSpan.FromMilliseconds(20),
        });
        using var raw = await h.RawAsync(hello: true);
        var submit = FrameWriter.ToArray(1, new SubmitFrame { Prompt = "Once upon a time there was", MaxTokens = 4 });
        var closed = ServerHarness.ReadUntilClosedAsync(raw);
        for (var i = 0; i < submit.Length && !closed.IsCompleted; i++)
        {
            try
            {
                await ServerHarness.SendAsync(raw, submit[i..(i + 1)]);
            }
            catch (System.Net.Sockets.SocketException)
            {
                break; // already closed by the server
            }

            await Task.Delay(50, TestContext.Current.CancellationToken);
        }

        var error = Assert.IsType<ErrorFrame>(Assert.Single(await closed).Payload);
        Assert.Contains("slower than 1000 bytes/s", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Over_max_connections_the_newcomer_gets_overloaded()
    {
        await using var h = new ServerHarness(new ServerOptions { MaxConnections = 2 });
        await using var a = await h.ConnectAsync();
        await using var b = await h.ConnectAsync();
        var e = await Assert.ThrowsAsync<RawInferException>(() => h.ConnectAsync());
        Assert.Equal(ErrorCode.Overloaded, e.Code);
        Assert.NotNull(e.RetryAfter);
        Assert.Equal(2, (await a.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = 2 }, ServerHarness.Timeout())).Done.Usage.CompletionTokens);
    }
}
