using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace RawInfer.Models.Gguf;

/// <summary>
/// Sequential little-endian reader over a mapped GGUF image. Every read is checked against the image length
/// before it touches memory, and every count is checked against the bytes left before anything is allocated, so a
/// corrupt or hostile file ends in a <see cref="ModelFormatException"/> naming the field and its offset.
/// </summary>
internal sealed unsafe class GgufParser
{
    /// <summary>Arrays of arrays deeper than this are refused (each level recurses).</summary>
    public const int MaxArrayDepth = 8;

    private readonly byte* _base;
    private readonly long _length;
    private readonly string _source;

    public GgufParser(byte* basePointer, long length, string source)
    {
        _base = basePointer;
        _length = length;
        _source = source;
    }

    /// <summary>Offset of the next byte to read.</summary>
    public long Position { get; set; }

    public long Remaining => _length - Position;

    public uint ReadUInt32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));

    public ulong ReadUInt64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Take(8, field));

    /// <summary>Reads a u64 count and checks that <paramref name="minBytesEach"/> bytes per item still fit the file.</summary>
    public int ReadCount(string field, int minBytesEach, string what)
    {
        long at = Position;
        ulong count = ReadUInt64(field);
        ulong fits = (ulong)Remaining / (ulong)minBytesEach;
        if (count > fits || count > int.MaxValue)
        {
            Fail(field, at, $"{count} {what} cannot fit in the {Remaining} bytes left in the file (at least {minBytesEach} bytes each)");
        }

        return (int)count;
    }

    /// <summary>A GGUF string: u64 byte length, then UTF-8 bytes (invalid sequences become U+FFFD).</summary>
    public string ReadString(string field)
    {
        long at = Position;
        ulong length = ReadUInt64(field);
        if (length > (ulong)Remaining || length > int.MaxValue)
        {
            Fail(field, at, $"string length {length} exceeds the {Remaining} bytes left in the file");
        }

        return Encoding.UTF8.GetString(Take((int)length, field));
    }

    /// <summary>Reads one metadata value of <paramref name="type"/> into its CLR form (see <see cref="GgufValues"/>).</summary>
    public object ReadValue(GgufValueType type, string field, int depth)
    {
        switch (type)
        {
            case GgufValueType.UInt8: return Take(1, field)[0];
            case GgufValueType.Int8: return (sbyte)Take(1, field)[0];
            case GgufValueType.UInt16: return BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field));
            case GgufValueType.Int16: return BinaryPrimitives.ReadInt16LittleEndian(Take(2, field));
            case GgufValueType.UInt32: return ReadUInt32(field);
            case GgufValueType.Int32: return BinaryPrimitives.ReadInt32LittleEndian(Take(4, field));
            case GgufValueType.Float32: return BinaryPrimitives.ReadSingleLittleEndian(Take(4, field));
            case GgufValueType.Bool: return ReadBool(field);
            case GgufValueType.String: return ReadString(field);
            case GgufValueType.UInt64: return ReadUInt64(field);
            case GgufValueType.Int64: return BinaryPrimitives.ReadInt64LittleEndian(Take(8, field));
            case GgufValueType.Float64: return BinaryPrimitives.ReadDoubleLittleEndian(Take(8, field));
            case GgufValueType.Array: return ReadArray(field, depth + 1);
            default:
                Fail(field, Position - 4, $"unknown metadata value type {(uint)type}");
                return null;
        }
    }

    /// <summary>Reads a value type id (u32) and checks it names a GGUF type.</summary>
    public GgufValueType ReadValueType(string field)
    {
        long at = Position;
        uint raw = ReadUInt32(field);
        if (raw > (uint)GgufValueType.Float64)
        {
            Fail(field, at, $"unknown metadata value type {raw} (GGUF defines 0..12)");
        }

        return (GgufValueType)raw;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void Fail(string field, long offset, string reason) =>
        throw new ModelFormatException($"{_source}: {field} at offset {offset}: {reason}") { Field = field, Offset = offset };

    private Array ReadArray(string field, int depth)
    {
        long at = Position;
        if (depth > MaxArrayDepth)
        {
            Fail(field, at, $"arrays nested deeper than {MaxArrayDepth} levels");
        }

        var elementType = ReadValueType(field);
        int count = ReadCount(field, GgufValues.MinimumSize(elementType), $"{elementType} array elements");
        switch (elementType)
        {
            case GgufValueType.UInt8: return Take(count, field).ToArray();
            case GgufValueType.Int8: return ReadPrimitives<sbyte>(count, field);
            case GgufValueType.UInt16: return ReadPrimitives<ushort>(count, field);
            case GgufValueType.Int16: return ReadPrimitives<short>(count, field);
            case GgufValueType.UInt32: return ReadPrimitives<uint>(count, field);
            case GgufValueType.Int32: return ReadPrimitives<int>(count, field);
            case GgufValueType.Float32: return ReadPrimitives<float>(count, field);
            case GgufValueType.UInt64: return ReadPrimitives<ulong>(count, field);
            case GgufValueType.Int64: return ReadPrimitives<long>(count, field);
            case GgufValueType.Float64: return ReadPrimitives<double>(count, field);
            case GgufValueType.Bool:
                var bools = new bool[count];
                for (int i = 0; i < count; i++)
                {
                    bools[i] = ReadBool(field);
                }

                return bools;
            case GgufValueType.String:
                var strings = new string[count];
                for (int i = 0; i < count; i++)
                {
                    strings[i] = ReadString(field);
                }

                return strings;
            default:
                var arrays = new Array[count];
                for (int i = 0; i < count; i++)
                {
                    arrays[i] = ReadArray(field, depth + 1);
                }

                return arrays;
        }
    }

    private T[] ReadPrimitives<T>(int count, string field)
        where T : unmanaged
    {
        // The file is little-endian, as is every platform .NET runs this on; checked once here.
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("GGUF reading needs a little-endian host");
        }

        var bytes = Take(checked(count * sizeof(T)), field);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(bytes).ToArray();
    }

    private bool ReadBool(string field)
    {
        long at = Position;
        byte b = Take(1, field)[0];
        if (b > 1)
        {
            Fail(field, at, $"bool value {b} is neither 0 nor 1");
        }

        return b == 1;
    }

    private ReadOnlySpan<byte> Take(int count, string field)
    {
        if (count > Remaining)
        {
            Fail(field, Position, $"needs {count} bytes but the file ends after {_length} bytes (truncated)");
        }

        var span = new ReadOnlySpan<byte>(_base + Position, count);
        Position += count;
        return span;
    }
}
