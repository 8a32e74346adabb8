using System.Buffers.Binary;
using System.Net.Sockets;

namespace RawInfer.Server.Tests;

/// <summary>
/// The malformed-frame suite over real sockets (docs/protocol.md, "Malformed input"): each input gets exactly the
/// specified frames and a close, while a healthy connection opened beforehand keeps being served.
/// </summary>
public class MalformedFrameSocketTests
{
    public static TheoryData<string> Cases() =>
    [
        "huge-length-before-hello", "huge-length-after-hello", "zero-length-submit", "zero-length-hello", "unknown-type",
        "submit-before-hello", "ping-before-hello", "junk-after-valid-hello", "hello-twice", "bad-magic",
        "server-frame-from-client", "reserved-bytes", "undefined-flags", "request-id-zero", "invalid-utf8", "trailing-bytes",
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Each_malformed_input_gets_protocol_violation_and_a_close_and_others_keep_being_served(string name)
    {
        await using var h = new ServerHarness();
        await using var healthy = await h.ConnectAsync();
        var healthyStream = healthy.CompleteAsync(new SubmitFrame { Prompt = "Once", MaxTokens = 40, IgnoreEos = true }, ServerHarness.Timeout());

        var (bytes, afterHello) = Build(name);
        using var raw = await h.RawAsync();
        await ServerHarness.SendAsync(raw, bytes);
        var frames = await ServerHarness.ReadUntilClosedAsync(raw);

        if (afterHello)
        {
            Assert.IsType<WelcomeFrame>(frames[0].Payload);
            frames.RemoveAt(0);
        }

        var (requestId, payload) = Assert.Single(frames);
        Assert.Equal(0u, requestId);
        var error = Assert.IsType<ErrorFrame>(payload);
        Assert.Equal(ErrorCode.ProtocolViolation, error.Code);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));

        Assert.Equal(40, (await healthyStream).Done.Usage.CompletionTokens);
        Assert.Equal(3, (await healthy.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = 3 }, ServerHarness.Timeout())).Done.Usage.CompletionTokens);
    }

    [Fact]
    public async Task A_truncated_header_then_eof_closes_without_a_reply()
    {
        await using var h = new ServerHarness();
        using var raw = await h.RawAsync();
        await ServerHarness.SendAsync(raw, FrameWriter.ToArray(0, ServerHarness.Hello(ServerHarness.ClientKey))[..5]);
        raw.Shutdown(SocketShutdown.Send);
        Assert.Empty(await ServerHarness.ReadUntilClosedAsync(raw));
        await using var healthy = await h.ConnectAsync();
        Assert.Equal(2, (await healthy.CompleteAsync(new SubmitFrame { Prompt = "Hi", MaxTokens = 2 }, ServerHarness.Timeout())).Done.Usage.CompletionTokens);
    }

    [Fact]
    public async Task Valid_frames_split_at_every_byte_position_are_served_as_if_whole()
    {
        await using var h = new ServerHarness();
        var expected = (await h.ReferenceAsync("Once upon", 3)).TokenIds;
        var hello = FrameWriter.ToArray(0, ServerHarness.Hello(ServerHarness.ClientKey));
        var submit = FrameWriter.ToArray(1, new SubmitFrame { Prompt = "Once upon", MaxTokens = 3 });
        var ping = FrameWriter.ToArray(2, new PingFrame(FrameType.Ping, 99));
        byte[] all = [.. hello, .. submit, .. ping];
        for (var cut = 1; cut < all.Length; cut++)
        {
            using var raw = await h.RawAsync();
            await ServerHarness.SendAsync(raw, all[..cut]);
            await Task.Delay(1, TestContext.Current.CancellationToken); // let the server see the first part on its own
            await ServerHarness.SendAsync(raw, all[cut..]);
            var ids = new List<int>();
            var (gotDone, gotPong) = (false, false);
            Assert.IsType<WelcomeFrame>((await ServerHarness.ReadFrameAsync(raw))?.Payload);
            while (!(gotDone && gotPong) && await ServerHarness.ReadFrameAsync(raw) is { } frame)
            {
                switch (frame.Payload)
                {
                    case TokensFrame t:
                        ids.AddRange(t.TokenIds);
                        break;
                    case DoneFrame:
                        gotDone = true;
                        break;
                    case PingFrame { FrameKind: FrameType.Pong, Opaque: 99 }:
                        gotPong = true;
                        break;
                    default:
                        Assert.Fail($"cut {cut}: unexpected {frame.Payload}");
                        break;
                }
            }

            Assert.True(gotDone && gotPong, $"cut {cut}");
            Assert.Equal(expected, ids);
        }

        // and one connection fed a byte per send
        using var trickle = await h.RawAsync();
        foreach (var b in all)
        {
            await ServerHarness.SendAsync(trickle, [b]);
        }

        Assert.IsType<WelcomeFrame>((await ServerHarness.ReadFrameAsync(trickle))?.Payload);
    }

    private static (byte[] Bytes, bool AfterHello) Build(string name)
    {
        var hello = FrameWriter.ToArray(0, ServerHarness.Hello(ServerHarness.ClientKey));
        var submit = FrameWriter.ToArray(1, new SubmitFrame { Prompt = "Once", MaxTokens = 2 });
        return name switch
        {
            "huge-length-before-hello" => (Header(uint.MaxValue, FrameType.Hello), false),
            "huge-length-after-hello" => ([.. hello, .. Header((1u << 20) + 1, FrameType.Submit)], true),
            "zero-length-submit" => ([.. hello, .. Header(0, FrameType.Submit, flags: 1)], true),
            "zero-length-hello" => (Header(0, FrameType.Hello), false),
            "unknown-type" => ([.. hello, .. Header(0, (FrameType)0x42)], true),
            "submit-before-hello" => (submit, false),
            "ping-before-hello" => (FrameWriter.ToArray(0, new PingFrame(FrameType.Ping, 1)), false),
            "junk-after-valid-hello" => ([.. hello, 0xDE, 0xAD, 0xBE, 0xEF, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22], true),
            "hello-twice" => ([.. hello, .. hello], true),
            "bad-magic" => (Patch(hello, ProtocolConstants.HeaderSize, 0x00), false),
            "server-frame-from-client" => ([.. hello, .. FrameWriter.ToArray(0, new GoAwayFrame(0, TimeSpan.Zero, "x"))], true),
            "reserved-bytes" => ([.. hello, .. Patch(submit, 6, 0x01)], true),
            "undefined-flags" => ([.. hello, .. Patch(submit, 5, 0x80)], true),
            "request-id-zero" => ([.. hello, .. FrameWriter.ToArray(0, new SubmitFrame { Prompt = "Once", MaxTokens = 2 })], true),
            "invalid-utf8" => ([.. hello, .. Patch(submit, ProtocolConstants.HeaderSize + 4, 0xFF)], true),
            "trailing-bytes" => ([.. hello, .. Header(2, FrameType.Cancel), 0, 0], true),
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
        };
    }

    private static byte[] Header(uint length, FrameType type, byte flags = 0)
    {
        var header = new byte[ProtocolConstants.HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, length);
        header[4] = (byte)type;
        header[5] = flags;
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), 1);
        return header;
    }

    private static byte[] Patch(byte[] frame, int offset, byte value)
    {
        var copy = (byte[])frame.Clone();
        copy[offset] = value;
        return copy;
    }
}
