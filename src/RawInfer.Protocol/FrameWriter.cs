using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;

namespace RawInfer.Protocol;

/// <summary>Encodes frames: header plus payload, contiguous, in one pass after measuring.</summary>
public static class FrameWriter
{
    /// <summary>Bytes the whole frame (header included) takes.</summary>
    public static int Measure(FramePayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        return ProtocolConstants.HeaderSize + payload.MeasurePayload();
    }

    /// <summary>Writes the frame into <paramref name="destination"/> (at least <see cref="Measure"/> bytes); returns the bytes written.</summary>
    public static int Write(Span<byte> destination, uint requestId, FramePayload payload)
    {
        ArgumentNullException.ThrowIfNull(payload);
        var payloadBytes = payload.MeasurePayload();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)payloadBytes);
        destination[4] = (byte)payload.Type;
        destination[5] = payload.HeaderFlags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], requestId);
        var writer = new PayloadWriter(destination.Slice(ProtocolConstants.HeaderSize, payloadBytes));
        payload.WritePayload(ref writer);
        Debug.Assert(writer.Position == payloadBytes, "MeasurePayload and WritePayload disagree");
        return ProtocolConstants.HeaderSize + payloadBytes;
    }

    /// <summary>Writes the frame into a buffer writer (a PipeWriter) without flushing; returns the bytes written.</summary>
    public static int Write(IBufferWriter<byte> output, uint requestId, FramePayload payload)
    {
        ArgumentNullException.ThrowIfNull(output);
        var size = Measure(payload);
        var written = Write(output.GetSpan(size), requestId, payload);
        output.Advance(written);
        return written;
    }

    /// <summary>The frame as a new array (tests, tools).</summary>
    public static byte[] ToArray(uint requestId, FramePayload payload)
    {
        var bytes = new byte[Measure(payload)];
        Write(bytes, requestId, payload);
        return bytes;
    }
}
