using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Models;
using RawInfer.Models.Llama2c;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer bench</c> (offline): on a synthetic checkpoint (random weights, so fixed output lengths with EOS
/// ignored), Poisson arrivals with mixed prompt and output lengths through continuous and static batching, then
/// batched decode throughput at several concurrencies. With <c>--server</c>, a load generator against a running
/// server instead (<see cref="ServerBench"/>).
/// </summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var shape = new Option<string>("--shape") { Description = "Synthetic model shape.", DefaultValueFactory = _ => "110m" };
        var modelPath = new Option<string?>("--model-path") { Description = "Where to write (or reuse) the synthetic checkpoint; default: a temp file." };
        var requests = new Option<int>("--requests") { Description = "Requests per batching run.", DefaultValueFactory = _ => 64 };
        var rate = new Option<double>("--rate") { Description = "Poisson arrival rate, requests/s.", DefaultValueFactory = _ => 8 };
        var prompt = new Option<string>("--prompt-lengths") { Description = "min:max prompt tokens.", DefaultValueFactory = _ => "16:128" };
        var outputs = new Option<string>("--output-lengths") { Description = "min:max output tokens.", DefaultValueFactory = _ => "16:64" };
        var concurrency = new Option<string>("--decode-concurrency") { Description = "Comma-separated batched-decode concurrencies.", DefaultValueFactory = _ => "1,4,16,64" };
        var decodeTokens = new Option<int>("--decode-tokens") { Description = "Tokens each decode-test sequence generates.", DefaultValueFactory = _ => 32 };
        var kvMiB = new Option<int>("--kv-mib") { Description = "KV-cache budget in MiB.", DefaultValueFactory = _ => 1024 };
        var staticBatch = new Option<int>("--static-batch") { Description = "Batch size of the static-batching run.", DefaultValueFactory = _ => 16 };
        var threads = new Option<int>("--threads") { Description = "CPU threads; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var command = new Command("bench", "Offline benchmark: continuous vs static batching, batched decode scaling.");
        foreach (var option in new Option[] { shape, modelPath, requests, rate, prompt, outputs, concurrency, decodeTokens, kvMiB, staticBatch, threads })
        {
            command.Options.Add(option);
        }

        var serverBench = ServerBench.AddTo(command);
        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            if (serverBench.IsRequested(parse))
            {
                return await serverBench.RunAsync(parse, parse.GetValue(requests), parse.GetValue(rate), parse.GetValue(prompt)!,
                    parse.GetValue(outputs)!, output, error, context, ct).ConfigureAwait(false);
            }

            var config = ModelShapes.Parse(parse.GetValue(shape)!);
            var path = parse.GetValue(modelPath) ?? Path.Combine(Path.GetTempPath(), $"rawinfer-bench-{parse.GetValue(shape)}.bin");
            if (!File.Exists(path))
            {
                await error.WriteLineAsync($"writing synthetic {parse.GetValue(shape)} checkpoint to {path}").ConfigureAwait(false);
                Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 1);
            }

            using var model = ModelFiles.Load(path);
            var threadCount = parse.GetValue(threads);
            var tokenizer = new SilentTokenizer(model.Config.VocabSize);
            var kvBytes = (long)parse.GetValue(kvMiB) << 20;
            var (pMin, pMax) = Range(parse.GetValue(prompt)!, "--prompt-lengths");
            var (oMin, oMax) = Range(parse.GetValue(outputs)!, "--output-lengths");
            var workload = Workload(parse.GetValue(requests), parse.GetValue(rate), pMin, pMax, oMin, oMax, model.Config);

            await output.WriteLineAsync("| mode | requests/s | tokens/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | latency p50 ms | latency p99 ms |").ConfigureAwait(false);
            await output.WriteLineAsync("|---|---|---|---|---|---|---|---|---|").ConfigureAwait(false);
            foreach (var mode in new[] { BatchingMode.Continuous, BatchingMode.Static })
            {
                var options = new EngineOptions
                {
                    KvCacheBytes = kvBytes, Batching = mode,
                    MaxRunningSequences = mode == BatchingMode.Static ? parse.GetValue(staticBatch) : 100,
                    MaxQueuedRequests = workload.Count + 1,
                };
                var s = await RunArrivals(model, threadCount, tokenizer, options, workload, ct).ConfigureAwait(false);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"| {mode} | {s.RequestsPerSecond:F2} | {s.TokensPerSecond:F1} | {s.TtftP50Ms:F0} | {s.TtftP99Ms:F0} | {s.TpotP50Ms:F1} | {s.TpotP99Ms:F1} | {s.LatencyP50Ms:F0} | {s.LatencyP99Ms:F0} |")).ConfigureAwait(false);
            }

            await output.WriteLineAsync().ConfigureAwait(false);
            await output.WriteLineAsync("| concurrent sequences | decode tokens/s | speed-up |").ConfigureAwait(false);
            await output.WriteLineAsync("|---|---|---|").ConfigureAwait(false);
            double single = 0;
            foreach (var c in parse.GetValue(concurrency)!.Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var n = int.Parse(c, CultureInfo.InvariantCulture);
                var tps = await DecodeThroughput(model, threadCount, tokenizer, kvBytes, n, parse.GetValue(decodeTokens), ct).ConfigureAwait(false);
                single = single == 0 ? tps : single;
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"| {n} | {tps:F1} | {tps / single:F2}x |")).ConfigureAwait(false);
            }

            return 0;
        }));
        return command;
    }

    private static (int Min, int Max) Range(string text, string option)
    {
        var parts = text.Split(':');
        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var min)
            || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var max) || min < 1 || max < min)
        {
            throw new CliException($"{option} must be MIN:MAX with 1 <= MIN <= MAX, not '{text}'");
        }

        return (min, max);
    }

    /// <summary>Requests with exponential gaps (a Poisson process), random prompts and fixed output lengths.</summary>
    private static List<(TimeSpan At, GenerationRequest Request)> Workload(
        int count, double rate, int pMin, int pMax, int oMin, int oMax, ModelConfig config)
    {
        var random = new Random(42);
        var list = new List<(TimeSpan, GenerationRequest)>();
        var t = 0.0;
        for (var i = 0; i < count; i++)
        {
            t += -Math.Log(1 - random.NextDouble()) / rate;
            var promptLength = Math.Min(random.Next(pMin, pMax + 1), config.MaxSeqLen - oMax);
            var prompt = new int[Math.Max(promptLength, 1)];
            for (var k = 0; k < prompt.Length; k++)
            {
                prompt[k] = random.Next(3, config.VocabSize);
            }

            list.Add((TimeSpan.FromSeconds(t), new GenerationRequest
            {
                PromptTokenIds = prompt, MaxTokens = random.Next(oMin, oMax + 1), IgnoreEos = true, RequestId = $"b{i}",
            }));
        }

        return list;
    }

    private static async Task<EngineRunSummary> RunArrivals(
        LoadedModel model, int threads, ITokenizer tokenizer, EngineOptions options,
        List<(TimeSpan At, GenerationRequest Request)> workload, CancellationToken ct)
    {
        using var runner = new CpuModelRunner(model, threads); // a runner allocates its KV cache once
        await using var engine = new InferenceEngine(runner, tokenizer, options);
        var clock = Stopwatch.StartNew();
        var tasks = new List<Task<GenerationResult>>();
        foreach (var (at, request) in workload)
        {
            var wait = at - clock.Elapsed;
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, ct).ConfigureAwait(false);
            }

            tasks.Add(engine.GenerateAsync(request, ct));
        }

        var results = await Task.WhenAll(tasks).ConfigureAwait(false);
        return EngineRunSummary.From(results, clock.Elapsed);
    }

    /// <summary>Generated tokens per second with <paramref name="sequences"/> requests decoding together.</summary>
    private static async Task<double> DecodeThroughput(
        LoadedModel model, int threads, ITokenizer tokenizer, long kvBytes, int sequences, int tokens, CancellationToken ct)
    {
        using var runner = new CpuModelRunner(model, threads);
        await using var engine = new InferenceEngine(runner, tokenizer, new EngineOptions
        {
            KvCacheBytes = kvBytes, MaxRunningSequences = Math.Max(sequences, 1), MaxQueuedRequests = sequences + 1,
        });
        var requests = Enumerable.Range(0, sequences).Select(i => new GenerationRequest
        {
            PromptTokenIds = [1, 3 + i], MaxTokens = tokens, IgnoreEos = true,
        });
        var clock = Stopwatch.StartNew();
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, ct))).ConfigureAwait(false);
        return results.Sum(r => r.Usage.CompletionTokens) / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Random weights make random tokens: the benchmark measures speed and prints no text.</summary>
    private sealed class SilentTokenizer(int vocabSize) : ITokenizer
    {
        public int VocabSize => vocabSize;

        public int BosId => 1;

        public int EosId => 2;

        public int[] Encode(string text, bool addBos, bool addEos) => addBos ? [1] : [];

        public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId) => [];
    }
}
