using System.Runtime.InteropServices;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>A weight matrix encoded in <see cref="TensorType"/> in native memory.</summary>
internal sealed unsafe class Encoded : IDisposable
{
    private readonly byte* _data;
    private readonly int _rowBytes;

    private Encoded(byte* data, int rowBytes, WeightTensor tensor)
    {
        _data = data;
        _rowBytes = rowBytes;
        Tensor = tensor;
    }

    public WeightTensor Tensor { get; }

    public static Encoded Random(TensorType type, int rows, int cols, int seed)
    {
        var random = new Random(seed);
        var rowBytes = TensorEncoding.RowBytes(type, cols);
        var data = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * rows), 64);
        var row = new float[cols];
        for (var r = 0; r < rows; r++)
        {
            for (var k = 0; k < cols; k++)
            {
                row[k] = (float)((random.NextDouble() * 2) - 1) * (k % 7 == 0 ? 4f : 0.5f);
            }

            TensorEncoding.EncodeRow(row, type, new Span<byte>(data + ((long)r * rowBytes), rowBytes));
        }

        return new Encoded(data, rowBytes, new WeightTensor(data, type, rows, cols));
    }

    public ReadOnlySpan<byte> Row(int r) => new(_data + ((long)r * _rowBytes), _rowBytes);

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
