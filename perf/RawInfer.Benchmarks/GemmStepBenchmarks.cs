using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Benchmarks;

/// <summary>
/// The matrix products of one batched engine step of the 110M shape (12 layers of q, k, v, o 768×768, gate and
/// up 2048×768, down 768×2048) through <see cref="Gemm"/>, one thread, weights in memory far larger than the
/// cache (as a model's are), so each step streams them from DRAM once per X block. Compares the tiled GEMM with
/// and without prefetching the next tile while the current one computes (<see cref="PrefetchAhead"/>); F16 and
/// Q8_0 widen tile by tile. GFLOP/s = 2 · weights · rows / time.
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*GemmStepBenchmarks*' --job short
/// </summary>
[Config(typeof(ColumnConfig))]
public unsafe class GemmStepBenchmarks
{
    private static readonly (int Rows, int Cols)[] LayerShapes =
        [(768, 768), (768, 768), (768, 768), (768, 768), (2048, 768), (2048, 768), (768, 2048)];

    private const int Layers = 12;

    private readonly List<nint> _allocations = [];
    private WeightTensor[] _weights = [];
    private float* _x;
    private float* _y;

    [Params("f32", "f16", "q8_0")]
    public string Type { get; set; } = "f32";

    [Params(16, 64)]
    public int Rows { get; set; } = 64;

    [Params(true, false)]
    public bool Prefetch { get; set; } = true;

    [GlobalSetup]
    public void Setup()
    {
        var type = Type switch { "f16" => TensorType.F16, "q8_0" => TensorType.Q8_0, _ => TensorType.F32 };
        var random = new Random(1);
        var weights = new List<WeightTensor>();
        for (var l = 0; l < Layers; l++)
        {
            foreach (var (rows, cols) in LayerShapes)
            {
                var rowBytes = TensorEncoding.RowBytes(type, cols);
                var data = (byte*)Allocate((long)rowBytes * rows);
                var row = new float[cols];
                for (var r = 0; r < rows; r++)
                {
                    for (var k = 0; k < cols; k++)
                    {
                        row[k] = (float)(random.NextDouble() - 0.5);
                    }

                    TensorEncoding.EncodeRow(row, type, new Span<byte>(data + ((long)r * rowBytes), rowBytes));
                }

                var w = new WeightTensor(data, type, rows, cols);
                if (type == TensorType.Q8_0 && GemmQ8_0.InterleavedSupported)
                {
                    // the copy the CPU backends read in decode steps of one to three sequences (InterleavedCopies)
                    var copy = (byte*)Allocate(GemmQ8_0.InterleavedBytes(in w));
                    GemmQ8_0.Interleave(in w, copy);
                    w = w.WithInterleaved(copy);
                }

                weights.Add(w);
            }
        }

        _weights = [.. weights];
        _x = (float*)Allocate((long)Rows * 2048 * sizeof(float));
        _y = (float*)Allocate((long)Rows * 2048 * sizeof(float));
        for (var i = 0; i < Rows * 2048; i++)
        {
            _x[i] = (float)(random.NextDouble() - 0.5);
        }

        GemmF32.PrefetchTiles = Prefetch;
    }

    /// <summary>Every product of one step, in the order a layer runs them.</summary>
    [Benchmark]
    public void Step()
    {
        foreach (ref readonly var w in _weights.AsSpan())
        {
            Gemm.Rows(in w, _x, Rows, _y, 0, w.Rows);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        GemmF32.PrefetchTiles = true;
        foreach (var p in _allocations)
        {
            NativeMemory.AlignedFree((void*)p);
        }

        _allocations.Clear();
    }

    private void* Allocate(long bytes)
    {
        var p = NativeMemory.AlignedAlloc((nuint)bytes, 4096);
        _allocations.Add((nint)p);
        return p;
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig()
        {
            AddColumn(StatisticColumn.Min);
            AddColumn(new CpuRateColumn("GFLOP/s", "2 · weights · rows per second (1e9)", 1e9, Flops));
        }

        private static double Flops(BenchmarkCase c)
        {
            long weights = 0;
            foreach (var (rows, cols) in LayerShapes)
            {
                weights += (long)rows * cols;
            }

            return 2.0 * weights * Layers * (int)c.Parameters["Rows"];
        }
    }
}
