using System.Buffers.Binary;

namespace RawInfer.Protocol.Tests;

/// <summary>Bytes that break the contract get the outcome docs/protocol.md specifies, and nothing else.</summary>
public class MalformedFrameTests
{
    private const int Max = 4096;

    [Fact]
    public void A_truncated_header_needs_more_data()
    {
        var bytes = FrameWriter.ToArray(1, new EmptyFrame(FrameType.Cancel));
        for (var length = 0; length < ProtocolConstants.HeaderSize; length++)
        {
            Assert.Equal(OperationStatus.NeedMoreData, Read(bytes[..length], out _));
        }
    }

    [Theory]
    [InlineData(Max + 1u)]
    [InlineData(uint.MaxValue)]
    [InlineData(0x8000_0000u)]
    public void A_length_above_the_maximum_is_refused_from_the_header_alone(uint length)
    {
        var header = Header(length, FrameType.Submit, 0, 0, 1);
        Assert.Equal(OperationStatus.InvalidData, Read(header, out var violation));
        Assert.Contains("exceeds the maximum frame size of 4096", violation, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)0)]
    [InlineData((byte)14)]
    [InlineData((byte)255)]
    public void An_unknown_type_is_invalid(byte type)
    {
        Assert.Equal(OperationStatus.InvalidData, Read(Header(0, (FrameType)type, 0, 0, 1), out var violation));
        Assert.Contains("unknown frame type", violation, StringComparison.Ordinal);
    }

    [Fact]
    public void Nonzero_reserved_bytes_and_undefined_flags_are_invalid()
    {
        Assert.Equal(OperationStatus.InvalidData, Read(Header(0, FrameType.Cancel, 0, 1, 1), out var reserved));
        Assert.Contains("reserved", reserved, StringComparison.Ordinal);
        Assert.Equal(OperationStatus.InvalidData, Read(Header(0, FrameType.Cancel, 0x80, 0, 1), out var flags));
        Assert.Contains("flags", flags, StringComparison.Ordinal);
        Assert.Equal(OperationStatus.InvalidData, Read(Header(0, FrameType.Submit, 0x20, 0, 1), out _));
    }

    [Theory]
    [InlineData(FrameType.Hello)]
    [InlineData(FrameType.Submit)]
    [InlineData(FrameType.Ping)]
    public void A_zero_length_frame_whose_type_needs_a_payload_is_a_violation(FrameType type)
    {
        Assert.Equal(OperationStatus.Done, ReadFrame(Header(0, type, 0, 0, 1), out var frame));
        var e = Assert.Throws<ProtocolException>(() => FrameDecoder.DecodeFromClient(frame));
        Assert.Contains(type.ToString(), e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Trailing_payload_bytes_are_a_violation()
    {
        var cancel = Header(3, FrameType.Cancel, 0, 0, 1).Concat(new byte[3]).ToArray();
        Assert.Equal(OperationStatus.Done, ReadFrame(cancel, out var frame));
        var e = Assert.Throws<ProtocolException>(() => FrameDecoder.DecodeFromClient(frame));
        Assert.Contains("3 trailing bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_magic_is_named()
    {
        var bytes = FrameWriter.ToArray(0, new HelloFrame(1, new byte[3], "x"));
        bytes[ProtocolConstants.HeaderSize] ^= 0xFF;
        Assert.Equal(OperationStatus.Done, ReadFrame(bytes, out var frame));
        var e = Assert.Throws<ProtocolException>(() => FrameDecoder.DecodeFromClient(frame));
        Assert.Contains("'magic' at payload offset 0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_utf8_is_a_violation()
    {
        var bytes = FrameWriter.ToArray(1, new SubmitFrame { Prompt = "ab" });
        bytes[ProtocolConstants.HeaderSize + 4] = 0xC3; // a lead byte followed by 'b': not UTF-8
        Assert.Equal(OperationStatus.Done, ReadFrame(bytes, out var frame));
        var e = Assert.Throws<ProtocolException>(() => FrameDecoder.DecodeFromClient(frame));
        Assert.Contains("invalid UTF-8", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_count_larger_than_the_payload_fails_before_allocating()
    {
        var bytes = FrameWriter.ToArray(1, new SubmitFrame { PromptTokenIds = [1, 2] });
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(ProtocolConstants.HeaderSize), 0x3FFF_FFFF);
        Assert.Equal(OperationStatus.Done, ReadFrame(bytes, out var frame));
        var e = Assert.Throws<ProtocolException>(() => FrameDecoder.DecodeFromClient(frame));
        Assert.Contains("prompt token ids", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(FrameType.Welcome, false)]
    [InlineData(FrameType.Tokens, false)]
    [InlineData(FrameType.Hello, true)]
    [InlineData(FrameType.Submit, true)]
    [InlineData(FrameType.Cancel, true)]
    public void A_frame_from_the_wrong_side_is_a_violation(FrameType type, bool fromServer)
    {
        Assert.Equal(OperationStatus.Done, ReadFrame(Header(0, type, 0, 0, 1), out var frame));
        Assert.Throws<ProtocolException>(() => fromServer ? FrameDecoder.DecodeFromServer(frame) : FrameDecoder.DecodeFromClient(frame));
    }

    [Fact]
    public void Junk_after_a_valid_frame_leaves_the_frame_intact()
    {
        var valid = FrameWriter.ToArray(5, new EmptyFrame(FrameType.Cancel));
        var bytes = valid.Concat(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x63, 0, 0, 0, 0, 0, 0, 0 }).ToArray();
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        Assert.Equal(OperationStatus.Done, FrameReader.TryReadFrame(ref reader, Max, out var frame, out _));
        Assert.Equal(5u, frame.RequestId);
        Assert.Equal(OperationStatus.InvalidData, FrameReader.TryReadFrame(ref reader, Max, out _, out _));
        Assert.Equal(valid.Length, reader.Consumed);
    }

    internal static byte[] Header(uint length, FrameType type, byte flags, ushort reserved, uint requestId)
    {
        var header = new byte[ProtocolConstants.HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, length);
        header[4] = (byte)type;
        header[5] = flags;
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(6), reserved);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), requestId);
        return header;
    }

    private static OperationStatus Read(byte[] bytes, out string? violation)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        return FrameReader.TryReadFrame(ref reader, Max, out _, out violation);
    }

    private static OperationStatus ReadFrame(byte[] bytes, out RawFrame frame)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes));
        return FrameReader.TryReadFrame(ref reader, Max, out frame, out _);
    }
}
