using System.Net.Sockets;
using RawInfer.Server;

namespace RawInfer.Server.Tests;

/// <summary>A client that stops reading fills only its own bounded buffer; everyone else is served meanwhile.</summary>
public class BackpressureTests
{
    private const int Bound = 8 * 1024;

    // Enough output to pass the bound with room to spare even when the server coalesces each stream's tokens into
    // few frames (under load it does): 32 × 450 tokens is ≥ 100 KB, the socket buffers on both ends hold ~16 KB. With
    // 8 streams the total could fall under buffers + bound, and the wait for a full buffer never ended.
    private const int SlowRequests = 32;
    private const int SlowTokens = 450;

    [Fact]
    public async Task In_pause_mode_a_non_reading_client_is_paused_within_its_bound_and_later_gets_every_token()
    {
        await using var h = new ServerHarness(new ServerOptions { MaxOutputBufferBytes = Bound, SocketSendBufferBytes = 4096 });
        var reference = (await h.Engine.GenerateAsync(new Engine.GenerationRequest { Prompt = "Once", MaxTokens = SlowTokens, IgnoreEos = true }, ServerHarness.Timeout())).TokenIds;
        using var slow = await StartSlowClientAsync(h);

        // Others are served while the slow client's buffer is full; the backlog never passes the bound by more than a frame.
        long maxPending = 0;
        await using var good = await h.ConnectAsync();
        var served = Task.WhenAll(Enumerable.Range(0, 3).Select(_ => good.CompleteAsync(new SubmitFrame { Prompt = "Tom had", MaxTokens = 64, IgnoreEos = true }, ServerHarness.Timeout())));
        while (!served.IsCompleted || h.Engine.GetStats().RunningRequests > 0)
        {
            maxPending = Math.Max(maxPending, h.Server.MaxPendingOutputBytes);
            await Task.Delay(2, TestContext.Current.CancellationToken);
        }

        Assert.All(await served, c => Assert.Equal(64, c.Done.Usage.CompletionTokens));
        Assert.True(h.Server.InFlightRequests > 0, "the slow client's streams should be paused, not finished");
        Assert.InRange(maxPending, Bound / 2, Bound + 1024);

        // Reading again resumes the paused streams: every token arrives, in order.
        var tokens = new Dictionary<uint, List<int>>();
        var done = 0;
        while (done < SlowRequests && await ServerHarness.ReadFrameAsync(slow) is { } frame)
        {
            if (frame.Payload is TokensFrame t)
            {
                (tokens.TryGetValue(frame.RequestId, out var list) ? list : tokens[frame.RequestId] = []).AddRange(t.TokenIds);
            }

            Assert.IsNotType<ErrorFrame>(frame.Payload);
            done += frame.Payload is DoneFrame ? 1 : 0;
        }

        Assert.Equal(SlowRequests, tokens.Count);
        Assert.All(tokens.Values, ids => Assert.Equal(reference, ids));
    }

    [Fact]
    public async Task In_fail_mode_the_overflowing_streams_end_with_overloaded_and_are_cancelled()
    {
        await using var h = new ServerHarness(new ServerOptions { MaxOutputBufferBytes = Bound, SocketSendBufferBytes = 4096, Backpressure = BackpressureMode.Fail });
        using var slow = await StartSlowClientAsync(h);
        await using var good = await h.ConnectAsync();
        var served = await good.CompleteAsync(new SubmitFrame { Prompt = "Tom had", MaxTokens = 64, IgnoreEos = true }, ServerHarness.Timeout());
        Assert.Equal(64, served.Done.Usage.CompletionTokens);
        await h.WaitForIdleEngineAsync();
        Assert.True(h.Engine.GetStats().GeneratedTokens < (SlowRequests * SlowTokens) + 64 + 1, "overflowing streams should be cancelled");

        var overloaded = 0;
        var ended = 0;
        while (ended < SlowRequests && await ServerHarness.ReadFrameAsync(slow) is { } frame)
        {
            if (frame.Payload is ErrorFrame { Code: ErrorCode.Overloaded })
            {
                overloaded++;
            }

            ended += frame.Payload is ErrorFrame or DoneFrame ? 1 : 0;
        }

        Assert.True(overloaded > 0, "no stream failed on its full buffer");
    }

    /// <summary>
    /// A client with a tiny receive buffer that submits long streams and reads nothing, returned once its backlog has
    /// reached the bound. Until then forward passes go one at a time, 5 ms apart: the streams fill the buffer a token
    /// at a time, and none can finish before it is full (with the engine free, a delay in the server's stream pumps
    /// could let all 32 end first).
    /// </summary>
    private static async Task<Socket> StartSlowClientAsync(ServerHarness h)
    {
        var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await slow.ConnectAsync(h.EndPoint, ServerHarness.Timeout());
        await ServerHarness.SendAsync(slow, FrameWriter.ToArray(0, ServerHarness.Hello(ServerHarness.ClientKey)));
        Assert.IsType<WelcomeFrame>((await ServerHarness.ReadFrameAsync(slow))?.Payload);
        h.Runner.Close();
        for (uint id = 1; id <= SlowRequests; id++)
        {
            await ServerHarness.SendAsync(slow, FrameWriter.ToArray(id, new SubmitFrame { Prompt = "Once", MaxTokens = SlowTokens, IgnoreEos = true }));
        }

        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (h.Server.MaxPendingOutputBytes < Bound)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60),
                $"the slow client's backlog stayed at {h.Server.MaxPendingOutputBytes} bytes, under the {Bound}-byte bound, for a minute " +
                $"(engine: {h.Engine.GetStats().RunningRequests} running, {h.Engine.GetStats().GeneratedTokens} tokens generated)");
            h.Runner.OpenFor(1);
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        h.Runner.Open();
        return slow;
    }
}
