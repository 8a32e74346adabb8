using System.Diagnostics.CodeAnalysis;

namespace RawInfer.Models.Gguf;

public sealed partial class GgufFile
{
    /// <summary>True when the metadata has <paramref name="key"/>.</summary>
    public bool ContainsKey(string key) => _metadata.ContainsKey(key);

    /// <summary>Offset of the value of <paramref name="key"/> in the file (for error messages), or null.</summary>
    public long? MetadataOffset(string key) => _metadataOffsets.TryGetValue(key, out long at) ? at : null;

    /// <summary>The GGUF type of the value of <paramref name="key"/>, or null when absent.</summary>
    public GgufValueType? MetadataType(string key) =>
        _metadata.TryGetValue(key, out object? v) ? GgufValues.TypeOf(v).Type : null;

    /// <summary>A string value.</summary>
    /// <exception cref="ModelFormatException">Missing or not a string.</exception>
    public string GetString(string key) => Get<string>(key, "a STRING");

    /// <summary>A string value, or null when the key is absent.</summary>
    public string? GetStringOrNull(string key) => ContainsKey(key) ? GetString(key) : null;

    /// <summary>A bool value.</summary>
    public bool GetBool(string key) => Get<bool>(key, "a BOOL");

    /// <summary>A bool value, or <paramref name="fallback"/> when absent.</summary>
    public bool GetBool(string key, bool fallback) => ContainsKey(key) ? GetBool(key) : fallback;

    /// <summary>
    /// An integer of any GGUF integer type that fits a uint (writers disagree on UINT32 vs INT32 vs UINT64 for
    /// counts; llama.cpp accepts the same spread).
    /// </summary>
    /// <exception cref="ModelFormatException">Missing, not an integer, or out of the uint range.</exception>
    public uint GetUInt32(string key)
    {
        long value = GetInteger(key);
        return value is >= 0 and <= uint.MaxValue
            ? (uint)value
            : throw Invalid(key, $"{value} is outside the UINT32 range");
    }

    /// <summary><see cref="GetUInt32(string)"/>, or <paramref name="fallback"/> when the key is absent.</summary>
    public uint GetUInt32(string key, uint fallback) => ContainsKey(key) ? GetUInt32(key) : fallback;

    /// <summary>An integer of any GGUF integer type, as a long.</summary>
    /// <exception cref="ModelFormatException">Missing, not an integer, or a UINT64 above long.MaxValue.</exception>
    public long GetInteger(string key) => Require(key) switch
    {
        byte v => v,
        sbyte v => v,
        ushort v => v,
        short v => v,
        uint v => v,
        int v => v,
        long v => v,
        ulong v when v <= long.MaxValue => (long)v,
        ulong v => throw Invalid(key, $"{v} is too large"),
        var other => throw WrongType(key, other, "an integer"),
    };

    /// <summary>A FLOAT32 (or FLOAT64, narrowed) value.</summary>
    public float GetFloat32(string key) => Require(key) switch
    {
        float v => v,
        double v => (float)v,
        var other => throw WrongType(key, other, "a FLOAT32"),
    };

    /// <summary><see cref="GetFloat32(string)"/>, or <paramref name="fallback"/> when the key is absent.</summary>
    public float GetFloat32(string key, float fallback) => ContainsKey(key) ? GetFloat32(key) : fallback;

    /// <summary>An array whose elements have CLR type <typeparamref name="T"/> (string, float, int, uint, ...).</summary>
    /// <exception cref="ModelFormatException">Missing or an array of another element type.</exception>
    public T[] GetArray<T>(string key) => Get<T[]>(key, $"an ARRAY of {typeof(T).Name}");

    /// <summary>A value of exact CLR type <typeparamref name="T"/>, or false when absent.</summary>
    /// <exception cref="ModelFormatException">Present with another type.</exception>
    public bool TryGet<T>(string key, [MaybeNullWhen(false)] out T value)
    {
        if (!_metadata.TryGetValue(key, out object? raw))
        {
            value = default;
            return false;
        }

        value = raw is T typed ? typed : throw WrongType(key, raw, typeof(T).Name);
        return true;
    }

    private T Get<T>(string key, string expected) =>
        Require(key) is T typed ? typed : throw WrongType(key, _metadata[key], expected);

    private object Require(string key) =>
        _metadata.TryGetValue(key, out object? value)
            ? value
            : throw new ModelFormatException($"{Source}: metadata key {key} is missing") { Field = key };

    private ModelFormatException WrongType(string key, object value, string expected)
    {
        var (type, element) = GgufValues.TypeOf(value);
        string found = element is { } e ? $"an ARRAY of {e}" : type.ToString();
        return Invalid(key, $"expected {expected}, found {found}");
    }

    private ModelFormatException Invalid(string key, string reason)
    {
        long? at = MetadataOffset(key);
        return new ModelFormatException($"{Source}: {key} at offset {at}: {reason}") { Field = key, Offset = at };
    }
}
