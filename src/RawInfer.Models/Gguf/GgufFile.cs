using System.Runtime.InteropServices;

namespace RawInfer.Models.Gguf;

/// <summary>
/// A GGUF file (llama.cpp's model format, versions 2 and 3), memory mapped and validated on open: header,
/// metadata of every value type, tensor infos, alignment, and each tensor's bytes lying inside the file. Nothing
/// reads outside the mapping. Tensor data stays in the mapping; <see cref="GetWeight"/> hands out pointers into
/// it, valid until the file is disposed.
/// </summary>
public sealed unsafe partial class GgufFile : IDisposable
{
    /// <summary>"GGUF" read as a little-endian u32.</summary>
    public const uint Magic = 0x46554747;

    /// <summary>Alignment of tensor data when general.alignment is absent.</summary>
    public const int DefaultAlignment = 32;

    /// <summary>GGML_MAX_DIMS: a tensor has 1..4 dimensions.</summary>
    public const int MaxDimensions = 4;

    /// <summary>llama.cpp refuses tensor names of 64 bytes or more (GGML_MAX_NAME).</summary>
    public const int MaxTensorNameBytes = 63;

    private readonly IDisposable _owner;
    private readonly byte* _base;
    private readonly Dictionary<string, object> _metadata;
    private readonly Dictionary<string, long> _metadataOffsets;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;
    private int _disposed;

    private GgufFile(string source, byte* basePointer, long length, IDisposable owner)
    {
        Source = source;
        _base = basePointer;
        Length = length;
        _owner = owner;
        _metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        _metadataOffsets = new Dictionary<string, long>(StringComparer.Ordinal);
        _tensorsByName = new Dictionary<string, GgufTensorInfo>(StringComparer.Ordinal);
    }

    /// <summary>The path the file was opened from (or the name given to <see cref="Parse"/>).</summary>
    public string Source { get; }

    /// <summary>File length in bytes.</summary>
    public long Length { get; }

    /// <summary>GGUF version (2 or 3).</summary>
    public uint Version { get; private set; }

    /// <summary>Alignment of tensor data (general.alignment, default 32).</summary>
    public int Alignment { get; private set; } = DefaultAlignment;

    /// <summary>Offset where the tensor data section starts (aligned).</summary>
    public long DataOffset { get; private set; }

    /// <summary>Metadata in file order of keys, values as described on <see cref="GgufValues"/>.</summary>
    public IReadOnlyDictionary<string, object> Metadata => _metadata;

    /// <summary>Tensor infos in header order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private set; } = [];

    /// <summary>Maps and validates the GGUF file at <paramref name="path"/>.</summary>
    /// <exception cref="ModelFormatException">The file is not a valid GGUF v2/v3 file (names field and offset).</exception>
    public static GgufFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (stream.Length == 0)
        {
            // An empty file cannot be mapped; it is a file without a magic.
            stream.Dispose();
            throw new ModelFormatException($"{path}: magic at offset 0: the file is empty, not GGUF") { Field = "magic", Offset = 0 };
        }

        var weightsOffset = Llama2c.MappedModelFile.WillCopy(stream.Length) ? WeightsLineOffset(path, stream) : 0;
        var mapping = Llama2c.MappedModelFile.Map(stream, weightsOffset);
        return ParseOwned(path, mapping.BasePointer, mapping.Length, mapping);
    }

    /// <summary>
    /// The file offset modulo 64 that most tensor bytes share, read from the header over a plain mapping of the file
    /// (only the header's pages are read) before the copy that <see cref="Open"/> makes: the copy puts it on a
    /// 64-byte cache line. GGUF aligns tensor data to 32 bytes by default, so without this every row of a file whose
    /// data section starts at an odd multiple of 32 straddled two lines in each 64-byte load: the CPU runner's F32
    /// steps of 12 and 64 sequences and a 512-token prefill took 1.12x, 1.17x and 1.13x the time (the 110m shape,
    /// 2 threads, Zen 5 VM; F16 and Q8_0, whose kernels load 32 bytes or less at a time, and the memory-bound
    /// single-sequence decode were level). 0 when the header does not parse (the parse of the copy then reports why).
    /// </summary>
    private static long WeightsLineOffset(string path, FileStream stream)
    {
        var view = Llama2c.MappedModelFile.MapInPlace(stream, leaveOpen: true);
        try
        {
            using var header = ParseOwned(path, view.BasePointer, view.Length, view);
            Span<long> bytes = stackalloc long[64];
            foreach (var tensor in header.Tensors)
            {
                bytes[(int)(tensor.FileOffset & 63)] += tensor.SizeBytes;
            }

            var best = 0;
            for (var r = 1; r < bytes.Length; r++)
            {
                best = bytes[r] > bytes[best] ? r : best;
            }

            return best;
        }
        catch (ModelFormatException)
        {
            return 0;
        }
    }

    /// <summary>Validates a GGUF image held in memory (tests, embedded vocabularies). The array is pinned until disposal.</summary>
    /// <exception cref="ModelFormatException">The image is not a valid GGUF v2/v3 file.</exception>
    public static GgufFile Parse(byte[] contents, string source = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(contents);
        var pin = new PinnedBytes(contents);
        return ParseOwned(source, pin.Pointer, contents.Length, pin);
    }

    /// <summary>The info of tensor <paramref name="name"/>, or null.</summary>
    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    /// <summary>The raw bytes of a tensor (tensors under 2 GiB).</summary>
    public ReadOnlySpan<byte> TensorBytes(GgufTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (tensor.SizeBytes > int.MaxValue)
        {
            throw new NotSupportedException($"tensor {tensor.Name} has {tensor.SizeBytes} bytes, more than a span holds");
        }

        return new ReadOnlySpan<byte>(_base + tensor.FileOffset, (int)tensor.SizeBytes);
    }

    /// <summary>
    /// Tensor <paramref name="name"/> as a (rows, cols) matrix pointing into the mapping: a 1-D tensor is one row,
    /// a 2-D tensor has rows = ne1 and cols = ne0 (GGUF lists the innermost dimension first).
    /// </summary>
    /// <exception cref="ModelFormatException">
    /// Missing, of an unsupported type (named), not a matrix, or holding an Inf or NaN fp16 value (an F16 element or
    /// a Q8_0 block scale; named with its place).
    /// </exception>
    public WeightTensor GetWeight(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var info = FindTensor(name) ?? throw new ModelFormatException($"{Source}: tensor {name} is missing") { Field = name };
        if (!info.IsSupported)
        {
            throw new ModelFormatException(
                $"{Source}: tensor {name} at offset {info.InfoOffset} has type {info.TypeName}; {info.TypeName} is not supported (RawInfer reads F32, F16, BF16 and Q8_0)")
            { Field = name, Offset = info.InfoOffset };
        }

        var dims = info.Dimensions;
        for (int i = 2; i < dims.Count; i++)
        {
            if (dims[i] != 1)
            {
                throw new ModelFormatException($"{Source}: tensor {name} has shape {info.ShapeText}; a weight must have at most 2 dimensions")
                { Field = name, Offset = info.InfoOffset };
            }
        }

        long cols = dims[0];
        long rows = dims.Count > 1 ? dims[1] : 1;
        if (cols > int.MaxValue || rows > int.MaxValue)
        {
            throw new ModelFormatException($"{Source}: tensor {name} has shape {info.ShapeText}, too large for a weight matrix")
            { Field = name, Offset = info.InfoOffset };
        }

        var weight = new WeightTensor(_base + info.FileOffset, (TensorType)info.TypeId, (int)rows, (int)cols);
        var bad = NonFiniteScan.FirstNonFinite(in weight);
        if (bad >= 0)
        {
            var what = weight.Type == TensorType.F16
                ? $"element {bad} (row {bad / cols}, column {bad % cols}) is Inf or NaN"
                : $"the scale of block {bad} (row {bad / (cols / GgmlTypes.Q8_0BlockElements)}) is Inf or NaN";
            var at = info.FileOffset + (bad * (weight.Type == TensorType.F16 ? 2 : GgmlTypes.Q8_0BlockBytes));
            throw new ModelFormatException($"{Source}: tensor {name} at offset {at}: {what}; the weights are corrupt")
            { Field = name, Offset = at };
        }

        return weight;
    }

    /// <summary>
    /// True when the bytes are the process's own private copy of the file (<see cref="Llama2c.MappedModelFile.IsCopied"/>),
    /// which a backend may rewrite in place; false for a read-only mapping of the file or a caller's array.
    /// </summary>
    internal bool IsPrivateCopy => _owner is Llama2c.MappedModelFile { IsCopied: true };

    /// <summary>Makes the private copy writable or read-only again; false where <see cref="IsPrivateCopy"/> is not true.</summary>
    internal bool SetWritable(bool writable) => _owner is Llama2c.MappedModelFile m && m.SetWritable(writable);

    /// <summary>Unmaps the file; weights obtained from it must not be used afterwards.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _owner.Dispose();
        }
    }

    private static GgufFile ParseOwned(string source, byte* basePointer, long length, IDisposable owner)
    {
        var file = new GgufFile(source, basePointer, length, owner);
        try
        {
            file.ParseHeader(new GgufParser(basePointer, length, source));
            return file;
        }
        catch
        {
            owner.Dispose();
            throw;
        }
    }

    /// <summary>Keeps a managed array pinned while a <see cref="GgufFile"/> points into it.</summary>
    private sealed class PinnedBytes : IDisposable
    {
        private GCHandle _handle;

        public PinnedBytes(byte[] bytes)
        {
            _handle = GCHandle.Alloc(bytes, GCHandleType.Pinned);
            Pointer = (byte*)_handle.AddrOfPinnedObject();
        }

        public byte* Pointer { get; }

        public void Dispose()
        {
            if (_handle.IsAllocated)
            {
                _handle.Free();
            }
        }
    }
}
