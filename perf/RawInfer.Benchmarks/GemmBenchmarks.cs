using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using RawInfer.Cpu.Kernels;

namespace RawInfer.Benchmarks;

/// <summary>
/// The F32 GEMM kernel alone (one thread, no pool) at the 110M model's shapes (out x in), for batches of 1, 4,
/// 64 and 512 rows; GFLOP/s = 2 · out · in · rows / time. With one row it is a matrix-vector product and its
/// figure compares with <see cref="CpuKernelBenchmarks"/>; with many rows it should approach the FMA roofline
/// (about 210 GFLOP/s FP32 per core on the 2-core AVX-512 machine, 420 for both; the % column is of one core).
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*GemmBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ColumnConfig))]
public unsafe class GemmBenchmarks
{
    private float* _w;
    private float* _x;
    private float* _y;
    private int _outs;
    private int _cols;

    [Params("768x768", "2048x768", "768x2048")]
    public string Shape { get; set; } = "768x768";

    [Params(1, 4, 64, 512)]
    public int Rows { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        (_outs, _cols) = CpuKernelBenchmarks.ParseShape(Shape);
        _w = RandomBuffers.Floats((long)_outs * _cols, seed: 1);
        _x = RandomBuffers.Floats((long)Rows * _cols, seed: 2);
        _y = RandomBuffers.Floats((long)Rows * _outs, seed: 3);
    }

    /// <summary>The dispatched kernel: on AVX-512 the 3×8 tiled GEMM.</summary>
    [Benchmark]
    public void Gemm() => GemmF32.Rows(_w, _cols, _x, Rows, _y, _outs, 0, _outs);

    /// <summary>The earlier 512-bit 4×4 kernel, kept so old and new are compared in the same run.</summary>
    [Benchmark(Baseline = true)]
    public void Gemm4x4Baseline() => GemmF32.Blocked<GemmF32.Vector512Kernel>(_w, _cols, _x, Rows, _y, _outs, 0, _outs);

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_w);
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_y);
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig()
        {
            // Min next to Mean: on a shared 2-core machine the fastest run is the least disturbed one.
            AddColumn(StatisticColumn.Min);
            AddColumn(new CpuRateColumn("GFLOP/s", "2 · out · in · rows per second (1e9)", 1e9, Flops));
            AddColumn(new CpuRateColumn("%peak1", "percent of one core's 210 GFLOP/s FP32 FMA peak", 210e9 / 100, Flops));
        }

        private static double Flops(BenchmarkCase c)
        {
            var (outs, cols) = CpuKernelBenchmarks.ParseShape((string)c.Parameters["Shape"]);
            return 2.0 * outs * cols * (int)c.Parameters["Rows"];
        }
    }
}
