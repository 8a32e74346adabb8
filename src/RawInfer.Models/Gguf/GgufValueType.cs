namespace RawInfer.Models.Gguf;

/// <summary>Metadata value types of GGUF (the u32 that precedes every value), with their wire ids.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// How GGUF metadata values appear in .NET. A scalar is the matching CLR primitive (byte, sbyte, ushort, short,
/// uint, int, float, bool, string, ulong, long, double); an array is a typed CLR array of those (uint[],
/// string[], ...), and an array of arrays is an <see cref="Array"/>[] whose items are such arrays. Plain BCL
/// types keep the metadata usable by projects that do not reference this one (the tokenizers).
/// </summary>
public static class GgufValues
{
    /// <summary>The GGUF type of a scalar CLR value, or null when the value has no GGUF counterpart.</summary>
    public static GgufValueType? ScalarTypeOf(Type clrType) => Type.GetTypeCode(clrType) switch
    {
        TypeCode.Byte => GgufValueType.UInt8,
        TypeCode.SByte => GgufValueType.Int8,
        TypeCode.UInt16 => GgufValueType.UInt16,
        TypeCode.Int16 => GgufValueType.Int16,
        TypeCode.UInt32 => GgufValueType.UInt32,
        TypeCode.Int32 => GgufValueType.Int32,
        TypeCode.Single => GgufValueType.Float32,
        TypeCode.Boolean => GgufValueType.Bool,
        TypeCode.String => GgufValueType.String,
        TypeCode.UInt64 => GgufValueType.UInt64,
        TypeCode.Int64 => GgufValueType.Int64,
        TypeCode.Double => GgufValueType.Float64,
        _ => clrType == typeof(Array) ? GgufValueType.Array : null,
    };

    /// <summary>
    /// The GGUF type of a metadata value and, for arrays, of its elements.
    /// </summary>
    /// <exception cref="ArgumentException">The value is not one of the CLR types listed on <see cref="GgufValues"/>.</exception>
    public static (GgufValueType Type, GgufValueType? ElementType) TypeOf(object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var clrType = value.GetType();
        if (clrType.IsArray)
        {
            var element = clrType.GetElementType()!;
            var elementType = element.IsArray || element == typeof(Array)
                ? GgufValueType.Array
                : ScalarTypeOf(element);
            return elementType is { } e
                ? (GgufValueType.Array, e)
                : throw new ArgumentException($"arrays of {element.Name} have no GGUF type", nameof(value));
        }

        return ScalarTypeOf(clrType) is { } t && t != GgufValueType.Array
            ? (t, null)
            : throw new ArgumentException($"{clrType.Name} has no GGUF type", nameof(value));
    }

    /// <summary>Bytes one element of <paramref name="type"/> occupies, or the minimum for strings (8) and arrays (12).</summary>
    internal static int MinimumSize(GgufValueType type) => type switch
    {
        GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
        GgufValueType.UInt16 or GgufValueType.Int16 => 2,
        GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
        GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
        GgufValueType.Array => 12,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };
}
