using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using RawInfer.Models;

namespace RawInfer.Benchmarks;

/// <summary>
/// One batched decode step of the synthetic 110M model (see <see cref="CpuRunnerFixture"/>) through the CPU
/// runner: <see cref="Sequences"/> sequences, each with 128 tokens of context already cached, one new token each.
/// tok/s = sequences / step time; GFLOP/s = 2 · parameters · tokens / time.
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*CpuRunner*' --job short
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ColumnConfig))]
public class CpuRunnerBenchmarks
{
    private const int Context = 128;
    private CpuRunnerFixture? _fixture;

    /// <summary>Runner threads. On a loaded machine a descheduled worker stalls every fork-join, so 1 is shown too.</summary>
    [Params(1, 2)]
    public int Threads { get; set; } = 2;

    [Params(1, 4, 16, 64)]
    public int Sequences { get; set; } = 1;

    /// <summary>
    /// The F32 GEMM: "tiled3x8" (current), "tiled3x8-noprefetch" (without prefetching the next W tile) or
    /// "baseline4x4" (the earlier kernel), for same-run comparisons.
    /// </summary>
    [Params("tiled3x8", "tiled3x8-noprefetch", "baseline4x4")]
    public string Gemm { get; set; } = "tiled3x8";

    [GlobalSetup]
    public void Setup()
    {
        RawInfer.Cpu.Kernels.GemmF32.UseTiled512 = Gemm != "baseline4x4";
        RawInfer.Cpu.Kernels.GemmF32.PrefetchTiles = Gemm != "tiled3x8-noprefetch";
        _fixture = CpuRunnerFixture.DecodeStep(Sequences, Context, Threads);
    }

    /// <summary>One step; it rewrites the same slots each time, so the context stays at 128 tokens.</summary>
    [Benchmark]
    public float DecodeStep()
    {
        _fixture!.Execute();
        return _fixture.Logits[0];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fixture?.Dispose();
        RawInfer.Cpu.Kernels.GemmF32.UseTiled512 = true;
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig()
        {
            // Min next to Mean: on a shared 2-core machine the fastest run is the least disturbed one.
            AddColumn(StatisticColumn.Min);
            AddColumn(new CpuRateColumn("tok/s", "tokens decoded per second", 1, Tokens));
            AddColumn(new CpuRateColumn("GFLOP/s", "2 · parameters · tokens per second (1e9)", 1e9, Flops));
        }

        private static double Tokens(BenchmarkCase c) => (int)c.Parameters["Sequences"];

        private static double Flops(BenchmarkCase c) =>
            2.0 * ModelShapes.Parse("110m").ParameterCount * Tokens(c);
    }
}
