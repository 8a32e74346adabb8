using System.Net;
using BenchmarkDotNet.Attributes;
using RawInfer.Client;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Models;
using RawInfer.Models.Llama2c;
using RawInfer.Protocol;
using RawInfer.Safety.Access;
using RawInfer.Server;
using RawInfer.Tokenizers;

namespace RawInfer.Benchmarks;

/// <summary>
/// End-to-end cost per generated token: the in-process <see cref="InferenceEngine.StreamAsync"/> (baseline) against
/// the same request streamed through the TCP server and client on 127.0.0.1. The ratio is the server's overhead
/// per token (goal: under 5% on a model of useful size). Synthetic checkpoints with EOS ignored, so every run
/// generates exactly <see cref="Tokens"/> tokens.
/// Run: <c>dotnet run -c Release --project perf/RawInfer.Benchmarks -- --filter "*ServerOverheadBenchmarks*"</c>.
/// </summary>
[MemoryDiagnoser]
public class ServerOverheadBenchmarks
{
    private const int Tokens = 64;
    private const string Key = "bench-key";

    private string _path = "";
    private LoadedModel? _model;
    private CpuModelRunner? _runner;
    private InferenceEngine? _engine;
    private RawInferServer? _server;
    private RawInferClient? _client;

    [Params("260k", "15m", "110m")]
    public string Shape { get; set; } = "260k";

    [GlobalSetup]
    public void Setup()
    {
        _path = Path.Combine(Path.GetTempPath(), $"rawinfer-bench-server-{Shape}-{Environment.ProcessId}.bin");
        Llama2cCheckpointWriter.WriteSynthetic(_path, ModelShapes.Parse(Shape), seed: 1);
        _model = Llama2cCheckpoint.Load(_path);
        _runner = new CpuModelRunner(_model);
        var tokenizer = new IdTokenizer(_model.Config.VocabSize);
        _engine = new InferenceEngine(_runner, tokenizer, new EngineOptions { KvCacheBytes = 64 << 20 });
        _server = new RawInferServer(_engine, tokenizer,
            new StaticApiKeyAuthenticator([(Key, new Principal("bench", KeyRole.Client, new KeyLimits()))]),
            new ServerOptions { Endpoint = new IPEndPoint(IPAddress.Loopback, 0) });
        _server.Start();
        _client = RawInferClient.ConnectAsync(_server.LocalEndPoint!, Key).GetAwaiter().GetResult();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _client!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _server!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _engine!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _runner!.Dispose();
        _model!.Dispose();
        File.Delete(_path);
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Tokens)]
    public async Task<int> InProcess()
    {
        var count = 0;
        await foreach (var chunk in _engine!.StreamAsync(new GenerationRequest { PromptTokenIds = [1, 5, 9], MaxTokens = Tokens, IgnoreEos = true }))
        {
            count += chunk.TokenIds.Count;
        }

        return count;
    }

    [Benchmark(OperationsPerInvoke = Tokens)]
    public async Task<int> OverTcpServer()
    {
        var count = 0;
        await foreach (var chunk in _client!.StreamAsync(new SubmitFrame { PromptTokenIds = [1, 5, 9], MaxTokens = Tokens, IgnoreEos = true }))
        {
            count += chunk.TokenIds.Count;
        }

        return count;
    }

    /// <summary>Random weights make random tokens: ids only, no text.</summary>
    private sealed class IdTokenizer(int vocabSize) : ITokenizer
    {
        public int VocabSize => vocabSize;

        public int BosId => 1;

        public int EosId => 2;

        public int[] Encode(string text, bool addBos, bool addEos) => addBos ? [1] : [];

        public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId) => [];
    }
}
