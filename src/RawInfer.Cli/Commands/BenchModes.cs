using System.Diagnostics;
using System.Globalization;
using RawInfer.Engine;
using RawInfer.Engine.Runner;
using RawInfer.Gpu.Device;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Commands;

/// <summary>What one focused bench run measures with, shared by the prefill, decode and batched modes.</summary>
/// <param name="Model">The loaded synthetic model.</param>
/// <param name="Threads">Runner threads (0 = all cores).</param>
/// <param name="Options">Engine options (KV budget and the command's engine limits applied).</param>
/// <param name="Runs">Timed runs; the median is reported.</param>
/// <param name="Warmup">Untimed runs first.</param>
/// <param name="Device">Backend, already resolved by the command (auto without a CUDA device is cpu here).</param>
/// <param name="KvCacheType">The CPU runner's KV cache element type.</param>
internal sealed record BenchSetup(
    LoadedModel Model, int Threads, EngineOptions Options, int Runs, int Warmup, DeviceChoice Device = DeviceChoice.Cpu, KvCacheType KvCacheType = KvCacheType.F32)
{
    public ITokenizer Tokenizer { get; } = new SilentTokenizer(Model.Config.VocabSize);

    /// <summary>A fresh runner on <see cref="Device"/> sized for <see cref="Options"/>.</summary>
    public IModelRunner CreateRunner() => ModelRunnerFactory.Create(Model, Device, Threads, Options, out _, KvCacheType);
}

/// <summary>
/// <c>rawinfer bench --mode prefill|decode|batched</c>: one figure each, end to end through the engine (scheduler,
/// batch building, CPU runner, greedy sampling), as the median of several runs after warm-up. Prompts are seeded
/// random tokens that differ from run to run, so the prefix cache never shortens a prefill.
/// </summary>
internal static class BenchModes
{
    /// <summary>Prompt tokens per second: a prompt of <paramref name="promptTokens"/> tokens, one output token, N / TTFT.</summary>
    public static async Task PrefillAsync(BenchSetup setup, int promptTokens, TextWriter output, CancellationToken ct)
    {
        var config = setup.Model.Config;
        if (promptTokens < 1 || promptTokens >= config.MaxSeqLen)
        {
            throw new CliException($"--prompt-tokens must be in 1..{config.MaxSeqLen - 1} for this model, not {promptTokens}");
        }

        using var runner = setup.CreateRunner();
        await using var engine = new InferenceEngine(runner, setup.Tokenizer, setup.Options);
        await engine.WarmedUp.WaitAsync(ct).ConfigureAwait(false);
        var ttft = new List<double>();
        var random = new Random(11);
        for (var r = -setup.Warmup; r < setup.Runs; r++)
        {
            var request = new GenerationRequest { PromptTokenIds = RandomTokens(random, promptTokens, config), MaxTokens = 1, IgnoreEos = true };
            var result = await engine.GenerateAsync(request, ct).ConfigureAwait(false);
            if (r >= 0)
            {
                ttft.Add((result.Usage.TimeToFirstToken ?? result.Usage.TotalTime).TotalSeconds);
            }
        }

        var median = Median(ttft);
        await output.WriteLineAsync("| prompt tokens | prefill tokens/s | TTFT ms |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|---|").ConfigureAwait(false);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"| {promptTokens} | {promptTokens / median:F1} | {median * 1e3:F0} |")).ConfigureAwait(false);
    }

    /// <summary>Single-sequence decode tokens per second: (output tokens − 1) / (total time − TTFT).</summary>
    public static async Task DecodeAsync(BenchSetup setup, int decodeTokens, TextWriter output, CancellationToken ct)
    {
        var config = setup.Model.Config;
        if (decodeTokens < 2 || decodeTokens + 2 > config.MaxSeqLen)
        {
            throw new CliException($"--decode-tokens must be in 2..{config.MaxSeqLen - 2} for this model, not {decodeTokens}");
        }

        using var runner = setup.CreateRunner();
        await using var engine = new InferenceEngine(runner, setup.Tokenizer, setup.Options);
        await engine.WarmedUp.WaitAsync(ct).ConfigureAwait(false);
        var tpot = new List<double>();
        var random = new Random(12);
        for (var r = -setup.Warmup; r < setup.Runs; r++)
        {
            var request = new GenerationRequest { PromptTokenIds = RandomTokens(random, 2, config), MaxTokens = decodeTokens, IgnoreEos = true };
            var usage = (await engine.GenerateAsync(request, ct).ConfigureAwait(false)).Usage;
            if (r >= 0 && usage.CompletionTokens > 1)
            {
                var decode = usage.TotalTime - (usage.TimeToFirstToken ?? TimeSpan.Zero);
                tpot.Add(decode.TotalSeconds / (usage.CompletionTokens - 1));
            }
        }

        var median = Median(tpot);
        await output.WriteLineAsync("| decode tokens/s | TPOT ms |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|").ConfigureAwait(false);
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"| {1 / median:F1} | {median * 1e3:F2} |")).ConfigureAwait(false);
    }

    /// <summary>The decode-concurrency table: generated tokens per second at each concurrency (median of the runs).</summary>
    public static async Task BatchedAsync(BenchSetup setup, IReadOnlyList<int> concurrencies, int decodeTokens, int? maxRunning,
        TextWriter output, CancellationToken ct)
    {
        await output.WriteLineAsync("| concurrent sequences | decode tokens/s | speed-up |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|---|").ConfigureAwait(false);
        double single = 0;
        foreach (var n in concurrencies)
        {
            var rates = new List<double>();
            for (var r = -setup.Warmup; r < setup.Runs; r++)
            {
                var tps = await DecodeThroughputAsync(setup, n, decodeTokens, maxRunning, ct).ConfigureAwait(false);
                if (r >= 0)
                {
                    rates.Add(tps);
                }
            }

            var median = Median(rates);
            single = single == 0 ? median : single;
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"| {n} | {median:F1} | {median / single:F2}x |")).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Generated tokens per second with <paramref name="sequences"/> requests decoding together (two-token prompts,
    /// so the time is almost all decode). Runs at most <paramref name="maxRunning"/> at once when it is given.
    /// </summary>
    public static async Task<double> DecodeThroughputAsync(BenchSetup setup, int sequences, int tokens, int? maxRunning, CancellationToken ct)
    {
        using var runner = setup.CreateRunner();
        await using var engine = new InferenceEngine(runner, setup.Tokenizer, setup.Options with
        {
            MaxRunningSequences = maxRunning ?? Math.Max(sequences, 1), MaxQueuedRequests = sequences + 1,
        });
        await engine.WarmedUp.WaitAsync(ct).ConfigureAwait(false);
        var tasks = new Task<GenerationResult>[sequences];
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < sequences; i++)
        {
            tasks[i] = engine.GenerateAsync(new GenerationRequest { PromptTokenIds = [1, 3 + i], MaxTokens = tokens, IgnoreEos = true }, ct);
        }

        var results = await Task.WhenAll(tasks).ConfigureAwait(false);
        long generated = 0;
        foreach (var result in results)
        {
            generated += result.Usage.CompletionTokens;
        }

        return generated / clock.Elapsed.TotalSeconds;
    }

    /// <summary>Comma-separated positive integers (the --decode-concurrency list).</summary>
    public static List<int> ParseList(string text, string option)
    {
        var values = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < 1)
            {
                throw new CliException($"{option} must be comma-separated integers >= 1, not '{text}'");
            }

            values.Add(value);
        }

        return values.Count > 0 ? values : throw new CliException($"{option} is empty");
    }

    private static int[] RandomTokens(Random random, int count, ModelConfig config)
    {
        var tokens = new int[count];
        tokens[0] = 1; // BOS
        for (var i = 1; i < count; i++)
        {
            tokens[i] = random.Next(3, config.VocabSize);
        }

        return tokens;
    }

    internal static double Median(List<double> values)
    {
        if (values.Count == 0)
        {
            throw new CliException("no timed run produced a figure");
        }

        values.Sort();
        var mid = values.Count / 2;
        return values.Count % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
    }
}
