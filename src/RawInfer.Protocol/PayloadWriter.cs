using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;

namespace RawInfer.Protocol;

/// <summary>
/// Writes payload primitives into a span sized beforehand by the frame's <c>MeasurePayload</c>; the two must agree,
/// which <see cref="Debug.Assert(bool)"/> checks (an overrun would be a codec bug, not bad input).
/// </summary>
public ref struct PayloadWriter
{
    private readonly Span<byte> _buffer;
    private int _position;

    internal PayloadWriter(Span<byte> buffer)
    {
        _buffer = buffer;
        _position = 0;
    }

    internal readonly int Position => _position;

    public static int StringSize(string? value) => 4 + (value is null ? 0 : Encoding.UTF8.GetByteCount(value));

    public static int IdsSize(IReadOnlyList<int>? ids) => 4 + (4 * (ids?.Count ?? 0));

    public void U8(byte value) => _buffer[_position++] = value;

    public void U16(ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer[_position..], value);
        _position += 2;
    }

    public void U32(uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer[_position..], value);
        _position += 4;
    }

    public void I32(int value)
    {
        BinaryPrimitives.WriteInt32LittleEndian(_buffer[_position..], value);
        _position += 4;
    }

    public void U64(ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer[_position..], value);
        _position += 8;
    }

    public void I64(long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(_buffer[_position..], value);
        _position += 8;
    }

    public void F32(float value)
    {
        BinaryPrimitives.WriteSingleLittleEndian(_buffer[_position..], value);
        _position += 4;
    }

    public void F64(double value)
    {
        BinaryPrimitives.WriteDoubleLittleEndian(_buffer[_position..], value);
        _position += 8;
    }

    public void String(string? value)
    {
        var count = value is null ? 0 : Encoding.UTF8.GetBytes(value, _buffer[(_position + 4)..]);
        U32((uint)count);
        _position += count;
    }

    public void Bytes16(ReadOnlySpan<byte> value)
    {
        Debug.Assert(value.Length <= ushort.MaxValue);
        U16((ushort)value.Length);
        value.CopyTo(_buffer[_position..]);
        _position += value.Length;
    }

    public void Ids(IReadOnlyList<int>? ids)
    {
        var count = ids?.Count ?? 0;
        U32((uint)count);
        for (var i = 0; i < count; i++)
        {
            I32(ids![i]);
        }
    }
}
