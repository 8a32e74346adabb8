using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Benchmarks;

/// <summary>
/// One single-threaded matrix-vector product (4096 x 4096, a Llama-7B attention projection) per weight type:
/// the current kernels (input prepared once, as the transformer's job does) against the previous ones
/// (Baseline: one row at a time with the library's Half conversion per Q8_0 block, and the five-operation F16
/// conversion). GB/s counts weight bytes; one core's DRAM rate on the 2-core EPYC VM is about 25-30 GB/s
/// (two cores: ~55 GB/s STREAM), and the 4096x4096 matrices (32/16/17 MB) do not fit its caches.
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter "*QuantizedBenchmarks*"
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ColumnConfig))]
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

    /// <summary>The whole product, including preparing x (quantizing it for Q8_0).</summary>
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

    /// <summary>The previous kernels: F32 four rows in lockstep, F16/Q8_0 one row at a time as before, BF16 as now.</summary>
    [Benchmark(Baseline = true)]
    public void MatVecPrevious()
    {
        fixed (float* px = _x)
        fixed (float* py = _y)
        {
            switch (Type)
            {
                case TensorType.F32:
                    MatVecF32.Vector512Path((float*)_data, Cols, px, py, 0, Rows);
                    break;

                case TensorType.F16:
                    for (int r = 0; r < Rows; r++)
                    {
                        py[r] = MatVecF16.DotBaseline((ushort*)_data + ((long)r * Cols), px, Cols);
                    }

                    break;

                case TensorType.BF16:
                    MatVecBF16.Rows(_w, _x, _y, 0, Rows);
                    break;

                default:
                    var q = new sbyte[Cols];
                    var scales = new float[Cols / 32];
                    MatVecQ8_0.QuantizeActivationsScalar(_x, q, scales);
                    fixed (sbyte* pq = q)
                    fixed (float* ps = scales)
                    {
                        int rowBytes = TensorEncoding.RowBytes(Type, Cols);
                        for (int r = 0; r < Rows; r++)
                        {
                            py[r] = MatVecQ8_0.DotBaseline(_data + ((long)r * rowBytes), pq, ps, Cols / 32);
                        }
                    }

                    break;
            }
        }
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig() =>
            AddColumn(new CpuRateColumn("GB/s", "weight bytes read per second (1e9)", 1e9, c =>
                (double)TensorEncoding.RowBytes((TensorType)c.Parameters["Type"], Cols) * Rows));
    }
}
