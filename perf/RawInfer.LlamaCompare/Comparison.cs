using System.Globalization;
using RawInfer.Models;

namespace RawInfer.LlamaCompare;

/// <summary>One test's figures for both engines.</summary>
/// <param name="Test">decode, prefill or batched.</param>
/// <param name="Description">What one run does, in words.</param>
/// <param name="TokensPerRun">Tokens one timed run processes (the numerator of tok/s).</param>
/// <param name="RawInferSeconds">Each timed run of RawInfer, in order.</param>
/// <param name="LlamaSeconds">Each timed run of llama.cpp, in order (interleaved with RawInfer's).</param>
/// <param name="RooflineUnit">GB/s (decode: weight bytes streamed) or GFLOP/s (prefill, batched).</param>
/// <param name="RooflineWorkPerRun">Bytes or FLOPs of one run, in units of 1e9.</param>
/// <param name="RooflineLimit">The machine's limit in the same unit.</param>
/// <param name="LoadBefore">1-minute load average before the test.</param>
/// <param name="LoadAfter">1-minute load average after it.</param>
internal sealed record TestResult(
    string Test, string Description, int TokensPerRun, double[] RawInferSeconds, double[] LlamaSeconds,
    string RooflineUnit, double RooflineWorkPerRun, double RooflineLimit, double LoadBefore, double LoadAfter)
{
    public double RawInferTokensPerSecond => TokensPerRun / MachinePeak.Median(RawInferSeconds);

    public double LlamaTokensPerSecond => TokensPerRun / MachinePeak.Median(LlamaSeconds);

    public double Ratio => RawInferTokensPerSecond / LlamaTokensPerSecond;

    /// <summary>
    /// Lowest and highest ratio of one timed llama.cpp run to the RawInfer run just before it: the spread behind
    /// <see cref="Ratio"/> within one pass. Adjacent runs mostly share the machine's state; on the 2-core Zen 5 VM
    /// (2026-12-05) thirteen F16 decode passes gave ratios of 1.07x–1.31x, while the pairs of one pass spanned
    /// 1.14x–1.17x in one and 1.09x–1.26x in another.
    /// </summary>
    public double PairRatioLow => RawInferSeconds.Zip(LlamaSeconds, (ours, theirs) => theirs / ours).Min();

    /// <summary>The highest of the ratios <see cref="PairRatioLow"/> is the lowest of.</summary>
    public double PairRatioHigh => RawInferSeconds.Zip(LlamaSeconds, (ours, theirs) => theirs / ours).Max();

    public double RawInferRoofline => RooflineWorkPerRun / MachinePeak.Median(RawInferSeconds) / RooflineLimit;

    public double LlamaRoofline => RooflineWorkPerRun / MachinePeak.Median(LlamaSeconds) / RooflineLimit;
}

/// <summary>
/// Runs the requested tests on both engines: warm-up runs, then timed runs alternating RawInfer and llama.cpp
/// (so a burst of load from elsewhere hits both), medians reported. Inputs are seeded pseudo-random token ids,
/// identical for both engines; neither side samples (the next token is given), so only the forward pass is timed.
/// </summary>
internal sealed class Comparison(CompareOptions options, RawInferSide rawInfer, LlamaCppSide llama, TextWriter log)
{
    private readonly ModelConfig _config = rawInfer.Config;

    public double BandwidthGBs { get; set; } = options.BandwidthGBs;

    public double PeakGFlops { get; set; } = options.PeakGFlops;

    public TestResult Run(string test) => test switch
    {
        "decode" => Decode(),
        "prefill" => Prefill(),
        "batched" => Batched(),
        _ => throw new ArgumentException($"unknown test '{test}'"),
    };

    private TestResult Decode()
    {
        var prompt = Tokens(options.DecodePromptTokens, seed: 1);
        var steps = Tokens(options.DecodeTokens, seed: 2);
        var load = LoadAverage();
        using var transformer = rawInfer.CreateTransformer();
        using var context = llama.CreateContext(1, prompt.Length + steps.Length, Math.Max(prompt.Length, 32));
        var kv = transformer.CreateKvCache(prompt.Length + steps.Length);
        var (ours, theirs) = Measure("decode",
            () => RawInferSide.DecodeSeconds(transformer, kv, prompt, steps),
            () => llama.DecodeSeconds(context, prompt, steps));
        var bytes = Roofline.WeightBytesPerToken(rawInfer.Weights) * (double)steps.Length / 1e9;
        return new TestResult("decode", $"1 sequence, {steps.Length} tokens after a {prompt.Length}-token prompt",
            steps.Length, ours, theirs, "GB/s", bytes, BandwidthGBs, load, LoadAverage());
    }

    private TestResult Prefill()
    {
        var prompt = Tokens(options.PrefillTokens, seed: 3);
        var load = LoadAverage();
        using var runner = rawInfer.CreatePrefill(prompt);
        using var context = llama.CreateContext(1, prompt.Length, prompt.Length);
        var (ours, theirs) = Measure("prefill",
            () => RawInferSide.PrefillSeconds(runner),
            () => llama.PrefillSeconds(context, prompt));
        var flops = Roofline.PrefillFlops(_config, prompt.Length) / 1e9;
        return new TestResult("prefill", $"{prompt.Length}-token prompt in one batch, logits for the last row",
            prompt.Length, ours, theirs, "GFLOP/s", flops, PeakGFlops, load, LoadAverage());
    }

    private TestResult Batched()
    {
        int sequences = options.BatchedSequences, promptTokens = options.BatchedPromptTokens, steps = options.BatchedSteps;
        var prompts = new int[sequences][];
        for (var s = 0; s < sequences; s++)
        {
            prompts[s] = Tokens(promptTokens, seed: 100 + s);
        }

        var stepTokens = new int[steps][];
        for (var t = 0; t < steps; t++)
        {
            stepTokens[t] = Tokens(sequences, seed: 1000 + t);
        }

        var load = LoadAverage();
        using var runner = rawInfer.CreateBatched(sequences, promptTokens, steps);
        using var context = llama.CreateContext(sequences, promptTokens + steps, Math.Max(sequences, promptTokens));
        var (ours, theirs) = Measure("batched",
            () => RawInferSide.BatchedDecodeSeconds(runner, prompts, stepTokens),
            () => llama.BatchedDecodeSeconds(context, prompts, stepTokens));
        var flops = Roofline.BatchedDecodeFlops(_config, sequences, promptTokens, steps) / 1e9;
        return new TestResult("batched", $"{sequences} sequences × {steps} decode steps after {promptTokens}-token prompts, logits for every row",
            sequences * steps, ours, theirs, "GFLOP/s", flops, PeakGFlops, load, LoadAverage());
    }

    private (double[] RawInfer, double[] Llama) Measure(string test, Func<double> rawInferRun, Func<double> llamaRun)
    {
        for (var w = 0; w < options.WarmupRuns; w++)
        {
            rawInferRun();
            llamaRun();
        }

        var ours = new double[options.Runs];
        var theirs = new double[options.Runs];
        for (var r = 0; r < options.Runs; r++)
        {
            ours[r] = rawInferRun();
            theirs[r] = llamaRun();
            log.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {test} run {r + 1}/{options.Runs}: RawInfer {ours[r] * 1e3:F1} ms, llama.cpp {theirs[r] * 1e3:F1} ms"));
        }

        return (ours, theirs);
    }

    /// <summary>Seeded token ids in 3 .. vocab-1 (skipping unk, BOS and EOS).</summary>
    private int[] Tokens(int count, int seed)
    {
        var random = new Random(seed);
        var tokens = new int[count];
        for (var i = 0; i < count; i++)
        {
            tokens[i] = random.Next(3, _config.VocabSize);
        }

        return tokens;
    }

    /// <summary>The 1-minute load average (Linux), NaN where unknown.</summary>
    public static double LoadAverage()
    {
        const string path = "/proc/loadavg";
        if (!File.Exists(path))
        {
            return double.NaN;
        }

        var first = File.ReadAllText(path).Split(' ')[0];
        return double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var load) ? load : double.NaN;
    }
}
