using System.Globalization;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Threading;
using RawInfer.Models;

namespace RawInfer.Benchmarks;

/// <summary>
/// F32 matrix-vector products at the 110M model's shapes (rows x cols), on 1 or 2 threads through the CPU
/// worker pool. GB/s counts the weight bytes read per product. The smaller matrices fit in L2/L3, so their
/// figure is cache bandwidth; 32000x768 (98 MB, the classifier) shows DRAM bandwidth.
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*CpuKernelBenchmarks*'
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ColumnConfig))]
public unsafe class CpuKernelBenchmarks
{
    private float* _weights;
    private float* _x;
    private float* _y;
    private WeightTensor _tensor;
    private CpuWorkerPool? _pool;
    private MatVecJob? _job;
    private FourRowJob? _previous;

    [Params("768x768", "2048x768", "768x2048", "32000x768")]
    public string Shape { get; set; } = "768x768";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        var (rows, cols) = ParseShape(Shape);
        _weights = RandomBuffers.Floats((long)rows * cols, seed: 1);
        _x = RandomBuffers.Floats(cols, seed: 2);
        _y = RandomBuffers.Floats(rows, seed: 3);
        _tensor = new WeightTensor((byte*)_weights, TensorType.F32, rows, cols);
        _pool = new CpuWorkerPool(Threads);
        _job = new MatVecJob();
        _previous = new FourRowJob();
    }

    /// <summary>The transformer's path: chunked job, one row streamed at a time.</summary>
    [Benchmark]
    public void MatVecF32() => _pool!.Run(_job!.Reset(_x).Add(_tensor, _y));

    /// <summary>The previous kernel (four rows in lockstep) split statically by worker share, as before.</summary>
    [Benchmark(Baseline = true)]
    public void MatVecF32Previous() => _pool!.Run(_previous!.Reset(_weights, _tensor.Cols, _x, _y, _tensor.Rows));

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool?.Dispose();
        NativeMemory.AlignedFree(_weights);
        NativeMemory.AlignedFree(_x);
        NativeMemory.AlignedFree(_y);
    }

    internal static (int Rows, int Cols) ParseShape(string shape)
    {
        var parts = shape.Split('x');
        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
    }

    /// <summary>The previous split: one fixed share per worker, four-row kernel.</summary>
    private sealed class FourRowJob : CpuJob
    {
        private float* _w;
        private int _cols;
        private float* _x;
        private float* _y;
        private int _rows;

        public FourRowJob Reset(float* w, int cols, float* x, float* y, int rows)
        {
            _w = w;
            _cols = cols;
            _x = x;
            _y = y;
            _rows = rows;
            return this;
        }

        public override void Execute(int worker, int workerCount)
        {
            var (start, end) = Share(_rows, worker, workerCount, 4);
            Cpu.Kernels.MatVecF32.Vector512Path(_w, _cols, _x, _y, start, end);
        }
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig() =>
            AddColumn(new CpuRateColumn("GB/s", "weight bytes read per second (1e9)", 1e9, WeightBytes));

        private static double WeightBytes(BenchmarkCase c)
        {
            var (rows, cols) = ParseShape((string)c.Parameters["Shape"]);
            return (double)rows * cols * sizeof(float);
        }
    }
}
