namespace RawInfer.Models.Gguf;

public sealed unsafe partial class GgufFile
{
    // Smallest possible records, used to refuse absurd counts before allocating:
    // a key-value pair is a u64 key length, at least one key byte, a u32 type and a 1-byte value;
    // a tensor info is a u64 name length, a u32 n_dims, one u64 dimension, a u32 type and a u64 offset.
    private const int MinKeyValueBytes = 8 + 1 + 4 + 1;
    private const int MinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

    private void ParseHeader(GgufParser p)
    {
        uint magic = p.ReadUInt32("magic");
        if (magic != Magic)
        {
            p.Fail("magic", 0, $"0x{magic:X8} is not the GGUF magic (\"GGUF\" = 0x{Magic:X8})");
        }

        Version = p.ReadUInt32("version");
        if (Version is not (2 or 3))
        {
            uint swapped = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(Version);
            string reason = Version == 1
                ? "GGUF version 1 is not supported (it used 32-bit counts); re-convert the model to version 3"
                : swapped is 2 or 3
                    ? $"version {Version} looks like a big-endian GGUF v{swapped}; only little-endian files are supported"
                    : $"GGUF version {Version} is not supported (versions 2 and 3 are)";
            p.Fail("version", 4, reason);
        }

        int tensorCount = p.ReadCount("tensor_count", MinTensorInfoBytes, "tensor infos");
        int kvCount = p.ReadCount("metadata_kv_count", MinKeyValueBytes, "metadata key-value pairs");
        for (int i = 0; i < kvCount; i++)
        {
            ReadKeyValue(p, i);
        }

        ReadAlignment(p);
        var infos = new (string Name, uint Type, long[] Dims, ulong Offset, long InfoAt)[tensorCount];
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < tensorCount; i++)
        {
            infos[i] = ReadTensorInfo(p, i, seen);
        }

        // The data section starts at the first aligned offset after the infos. A file with no tensors (a
        // vocabulary-only file) may end right after its metadata.
        DataOffset = AlignUp(p.Position, Alignment);
        var tensors = new GgufTensorInfo[tensorCount];
        for (int i = 0; i < tensorCount; i++)
        {
            tensors[i] = CheckTensorData(p, infos[i]);
        }

        Tensors = tensors;
    }

    private void ReadKeyValue(GgufParser p, int index)
    {
        long at = p.Position;
        string key = p.ReadString($"metadata key #{index}");
        if (key.Length == 0)
        {
            p.Fail($"metadata key #{index}", at, "empty key");
        }

        var type = p.ReadValueType(key);
        long valueAt = p.Position;
        object value = p.ReadValue(type, key, depth: 0);
        if (!_metadata.TryAdd(key, value))
        {
            p.Fail(key, at, "duplicate metadata key");
        }

        _metadataOffsets[key] = valueAt;
    }

    private void ReadAlignment(GgufParser p)
    {
        const string key = "general.alignment";
        if (!_metadata.TryGetValue(key, out object? value))
        {
            return;
        }

        long at = _metadataOffsets[key];
        if (value is not uint alignment)
        {
            p.Fail(key, at, $"must be a UINT32, found {GgufValues.TypeOf(value).Type}");
            return;
        }

        if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 1u << 30)
        {
            p.Fail(key, at, $"{alignment} is not a power of two in 1..2^30");
        }

        Alignment = (int)alignment;
    }

    private static (string, uint, long[], ulong, long) ReadTensorInfo(GgufParser p, int index, HashSet<string> seen)
    {
        long at = p.Position;
        string name = p.ReadString($"tensor #{index} name");
        if (name.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
        {
            p.Fail($"tensor #{index} name", at, $"name '{Truncate(name)}' must have 1..{MaxTensorNameBytes} bytes");
        }

        if (!seen.Add(name))
        {
            p.Fail(name, at, "duplicate tensor name");
        }

        long dimsAt = p.Position;
        uint nDims = p.ReadUInt32($"{name} n_dims");
        if (nDims is 0 or > MaxDimensions)
        {
            p.Fail($"{name} n_dims", dimsAt, $"{nDims} dimensions; a tensor has 1..{MaxDimensions}");
        }

        var dims = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++)
        {
            long dimAt = p.Position;
            ulong ne = p.ReadUInt64($"{name} ne[{d}]");
            if (ne == 0 || ne > long.MaxValue || elements > long.MaxValue / (long)ne)
            {
                p.Fail($"{name} ne[{d}]", dimAt, $"dimension {ne} is zero or makes the element count overflow");
            }

            dims[d] = (long)ne;
            elements *= (long)ne;
        }

        long typeAt = p.Position;
        uint type = p.ReadUInt32($"{name} type");
        if (!GgmlTypes.IsKnown(type))
        {
            p.Fail($"{name} type", typeAt, $"unknown tensor type id {type}");
        }

        if (dims[0] % GgmlTypes.BlockElements(type) != 0)
        {
            p.Fail($"{name} ne[0]", dimsAt + 4, $"row length {dims[0]} is not a multiple of the {GgmlTypes.Name(type)} block size {GgmlTypes.BlockElements(type)}");
        }

        ulong offset = p.ReadUInt64($"{name} offset");

        return (name, type, dims, offset, at);
    }

    private GgufTensorInfo CheckTensorData(GgufParser p, (string Name, uint Type, long[] Dims, ulong Offset, long InfoAt) t)
    {
        // Offset field is the last 8 bytes of the info record; report errors there.
        long offsetFieldAt = t.InfoAt + 8 + System.Text.Encoding.UTF8.GetByteCount(t.Name) + 4 + (8L * t.Dims.Length) + 4;
        if (t.Offset % (ulong)Alignment != 0)
        {
            p.Fail($"{t.Name} offset", offsetFieldAt, $"data offset {t.Offset} is not a multiple of the alignment {Alignment} (misaligned tensor)");
        }

        long rowBytes = t.Dims[0] / GgmlTypes.BlockElements(t.Type) * GgmlTypes.BlockBytes(t.Type);
        long rows = 1;
        for (int d = 1; d < t.Dims.Length; d++)
        {
            rows *= t.Dims[d];
        }

        long available = Length - DataOffset;
        bool fits = available >= 0
            && t.Offset <= (ulong)available
            && rows <= long.MaxValue / rowBytes
            && rowBytes * rows <= available - (long)t.Offset;
        if (!fits)
        {
            p.Fail($"{t.Name} offset", offsetFieldAt,
                $"data at {DataOffset} + {t.Offset} of shape [{string.Join(", ", t.Dims)}] {GgmlTypes.Name(t.Type)} lies outside the {Length}-byte file (truncated tensor data?)");
        }

        var info = new GgufTensorInfo(t.Name, t.Type, t.Dims, DataOffset + (long)t.Offset, rowBytes * rows, t.InfoAt);
        _tensorsByName[t.Name] = info;
        return info;
    }

    private static long AlignUp(long offset, int alignment) => (offset + alignment - 1) / alignment * alignment;

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
