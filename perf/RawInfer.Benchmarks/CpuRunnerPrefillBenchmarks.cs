using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using RawInfer.Models;

namespace RawInfer.Benchmarks;

/// <summary>
/// A 512-token prompt of the synthetic 110M model (see <see cref="CpuRunnerFixture"/>) prefilled as one chunk
/// through the CPU runner; logits only for the last row, as the engine asks.
/// tok/s = 512 / time; GFLOP/s = 2 · parameters · 512 / time (the classifier runs for one row only, so the
/// matrix work actually done is about 78% of that count).
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*CpuRunner*' --job short
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ColumnConfig))]
public class CpuRunnerPrefillBenchmarks
{
    private const int PromptTokens = 512;
    private CpuRunnerFixture? _fixture;

    /// <summary>Runner threads. On a loaded machine a descheduled worker stalls every fork-join, so 1 is shown too.</summary>
    [Params(1, 2)]
    public int Threads { get; set; } = 2;

    /// <summary>The F32 GEMM: "tiled3x8" (current) or "baseline4x4" (the earlier kernel, for a same-run comparison).</summary>
    [Params("tiled3x8", "baseline4x4")]
    public string Gemm { get; set; } = "tiled3x8";

    [GlobalSetup]
    public void Setup()
    {
        RawInfer.Cpu.Kernels.GemmF32.UseTiled512 = Gemm == "tiled3x8";
        _fixture = CpuRunnerFixture.PrefillStep(PromptTokens, Threads);
    }

    /// <summary>The whole prompt in one step (rewriting the same slots each time).</summary>
    [Benchmark]
    public float Prefill512()
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
            AddColumn(new CpuRateColumn("tok/s", "prompt tokens per second", 1, _ => PromptTokens));
            AddColumn(new CpuRateColumn(
                "GFLOP/s", "2 · parameters · tokens per second (1e9)", 1e9, _ => 2.0 * ModelShapes.Parse("110m").ParameterCount * PromptTokens));
        }
    }
}
