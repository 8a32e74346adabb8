using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Benchmarks;

/// <summary>
/// One single-threaded matrix-vector product (4096 x 4096, a Llama-7B attention projection) per weight type.
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter "*QuantizedBenchmarks*"
/// </summary>
[MemoryDiagnoser]
public unsafe class QuantizedBenchmarks
{
    private const int Rows = 4096;
    private const int Cols = 4096;

    private byte* _data;
    private WeightTensor _w;
    private float[] _x = [];
    private float[] _y = [];

    [Params(TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0)]
    public TensorType Type { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(1);
        int rowBytes = TensorEncoding.RowBytes(Type, Cols);
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)((long)rowBytes * Rows), 64);
        var row = new float[Cols];
        for (int r = 0; r < Rows; r++)
        {
            for (int c = 0; c < Cols; c++)
            {
                row[c] = (random.NextSingle() * 2) - 1;
            }

            TensorEncoding.EncodeRow(row, Type, new Span<byte>(_data + ((long)r * rowBytes), rowBytes));
        }

        _w = new WeightTensor(_data, Type, Rows, Cols);
        _x = new float[Cols];
        for (int c = 0; c < Cols; c++)
        {
            _x[c] = (random.NextSingle() * 2) - 1;
        }

        _y = new float[Rows];
    }

    [GlobalCleanup]
    public void Cleanup() => NativeMemory.AlignedFree(_data);

    /// <summary>The whole product, including quantizing x for Q8_0.</summary>
    [Benchmark]
    public void MatVec()
    {
        switch (Type)
        {
            case TensorType.F32: MatVecF32.Rows(_w, _x, _y, 0, Rows); break;
            case TensorType.F16: MatVecF16.Rows(_w, _x, _y, 0, Rows); break;
            case TensorType.BF16: MatVecBF16.Rows(_w, _x, _y, 0, Rows); break;
            default: MatVecQ8_0.Rows(_w, _x, _y, 0, Rows); break;
        }
    }
}
