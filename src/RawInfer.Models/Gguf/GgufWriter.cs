using System.Text;

namespace RawInfer.Models.Gguf;

/// <summary>
/// Writes a GGUF v3 file in one pass: declare metadata and tensors, <see cref="WriteHeader"/>, then stream each
/// tensor's bytes in declaration order (in as many chunks as convenient, e.g. row by row), then
/// <see cref="Finish"/>. Tensor data is aligned to <see cref="Alignment"/> (32 unless told otherwise, in which
/// case general.alignment is written). Metadata values use the CLR forms listed on <see cref="GgufValues"/>.
/// </summary>
public sealed class GgufWriter : IDisposable
{
    private readonly BinaryWriter _out;
    private readonly List<KeyValuePair<string, object>> _metadata = [];
    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly List<(string Name, TensorType Type, long[] Dims, long Size)> _tensors = [];
    private bool _headerWritten;
    private int _current;          // tensor being streamed
    private long _currentWritten;  // bytes of it written so far
    private long _position;        // bytes written to the stream

    /// <summary>Writes to <paramref name="output"/> (closed on dispose unless <paramref name="leaveOpen"/>).</summary>
    public GgufWriter(Stream output, int alignment = GgufFile.DefaultAlignment, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "alignment must be a power of two");
        }

        _out = new BinaryWriter(output, Encoding.UTF8, leaveOpen);
        Alignment = alignment;
        if (alignment != GgufFile.DefaultAlignment)
        {
            AddMetadata("general.alignment", (uint)alignment);
        }
    }

    /// <summary>Alignment of tensor data in bytes.</summary>
    public int Alignment { get; }

    /// <summary>Creates (or overwrites) the file at <paramref name="path"/>.</summary>
    public static GgufWriter Create(string path, int alignment = GgufFile.DefaultAlignment) =>
        new(new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16), alignment);

    /// <summary>Adds a metadata key; <paramref name="value"/> must be a GGUF-representable CLR value.</summary>
    public void AddMetadata(string key, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(value);
        ThrowIfHeaderWritten();
        _ = GgufValues.TypeOf(value); // validates the CLR type up front
        if (!_keys.Add(key))
        {
            throw new ArgumentException($"metadata key {key} added twice", nameof(key));
        }

        _metadata.Add(new(key, value));
    }

    /// <summary>
    /// Declares a tensor; <paramref name="dims"/> innermost first (ne0 = row length). A (rows, cols) matrix is
    /// declared as (cols, rows).
    /// </summary>
    public void AddTensor(string name, TensorType type, params long[] dims)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(dims);
        ThrowIfHeaderWritten();
        if (Encoding.UTF8.GetByteCount(name) > GgufFile.MaxTensorNameBytes || _tensors.Exists(t => t.Name == name))
        {
            throw new ArgumentException($"tensor name {name} is too long or already declared", nameof(name));
        }

        if (dims.Length is 0 or > GgufFile.MaxDimensions || Array.Exists(dims, d => d <= 0))
        {
            throw new ArgumentException($"tensor {name}: 1..{GgufFile.MaxDimensions} positive dimensions expected", nameof(dims));
        }

        int block = GgmlTypes.BlockElements((uint)type);
        if (dims[0] % block != 0)
        {
            throw new ArgumentException($"tensor {name}: row length {dims[0]} is not a multiple of the {type} block size {block}", nameof(dims));
        }

        long size = GgmlTypes.RowBytes(type, dims[0]);
        for (int d = 1; d < dims.Length; d++)
        {
            size = checked(size * dims[d]);
        }

        _tensors.Add((name, type, (long[])dims.Clone(), size));
    }

    /// <summary>Writes header, metadata and tensor infos, padded to the alignment; tensor data follows.</summary>
    public void WriteHeader()
    {
        ThrowIfHeaderWritten();
        _headerWritten = true;
        _out.Write(GgufFile.Magic);
        _out.Write(3u);
        _out.Write((ulong)_tensors.Count);
        _out.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(key);
            var (type, _) = GgufValues.TypeOf(value);
            _out.Write((uint)type);
            WriteValue(value);
        }

        long offset = 0;
        foreach (var t in _tensors)
        {
            WriteString(t.Name);
            _out.Write((uint)t.Dims.Length);
            foreach (long d in t.Dims)
            {
                _out.Write((ulong)d);
            }

            _out.Write((uint)t.Type);
            _out.Write((ulong)offset);
            offset = AlignUp(offset + t.Size);
        }

        _out.Flush();
        _position = CountHeaderBytes();
        Pad();
    }

    /// <summary>Appends bytes of the current tensor; moves to the next tensor once its size is reached.</summary>
    /// <exception cref="InvalidOperationException">More bytes than the remaining tensors declared, or before the header.</exception>
    public void WriteTensorData(ReadOnlySpan<byte> bytes)
    {
        if (!_headerWritten)
        {
            throw new InvalidOperationException("WriteHeader must come before tensor data");
        }

        while (!bytes.IsEmpty)
        {
            if (_current >= _tensors.Count)
            {
                throw new InvalidOperationException($"{bytes.Length} bytes beyond the last declared tensor");
            }

            long left = _tensors[_current].Size - _currentWritten;
            int n = (int)Math.Min(left, bytes.Length);
            _out.Write(bytes[..n]);
            bytes = bytes[n..];
            _currentWritten += n;
            _position += n;
            if (_currentWritten == _tensors[_current].Size)
            {
                _current++;
                _currentWritten = 0;
                Pad();
            }
        }
    }

    /// <summary>Name of the tensor the next data bytes belong to, or null when all are written.</summary>
    public string? CurrentTensor => _headerWritten && _current < _tensors.Count ? _tensors[_current].Name : null;

    /// <summary>Checks every declared tensor was written in full and flushes.</summary>
    public void Finish()
    {
        if (!_headerWritten || _current != _tensors.Count)
        {
            throw new InvalidOperationException(
                _headerWritten ? $"tensor {_tensors[_current].Name} is incomplete ({_currentWritten} of {_tensors[_current].Size} bytes)" : "header not written");
        }

        _out.Flush();
    }

    public void Dispose() => _out.Dispose();

    private void WriteValue(object value)
    {
        switch (value)
        {
            case byte v: _out.Write(v); break;
            case sbyte v: _out.Write(v); break;
            case ushort v: _out.Write(v); break;
            case short v: _out.Write(v); break;
            case uint v: _out.Write(v); break;
            case int v: _out.Write(v); break;
            case float v: _out.Write(v); break;
            case bool v: _out.Write(v ? (byte)1 : (byte)0); break;
            case string v: WriteString(v); break;
            case ulong v: _out.Write(v); break;
            case long v: _out.Write(v); break;
            case double v: _out.Write(v); break;
            case Array array:
                var (_, element) = GgufValues.TypeOf(array);
                _out.Write((uint)element!.Value);
                _out.Write((ulong)array.Length);
                foreach (object? item in array)
                {
                    WriteValue(item!);
                }

                break;
            default:
                throw new ArgumentException($"{value.GetType().Name} has no GGUF type", nameof(value));
        }
    }

    private void WriteString(string s)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(s);
        _out.Write((ulong)utf8.Length);
        _out.Write(utf8);
    }

    private void Pad()
    {
        long padded = AlignUp(_position);
        for (; _position < padded; _position++)
        {
            _out.Write((byte)0);
        }
    }

    private long CountHeaderBytes()
    {
        long n = 4 + 4 + 8 + 8;
        foreach (var (key, value) in _metadata)
        {
            n += 8 + Encoding.UTF8.GetByteCount(key) + 4 + ValueBytes(value);
        }

        foreach (var t in _tensors)
        {
            n += 8 + Encoding.UTF8.GetByteCount(t.Name) + 4 + (8L * t.Dims.Length) + 4 + 8;
        }

        return n;
    }

    private static long ValueBytes(object value) => value switch
    {
        string s => 8 + Encoding.UTF8.GetByteCount(s),
        Array a => 12 + SumItems(a),
        _ => GgufValues.MinimumSize(GgufValues.TypeOf(value).Type),
    };

    private static long SumItems(Array a)
    {
        long n = 0;
        foreach (object? item in a)
        {
            n += ValueBytes(item!);
        }

        return n;
    }

    private long AlignUp(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    private void ThrowIfHeaderWritten()
    {
        if (_headerWritten)
        {
            throw new InvalidOperationException("the header is already written");
        }
    }
}
