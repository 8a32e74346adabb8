using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace RawInfer.Protocol;

/// <summary>
/// Reads payload primitives from one contiguous payload. Every read checks what is left and throws
/// <see cref="ProtocolException"/> naming the frame, the field and the byte offset; counts are checked against the
/// bytes left before anything is allocated, so a frame can never make the decoder allocate more than its own size.
/// </summary>
public ref struct PayloadReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ReadOnlySpan<byte> _payload;
    private readonly FrameType _type;
    private int _position;

    internal PayloadReader(ReadOnlySpan<byte> payload, FrameType type)
    {
        _payload = payload;
        _type = type;
        _position = 0;
    }

    public readonly int Remaining => _payload.Length - _position;

    /// <summary>Bytes read so far (for error offsets).</summary>
    internal readonly int Position => _position;

    public byte U8(string field) => Take(1, field)[0];

    public ushort U16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field));

    public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

    public int I32(string field) => BinaryPrimitives.ReadInt32LittleEndian(Take(4, field));

    public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    public long I64(string field) => BinaryPrimitives.ReadInt64LittleEndian(Take(8, field));

    public float F32(string field) => BinaryPrimitives.ReadSingleLittleEndian(Take(4, field));

    public double F64(string field) => BinaryPrimitives.ReadDoubleLittleEndian(Take(8, field));

    public string String(string field, int maxBytes = int.MaxValue)
    {
        var start = _position;
        var length = U32(field);
        if (length > (uint)maxBytes)
        {
            Fail(field, start, $"string of {length} bytes exceeds the limit of {maxBytes}");
        }

        var bytes = Take(checked((int)Math.Min(length, int.MaxValue)), field);
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            Fail(field, start, "invalid UTF-8");
            return string.Empty;
        }
    }

    public byte[] Bytes16(string field, int maxBytes)
    {
        var start = _position;
        var length = U16(field);
        if (length > maxBytes)
        {
            Fail(field, start, $"{length} bytes exceed the limit of {maxBytes}");
        }

        return Take(length, field).ToArray();
    }

    public int[] Ids(string field)
    {
        var start = _position;
        var count = U32(field);
        if (count > (uint)(Remaining / 4))
        {
            Fail(field, start, $"count {count} needs {(ulong)count * 4} bytes; {Remaining} are left");
        }

        var ids = new int[count];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = I32(field);
        }

        return ids;
    }

    /// <summary>Checks that a count of items at least <paramref name="minItemBytes"/> each fits in the rest.</summary>
    public readonly void CheckCount(uint count, int minItemBytes, string field)
    {
        if (count > (uint)(Remaining / minItemBytes))
        {
            Fail(field, _position, $"count {count} cannot fit in the {Remaining} bytes left");
        }
    }

    /// <summary>The payload must be consumed exactly.</summary>
    public readonly void End()
    {
        if (Remaining != 0)
        {
            Fail("end", _position, $"{Remaining} trailing bytes");
        }
    }

    public readonly void Fail(string field, int offset, string problem) =>
        ProtocolException.Throw(string.Create(CultureInfo.InvariantCulture, $"{_type} frame, field '{field}' at payload offset {offset}: {problem}"));

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count > Remaining)
        {
            Fail(field, _position, $"needs {count} bytes; {Remaining} are left");
        }

        var span = _payload.Slice(_position, count);
        _position += count;
        return span;
    }
}
