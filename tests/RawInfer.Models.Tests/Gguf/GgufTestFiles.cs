using System.Text;
using RawInfer.Models.Gguf;

namespace RawInfer.Models.Tests.Gguf;

/// <summary>Builders for small GGUF images: valid ones through <see cref="GgufWriter"/>, invalid ones byte by byte.</summary>
internal static class GgufTestFiles
{
    /// <summary>A tiny llama shape: vocab 259 is the least a synthetic vocabulary (3 special + 256 bytes) needs.</summary>
    public static ModelConfig TinyConfig(bool shared = true) =>
        new(Dim: 32, HiddenDim: 48, NumLayers: 2, NumHeads: 4, NumKvHeads: 2, VocabSize: 259, MaxSeqLen: 64, SharedClassifier: shared);

    /// <summary>Writes a synthetic model to a temp file and returns its bytes.</summary>
    public static byte[] SyntheticModelBytes(TensorType dtype, int seed = 1, ModelConfig? config = null)
    {
        string path = Path.Combine(Path.GetTempPath(), $"rawinfer-gguf-{Guid.NewGuid():N}.gguf");
        try
        {
            GgufModelWriter.WriteSynthetic(path, config ?? TinyConfig(), seed, dtype);
            return File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Writes metadata and F32 tensors with <see cref="GgufWriter"/> into memory.</summary>
    public static byte[] Write(Action<GgufWriter> declare, params float[][] tensorData)
    {
        using var stream = new MemoryStream();
        using (var writer = new GgufWriter(stream, leaveOpen: true))
        {
            declare(writer);
            writer.WriteHeader();
            foreach (var data in tensorData)
            {
                var bytes = new byte[data.Length * 4];
                TensorEncoding.EncodeRow(data, TensorType.F32, bytes);
                writer.WriteTensorData(bytes);
            }

            writer.Finish();
        }

        return stream.ToArray();
    }

    public static TempFile ToTempFile(byte[] bytes)
    {
        var file = new TempFile();
        File.WriteAllBytes(file.Path, bytes);
        return file;
    }

    internal sealed class TempFile : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rawinfer-{Guid.NewGuid():N}.gguf");

        public void Dispose() => File.Delete(Path);
    }
}

/// <summary>Raw little-endian GGUF bytes, for headers no writer would produce.</summary>
internal sealed class RawGguf
{
    private readonly MemoryStream _stream = new();
    private readonly BinaryWriter _w;

    public RawGguf() => _w = new BinaryWriter(_stream, Encoding.UTF8, leaveOpen: true);

    public long Position => _stream.Position;

    public RawGguf Header(uint version, ulong tensors, ulong kvs) => U32(GgufFile.Magic).U32(version).U64(tensors).U64(kvs);

    public RawGguf U32(uint v)
    {
        _w.Write(v);
        return this;
    }

    public RawGguf U64(ulong v)
    {
        _w.Write(v);
        return this;
    }

    public RawGguf Bytes(params byte[] b)
    {
        _w.Write(b);
        return this;
    }

    public RawGguf Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        return U64((ulong)b.Length).Bytes(b);
    }

    /// <summary>A key-value pair with a UINT32 value.</summary>
    public RawGguf KvU32(string key, uint value) => Str(key).U32((uint)GgufValueType.UInt32).U32(value);

    /// <summary>A tensor info: name, dims, type, offset.</summary>
    public RawGguf Tensor(string name, uint type, ulong offset, params ulong[] dims)
    {
        Str(name).U32((uint)dims.Length);
        foreach (var d in dims)
        {
            U64(d);
        }

        return U32(type).U64(offset);
    }

    /// <summary>Zero bytes up to the next multiple of <paramref name="alignment"/>.</summary>
    public RawGguf PadTo(int alignment)
    {
        while (_stream.Position % alignment != 0)
        {
            _w.Write((byte)0);
        }

        return this;
    }

    public RawGguf Zeros(int count) => Bytes(new byte[count]);

    public byte[] ToArray()
    {
        _w.Flush();
        return _stream.ToArray();
    }
}
