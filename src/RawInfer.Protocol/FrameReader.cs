using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;

namespace RawInfer.Protocol;

/// <summary>A framed message as received: header fields and the payload, still in the receive buffer.</summary>
public readonly struct RawFrame(FrameType type, byte flags, uint requestId, ReadOnlySequence<byte> payload)
{
    public FrameType Type { get; } = type;

    public byte Flags { get; } = flags;

    public uint RequestId { get; } = requestId;

    /// <summary>Valid only until the buffer it came from is advanced past.</summary>
    public ReadOnlySequence<byte> Payload { get; } = payload;
}

/// <summary>Splits a byte stream into frames (docs/protocol.md, "Framing").</summary>
public static class FrameReader
{
    /// <summary>
    /// Reads one frame from <paramref name="reader"/>. <see cref="OperationStatus.Done"/>: the frame is returned and
    /// the reader advanced past it. <see cref="OperationStatus.NeedMoreData"/>: nothing consumed. 
    /// <see cref="OperationStatus.InvalidData"/>: <paramref name="violation"/> says why; the header is judged before
    /// its payload is waited for, so an oversized length is refused without buffering it.
    /// </summary>
    public static OperationStatus TryReadFrame(
        ref SequenceReader<byte> reader, int maxPayloadBytes, out RawFrame frame, out string? violation)
    {
        frame = default;
        violation = null;
        Span<byte> header = stackalloc byte[ProtocolConstants.HeaderSize];
        if (!reader.TryCopyTo(header))
        {
            return OperationStatus.NeedMoreData;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var type = (FrameType)header[4];
        var flags = header[5];
        var reserved = BinaryPrimitives.ReadUInt16LittleEndian(header[6..]);
        var requestId = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        violation = CheckHeader(length, type, flags, reserved, maxPayloadBytes);
        if (violation is not null)
        {
            return OperationStatus.InvalidData;
        }

        if (reader.Remaining < ProtocolConstants.HeaderSize + length)
        {
            return OperationStatus.NeedMoreData;
        }

        var payload = reader.UnreadSequence.Slice(ProtocolConstants.HeaderSize, length);
        reader.Advance(ProtocolConstants.HeaderSize + length);
        frame = new RawFrame(type, flags, requestId, payload);
        return OperationStatus.Done;
    }

    /// <summary>Flags each type defines; any other bit set is a violation.</summary>
    public static byte AllowedFlags(FrameType type) => type switch
    {
        FrameType.Submit => 0x1F,
        FrameType.Tokens or FrameType.Stats or FrameType.AdminResult => 0x01,
        _ => 0,
    };

    private static string? CheckHeader(uint length, FrameType type, byte flags, ushort reserved, int maxPayloadBytes)
    {
        if (type is < FrameType.Hello or > FrameType.AdminResult)
        {
            return string.Create(CultureInfo.InvariantCulture, $"unknown frame type {(byte)type}");
        }

        if (length > (uint)maxPayloadBytes)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{type} frame of {length} bytes exceeds the maximum frame size of {maxPayloadBytes} bytes");
        }

        if (reserved != 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{type} frame: reserved header bytes are 0x{reserved:X4}, must be 0");
        }

        if ((flags & ~AllowedFlags(type)) != 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{type} frame: undefined flags 0x{flags:X2}");
        }

        return null;
    }
}
