using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Benchmarks;

/// <summary>
/// Widening one GEMM tile of F16 or Q8_0 weights to float32 (64 rows of 768 columns, the batched path's tile at the
/// 110M shape), one thread, source and tile in cache: the per-step conversion cost of the batched F16/Q8_0 path.
/// Against the earlier kernels (<see cref="Widen.F16Baseline"/>, <see cref="Widen.Q8_0Baseline"/>), which give
/// the same bits. Gw/s = weights widened per second (1e9).
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*WidenBenchmarks*' --job short
/// </summary>
[Config(typeof(ColumnConfig))]
public unsafe class WidenBenchmarks
{
    private const int Rows = 64;
    private const int Cols = 768;
    private byte* _source;
    private float* _tile;
    private int _rowBytes;

    [Params("f16", "q8_0")]
    public string Type { get; set; } = "f16";

    [GlobalSetup]
    public void Setup()
    {
        var type = Type == "f16" ? TensorType.F16 : TensorType.Q8_0;
        _rowBytes = TensorEncoding.RowBytes(type, Cols);
        _source = (byte*)NativeMemory.AlignedAlloc((nuint)(_rowBytes * Rows), 64);
        _tile = (float*)NativeMemory.AlignedAlloc((nuint)(Rows * Cols * sizeof(float)), 64);
        var random = new Random(1);
        var row = new float[Cols];
        for (var r = 0; r < Rows; r++)
        {
            for (var k = 0; k < Cols; k++)
            {
                row[k] = (float)(random.NextDouble() - 0.5);
            }

            TensorEncoding.EncodeRow(row, type, new Span<byte>(_source + ((long)r * _rowBytes), _rowBytes));
        }
    }

    [Benchmark]
    public void Current() => WidenTile(&Widen.F16, &Widen.Q8_0);

    [Benchmark(Baseline = true)]
    public void Baseline() => WidenTile(&Widen.F16Baseline, &Widen.Q8_0Baseline);

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_source);
        NativeMemory.AlignedFree(_tile);
    }

    /// <summary>Every row of the tile through the kernel for <see cref="Type"/>.</summary>
    private void WidenTile(delegate*<ushort*, float*, int, void> f16, delegate*<byte*, float*, int, void> q8)
    {
        for (var r = 0; r < Rows; r++)
        {
            var row = _source + ((long)r * _rowBytes);
            if (Type == "f16")
            {
                f16((ushort*)row, _tile + (r * Cols), Cols);
            }
            else
            {
                q8(row, _tile + (r * Cols), Cols);
            }
        }
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig()
        {
            AddColumn(StatisticColumn.Min);
            AddColumn(new CpuRateColumn("Gw/s", "weights widened per second (1e9)", 1e9, _ => Rows * Cols));
        }
    }
}
