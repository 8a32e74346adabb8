using System.Buffers;

namespace RawInfer.Protocol;

/// <summary>
/// SharpFuzz-compatible entry point for the frame decoder: any exception other than <see cref="ProtocolException"/>
/// escaping <see cref="Fuzz"/> is a bug. Every decoded frame is also re-encoded and decoded again, and must come back
/// byte-identical (the codec has one canonical encoding).
/// </summary>
public static class FrameFuzzer
{
    /// <summary>Frame limit used while fuzzing, large enough for every corpus input.</summary>
    public const int MaxPayloadBytes = 64 * 1024;

    public static void Fuzz(ReadOnlySpan<byte> data)
    {
        var sequence = new ReadOnlySequence<byte>(data.ToArray());
        var reader = new SequenceReader<byte>(sequence);
        try
        {
            while (FrameReader.TryReadFrame(ref reader, MaxPayloadBytes, out var frame, out _) == OperationStatus.Done)
            {
                foreach (var fromServer in (ReadOnlySpan<bool>)[false, true])
                {
                    FramePayload payload;
                    try
                    {
                        payload = fromServer ? FrameDecoder.DecodeFromServer(frame) : FrameDecoder.DecodeFromClient(frame);
                    }
                    catch (ProtocolException)
                    {
                        continue;
                    }

                    CheckRoundTrip(frame.RequestId, payload, fromServer);
                }
            }
        }
        catch (ProtocolException)
        {
            // the protocol's own verdict on bad bytes: expected
        }
    }

    private static void CheckRoundTrip(uint requestId, FramePayload payload, bool fromServer)
    {
        var first = FrameWriter.ToArray(requestId, payload);
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(first));
        if (FrameReader.TryReadFrame(ref reader, int.MaxValue, out var again, out var violation) != OperationStatus.Done)
        {
            throw new InvalidOperationException($"a re-encoded {payload.Type} frame does not parse: {violation}");
        }

        var decoded = fromServer ? FrameDecoder.DecodeFromServer(again) : FrameDecoder.DecodeFromClient(again);
        var second = FrameWriter.ToArray(requestId, decoded);
        if (!first.AsSpan().SequenceEqual(second))
        {
            throw new InvalidOperationException($"{payload.Type} frame does not round-trip");
        }
    }
}
