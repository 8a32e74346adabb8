using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using RawInfer.Cpu;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Models.Llama2c;

namespace RawInfer.Benchmarks;

/// <summary>
/// Single-sequence decode of a synthetic 110M checkpoint (dim 768, hidden 2048, 12 layers, 12 heads, vocab 32000,
/// F32, about 0.44 GB of weights read per token): one operation decodes positions 0..63 (64 tokens); the tok/s
/// column divides by that.
/// Run: dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter '*CpuDecodeBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
[Config(typeof(ColumnConfig))]
public class CpuDecodeBenchmarks
{
    private const int TokensPerInvoke = 64;

    private string? _path;
    private LoadedModel? _model;
    private CpuTransformer? _transformer;
    private ContiguousKvCache? _kv;

    [Params(1, 2)]
    public int Threads { get; set; } = 2;

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"rawinfer-bench-110m-{Environment.ProcessId}.bin");
        Llama2cCheckpointWriter.WriteSynthetic(_path, ModelShapes.Parse("110m"), seed: 1);
        _model = Llama2cCheckpoint.Load(_path);
        _transformer = new CpuTransformer(_model, Threads);
        _kv = _transformer.CreateKvCache(TokensPerInvoke);
    }

    [Benchmark]
    public float Decode64Tokens()
    {
        var sum = 0f;
        for (var position = 0; position < TokensPerInvoke; position++)
        {
            var token = (position * 7919) % _transformer!.Config.VocabSize;
            sum += _transformer.Forward(token, position, _kv!)[0];
        }

        return sum;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _transformer?.Dispose();
        _model?.Dispose();
        if (_path is not null)
        {
            File.Delete(_path);
        }
    }

    private sealed class ColumnConfig : ManualConfig
    {
        public ColumnConfig() => AddColumn(new CpuRateColumn("tok/s", "tokens decoded per second", 1, _ => TokensPerInvoke));
    }
}
