using System.Buffers;
using System.Globalization;

namespace RawInfer.Protocol;

/// <summary>Turns a <see cref="RawFrame"/> into its typed payload; throws <see cref="ProtocolException"/> on bad bytes.</summary>
public static class FrameDecoder
{
    /// <summary>Decodes a frame a server received (HELLO, SUBMIT, CANCEL, STATS request, ADMIN, PING, PONG).</summary>
    /// <exception cref="ProtocolException">The payload or the type breaks the contract.</exception>
    public static FramePayload DecodeFromClient(in RawFrame frame) => Decode(frame, fromServer: false);

    /// <summary>Decodes a frame a client received (WELCOME, TOKENS, DONE, ERROR, STATS reply, ADMIN_RESULT, PING, PONG, GOAWAY).</summary>
    /// <exception cref="ProtocolException">The payload or the type breaks the contract.</exception>
    public static FramePayload DecodeFromServer(in RawFrame frame) => Decode(frame, fromServer: true);

    private static FramePayload Decode(in RawFrame frame, bool fromServer)
    {
        var length = checked((int)frame.Payload.Length);
        if (frame.Payload.IsSingleSegment)
        {
            return DecodeSpan(frame.Payload.FirstSpan, frame.Type, frame.Flags, fromServer);
        }

        // A payload split across segments is copied once; its size is already bounded by the frame limit.
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            frame.Payload.CopyTo(rented);
            return DecodeSpan(rented.AsSpan(0, length), frame.Type, frame.Flags, fromServer);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static FramePayload DecodeSpan(ReadOnlySpan<byte> payload, FrameType type, byte flags, bool fromServer)
    {
        var reader = new PayloadReader(payload, type);
        FramePayload result = (type, fromServer) switch
        {
            (FrameType.Hello, false) => HelloFrame.Read(ref reader),
            (FrameType.Submit, false) => SubmitFrame.Read(ref reader, flags),
            (FrameType.Cancel, false) => new EmptyFrame(FrameType.Cancel),
            (FrameType.Stats, false) => new EmptyFrame(FrameType.Stats, flags),
            (FrameType.Admin, false) => AdminFrame.Read(ref reader),
            (FrameType.Welcome, true) => WelcomeFrame.Read(ref reader),
            (FrameType.Tokens, true) => TokensFrame.Read(ref reader, flags),
            (FrameType.Done, true) => DoneFrame.Read(ref reader),
            (FrameType.Error, true) => ErrorFrame.Read(ref reader),
            (FrameType.Stats, true) => StatsFrame.Read(ref reader),
            (FrameType.GoAway, true) => GoAwayFrame.Read(ref reader),
            (FrameType.AdminResult, true) => AdminResultFrame.Read(ref reader, flags),
            (FrameType.Ping or FrameType.Pong, _) => new PingFrame(type, reader.U64("opaque")),
            _ => throw WrongDirection(type, fromServer),
        };
        reader.End();
        return result;
    }

    private static ProtocolException WrongDirection(FrameType type, bool fromServer) => new(string.Create(
        CultureInfo.InvariantCulture, $"{type} frames are not sent by the {(fromServer ? "server" : "client")}"));
}
