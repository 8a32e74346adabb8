using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RawInfer.Cpu;
using RawInfer.Engine;
using RawInfer.Gpu.Device;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer bench</c> (offline) on a synthetic model (random weights, so fixed output lengths with EOS ignored).
/// <c>--mode serving</c> (the default): Poisson arrivals with mixed prompt and output lengths through continuous and
/// static batching (at each rate of a <c>--rate</c> list, then throughput at equal p99 latency:
/// <see cref="ServingComparison"/>), then batched decode throughput at several concurrencies. <c>--mode prefill|decode|batched</c>:
/// one focused figure each (<see cref="BenchModes"/>). With <c>--server</c>, a load generator against a running
/// server instead (<see cref="ServerBench"/>).
/// </summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var mode = new Option<string>("--mode") { Description = "serving (Poisson arrivals, continuous vs static), prefill, decode or batched.", DefaultValueFactory = _ => "serving" };
        mode.AcceptOnlyFromAmong("serving", "prefill", "decode", "batched");
        var shape = new Option<string>("--shape") { Description = "Synthetic model shape.", DefaultValueFactory = _ => "110m" };
        var dtype = DtypeOption.Create();
        var modelPath = new Option<string?>("--model-path") { Description = "Where to write (or reuse) the synthetic model; default: a temp file per shape and dtype." };
        var requests = new Option<int>("--requests") { Description = "Requests per batching run.", DefaultValueFactory = _ => 64 };
        var rate = new Option<string>("--rate") { Description = "Poisson arrival rate, requests/s; serving mode: a comma list runs every mode at each rate and adds the equal-latency comparison.", DefaultValueFactory = _ => "8" };
        var prompt = new Option<string>("--prompt-lengths") { Description = "Prompt tokens: MIN:MAX (uniform) or geometric:MEAN:MAX (a long tail, capped).", DefaultValueFactory = _ => "16:128" };
        var outputs = new Option<string>("--output-lengths") { Description = "Output tokens: MIN:MAX (uniform) or geometric:MEAN:MAX (as if each token stopped the request with probability 1/MEAN; capped at MAX).", DefaultValueFactory = _ => "16:64" };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length of --mode prefill.", DefaultValueFactory = _ => 512 };
        var concurrency = new Option<string>("--decode-concurrency") { Description = "Comma-separated batched-decode concurrencies.", DefaultValueFactory = _ => "1,4,16,64" };
        var decodeTokens = new Option<int>("--decode-tokens") { Description = "Tokens each decode-test sequence generates.", DefaultValueFactory = _ => 32 };
        var kvMiB = new Option<int>("--kv-mib") { Description = "KV-cache budget in MiB.", DefaultValueFactory = _ => 1024 };
        var staticBatch = new Option<string>("--static-batch") { Description = "Comma-separated batch sizes of the static-batching runs (one run each; a finished request's row leaves the batch).", DefaultValueFactory = _ => "16" };
        var paddedBatch = new Option<string>("--padded-batch") { Description = "Comma-separated batch sizes of padded static runs (fixed-shape batches: a finished request's row is computed until the batch ends); none by default.", DefaultValueFactory = _ => "" };
        var threads = new Option<int>("--threads") { Description = "CPU threads; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var maxBatched = new Option<int?>("--max-batched-tokens") { Description = "Engine token budget per step (default: the engine's)." };
        var maxRunning = new Option<int?>("--max-running") { Description = "Engine limit on running sequences (default: 100 continuous, the concurrency in the decode tests)." };
        var maxPrefill = new Option<int?>("--max-prefill-tokens") { Description = "Prompt tokens per engine step, decodes first (default: the engine's; 0 = only the token budget)." };
        var device = DeviceOption.Create();
        var kvDtype = KvDtypeOption.Create();
        var rounds = new Option<int>("--rounds") { Description = "Serving mode: run the continuous and static runs this many times, each round in the reverse order of the one before (ratios from the medians).", DefaultValueFactory = _ => 1 };
        var runs = new Option<int>("--runs") { Description = "Timed runs of --mode prefill|decode|batched (median reported).", DefaultValueFactory = _ => 3 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs before them.", DefaultValueFactory = _ => 1 };
        var kvPrefault = new Option<bool>("--kv-prefault") { Description = "Commit the whole KV-cache budget before each engine's first request (as vLLM reserves its cache at start), so that no step pays page faults when it first reaches part of the pool; false: map it in as blocks are first used.", DefaultValueFactory = _ => true };
        var engineWarmup = new Option<int>("--engine-warmup-rounds") { Description = $"Warm-up rounds each engine runs before its first request (as serve's --warmup-rounds; 0..{EngineOptions.MaxWarmUpRounds}).", DefaultValueFactory = _ => 0 };
        var command = new Command("bench", "Offline benchmark: serving (continuous vs static batching), prefill, decode or batched decode.");
        foreach (var option in new Option[] { mode, shape, dtype, modelPath, requests, rate, prompt, outputs, promptTokens, concurrency,
            decodeTokens, kvMiB, kvDtype, staticBatch, paddedBatch, threads, maxBatched, maxRunning, maxPrefill, device, rounds, runs, warmup, engineWarmup, kvPrefault })
        {
            command.Options.Add(option);
        }

        var serverBench = ServerBench.AddTo(command);
        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            if (serverBench.IsRequested(parse))
            {
                var serverRate = ParseRates(parse.GetValue(rate)!, allowZero: true);
                if (serverRate.Count != 1)
                {
                    throw new CliException($"--server takes one --rate, not '{parse.GetValue(rate)}'");
                }

                return await serverBench.RunAsync(parse, parse.GetValue(requests), serverRate[0], parse.GetValue(prompt)!,
                    parse.GetValue(outputs)!, output, error, context, ct).ConfigureAwait(false);
            }

            var (batchedLimit, runningLimit) = (parse.GetValue(maxBatched), parse.GetValue(maxRunning));
            BenchModel.CheckLimits(batchedLimit, runningLimit);
            if (parse.GetValue(runs) < 1 || parse.GetValue(warmup) < 0)
            {
                throw new CliException("--runs must be >= 1 and --warmup >= 0");
            }

            if (parse.GetValue(requests) < 1)
            {
                throw new CliException($"--requests must be >= 1, not {parse.GetValue(requests)}");
            }

            if (parse.GetValue(rounds) < 1)
            {
                throw new CliException($"--rounds must be >= 1, not {parse.GetValue(rounds)}");
            }

            if (parse.GetValue(engineWarmup) is < 0 or > EngineOptions.MaxWarmUpRounds)
            {
                throw new CliException($"--engine-warmup-rounds must be in 0..{EngineOptions.MaxWarmUpRounds}, not {parse.GetValue(engineWarmup)}");
            }

            var shapeName = parse.GetValue(shape)!;
            var config = ModelShapes.Parse(shapeName);
            var type = DtypeOption.Parse(parse.GetValue(dtype)!);
            var path = parse.GetValue(modelPath) ?? BenchModel.DefaultPath(shapeName, type);
            var decodeList = BenchModes.ParseList(parse.GetValue(concurrency)!, "--decode-concurrency");
            var staticSizes = BenchModes.ParseList(parse.GetValue(staticBatch)!, "--static-batch");
            var paddedSizes = parse.GetValue(paddedBatch) is { Length: > 0 } padded ? BenchModes.ParseList(padded, "--padded-batch") : [];
            var rates = ParseRates(parse.GetValue(rate)!, allowZero: false);
            await BenchModel.EnsureAsync(path, shapeName, config, type, error).ConfigureAwait(false);

            using var model = ModelFiles.Load(path);
            var threadCount = parse.GetValue(threads);
            var kvBytes = (long)parse.GetValue(kvMiB) << 20;
            if (parse.GetValue(maxPrefill) is < 0)
            {
                throw new CliException($"--max-prefill-tokens must be >= 0, not {parse.GetValue(maxPrefill)}");
            }

            var engineOptions = BenchModel.Apply(
                new EngineOptions { KvCacheBytes = kvBytes, WarmUpRounds = parse.GetValue(engineWarmup), PrefaultKvCache = parse.GetValue(kvPrefault) }, batchedLimit, null);
            if (parse.GetValue(maxPrefill) is { } prefillBudget)
            {
                engineOptions = engineOptions with { MaxPrefillTokensPerStep = prefillBudget };
            }

            var deviceChoice = ResolveDevice(DeviceOption.Parse(parse.GetValue(device)), out var deviceNotice);
            var kvType = KvDtypeOption.Parse(parse.GetValue(kvDtype));
            if (deviceNotice is not null)
            {
                await error.WriteLineAsync(deviceNotice).ConfigureAwait(false);
            }
            if (deviceChoice == DeviceChoice.Cpu)
            {
                ModelRunnerFactory.PrepareForCpu(model); // before the weights are read below
            }

            var layout = model.WeightsRewritten && CpuWeightLayout.Describe(model.Weights) is { } rewrite ? ", " + rewrite : "";
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"bench {parse.GetValue(mode)}: {model.Path} ({model.Weights.Layers[0].Wq.Type.ToString().ToLowerInvariant()}){layout}, threads {(threadCount == 0 ? Environment.ProcessorCount : threadCount)}, max-batched-tokens {engineOptions.MaxBatchedTokens}, max-running {(runningLimit is { } m ? m.ToString(CultureInfo.InvariantCulture) : "default")}, max-prefill-tokens {engineOptions.MaxPrefillTokensPerStep}, device {deviceChoice.ToName()}, kv-dtype {kvType.Name()}, kv-prefault {(engineOptions.PrefaultKvCache ? "on" : "off")}")).ConfigureAwait(false);
            var setup = new BenchSetup(model, threadCount, engineOptions, parse.GetValue(runs), parse.GetValue(warmup), deviceChoice, kvType);
            switch (parse.GetValue(mode))
            {
                case "prefill":
                    await BenchModes.PrefillAsync(setup, parse.GetValue(promptTokens), output, ct).ConfigureAwait(false);
                    return 0;
                case "decode":
                    await BenchModes.DecodeAsync(setup, parse.GetValue(decodeTokens), output, ct).ConfigureAwait(false);
                    return 0;
                case "batched":
                    await BenchModes.BatchedAsync(setup, decodeList, parse.GetValue(decodeTokens), runningLimit, output, ct).ConfigureAwait(false);
                    return 0;
            }

            var promptLengths = LengthDistribution.Parse(parse.GetValue(prompt)!, "--prompt-lengths");
            var outputLengths = LengthDistribution.Parse(parse.GetValue(outputs)!, "--output-lengths");
            if (outputLengths.Max >= model.Config.MaxSeqLen)
            {
                throw new CliException($"--output-lengths reaches {outputLengths.Max} tokens, but the model's context is {model.Config.MaxSeqLen}");
            }

            // what the seed drew (every rate gets the same requests): with a long tail the sample's mean and longest
            // output differ from the distribution's, and the longest sets a static batch's length
            var drawn = Workload(parse.GetValue(requests), 1, promptLengths, outputLengths, model.Config);
            await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"workload: {drawn.Count} requests, prompts {promptLengths} (drawn: mean {drawn.Average(w => w.Request.PromptTokenIds!.Count):F1}), outputs {outputLengths} (drawn: mean {drawn.Average(w => w.Request.MaxTokens):F1}, longest {drawn.Max(w => w.Request.MaxTokens)})")).ConfigureAwait(false);
            // continuous first, then one run per static batch size
            var runsToDo = new List<(BatchingMode Mode, int MaxRunning)> { (BatchingMode.Continuous, runningLimit ?? 100) };
            runsToDo.AddRange(staticSizes.Select(size => (BatchingMode.Static, size)));
            runsToDo.AddRange(paddedSizes.Select(size => (BatchingMode.StaticPadded, size)));
            await ServingAsync(setup, runsToDo, rates, parse.GetValue(rounds),
                r => Workload(parse.GetValue(requests), r, promptLengths, outputLengths, model.Config), output, error, ct).ConfigureAwait(false);
            await output.WriteLineAsync().ConfigureAwait(false);
            await BenchModes.BatchedAsync(setup with { Runs = 1, Warmup = 1 }, decodeList, parse.GetValue(decodeTokens), runningLimit, output, ct).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// The serving runs: at each arrival rate, each mode and size of <paramref name="runsToDo"/> (continuous first)
    /// <paramref name="roundCount"/> times, a row each (and on <paramref name="error"/> its steps' forward-time
    /// p50 / p99 / max), then per rate a same-load ratio line per static kind, and with several rates the
    /// throughput-at-equal-latency table.
    /// </summary>
    private static async Task ServingAsync(
        BenchSetup setup, List<(BatchingMode Mode, int MaxRunning)> runsToDo, List<double> rates, int roundCount,
        Func<double, List<(TimeSpan At, GenerationRequest Request)>> workloadAt, TextWriter output, TextWriter error, CancellationToken ct)
    {
        await output.WriteLineAsync("| mode | requests/s | tokens/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | TPOT p99 ms | latency p50 ms | latency p99 ms |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|---|---|---|---|---|---|---|").ConfigureAwait(false);
        var points = new List<ServingPoint>();
        foreach (var arrivalRate in rates)
        {
            // the same requests at every rate (one seed), only the gaps between arrivals scaled
            var workload = workloadAt(arrivalRate);
            var offered = arrivalRate * workload.Average(w => w.Request.MaxTokens);
            var at = rates.Count > 1 ? string.Create(CultureInfo.InvariantCulture, $" at {arrivalRate:0.###} req/s") : "";
            var summaries = new List<(BatchingMode Mode, int MaxRunning, EngineRunSummary Summary)>();
            // with several rounds every other round runs in the reverse order, so that a drift in the machine's
            // speed weighs on every mode alike (ABBA)
            for (var round = 0; round < roundCount; round++)
            {
                var order = round % 2 == 0 ? runsToDo : Enumerable.Reverse(runsToDo);
                foreach (var (batching, maxRunningSequences) in order)
                {
                    var options = setup.Options with
                    {
                        Batching = batching,
                        MaxRunningSequences = maxRunningSequences,
                        MaxQueuedRequests = workload.Count + 1,
                    };
                    var (s, steps) = await RunArrivals(setup with { Options = options }, workload, ct).ConfigureAwait(false);
                    summaries.Add((batching, maxRunningSequences, s));
                    var label = roundCount > 1 ? $" round {round + 1}" : "";
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"| {batching} ({maxRunningSequences}){at}{label} | {s.RequestsPerSecond:F2} | {s.TokensPerSecond:F1} | {s.TtftP50Ms:F0} | {s.TtftP99Ms:F0} | {s.TpotP50Ms:F1} | {s.TpotP99Ms:F1} | {s.LatencyP50Ms:F0} | {s.LatencyP99Ms:F0} |")).ConfigureAwait(false);
                    await error.WriteLineAsync($"{batching} ({maxRunningSequences}){at}{label}: {steps}").ConfigureAwait(false);
                }
            }

            // per mode and size: the median over rounds of throughput, p99 latency and p99 TTFT
            var medians = summaries.GroupBy(r => (r.Mode, r.MaxRunning)).Select(g => new ServingPoint(
                arrivalRate, g.Key.Mode, g.Key.MaxRunning, offered,
                BenchModes.Median([.. g.Select(r => r.Summary.TokensPerSecond)]),
                BenchModes.Median([.. g.Select(r => r.Summary.LatencyP99Ms)]),
                BenchModes.Median([.. g.Select(r => r.Summary.TtftP99Ms)]))).ToList();
            points.AddRange(medians);
            var continuous = medians[0];
            var of = roundCount > 1 ? string.Create(CultureInfo.InvariantCulture, $" (medians of {roundCount} rounds)") : "";
            foreach (var kind in new[] { BatchingMode.Static, BatchingMode.StaticPadded })
            {
                if (!medians.Any(r => r.Mode == kind))
                {
                    continue;
                }

                var best = medians.Where(r => r.Mode == kind).MaxBy(r => r.TokensPerSecond);
                await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                    $"continuous / best {(kind == BatchingMode.Static ? "static" : "padded static")} (batch {best.MaxRunning}){at} throughput{of}: {continuous.TokensPerSecond / best.TokensPerSecond:F2}x; " +
                    $"latency p99 {continuous.LatencyP99Ms:F0} vs {best.LatencyP99Ms:F0} ms, TTFT p99 {continuous.TtftP99Ms:F0} vs {best.TtftP99Ms:F0} ms")).ConfigureAwait(false);
            }
        }

        if (rates.Count > 1 && runsToDo.Count > 1)
        {
            await ServingComparison.WriteAsync(points, output).ConfigureAwait(false);
        }
    }

    /// <summary>The --rate list: comma-separated requests/s, each above 0 (0 too for --server: a closed loop).</summary>
    internal static List<double> ParseRates(string text, bool allowZero)
    {
        var rates = new List<double>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!double.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out var value)
                || !double.IsFinite(value) || value < 0 || (value == 0 && !allowZero))
            {
                throw new CliException($"--rate must be comma-separated requests/s {(allowZero ? ">= 0" : "> 0")}, not '{text}'");
            }

            rates.Add(value);
        }

        return rates.Count > 0 ? rates : throw new CliException("--rate is empty");
    }

    /// <summary>
    /// Requests with exponential gaps (a Poisson process), random prompts and fixed output lengths (EOS ignored); one
    /// seed, so every rate gets the same requests. A prompt is cut so that its longest output still fits the context.
    /// </summary>
    internal static List<(TimeSpan At, GenerationRequest Request)> Workload(
        int count, double rate, LengthDistribution prompts, LengthDistribution outputs, ModelConfig config)
    {
        var random = new Random(42);
        var list = new List<(TimeSpan, GenerationRequest)>();
        var t = 0.0;
        for (var i = 0; i < count; i++)
        {
            t += -Math.Log(1 - random.NextDouble()) / rate;
            var promptLength = Math.Min(prompts.Sample(random), config.MaxSeqLen - outputs.Max);
            var prompt = new int[Math.Max(promptLength, 1)];
            for (var k = 0; k < prompt.Length; k++)
            {
                prompt[k] = random.Next(3, config.VocabSize);
            }

            list.Add((TimeSpan.FromSeconds(t), new GenerationRequest
            {
                PromptTokenIds = prompt, MaxTokens = outputs.Sample(random), IgnoreEos = true, RequestId = $"b{i}",
            }));
        }

        return list;
    }

    /// <summary>cpu or cuda: auto is decided once here, so every run of the command uses the same backend.</summary>
    private static DeviceChoice ResolveDevice(DeviceChoice choice, out string? notice)
    {
        try
        {
            var selection = CudaDeviceSelector.Select(choice);
            notice = selection.Notice;
            return selection.UseCuda ? DeviceChoice.Cuda : DeviceChoice.Cpu;
        }
        catch (CudaUnavailableException e)
        {
            throw new CliException(e.Message, e);
        }
    }

    private static async Task<(EngineRunSummary Summary, string Steps)> RunArrivals(
        BenchSetup setup, List<(TimeSpan At, GenerationRequest Request)> workload, CancellationToken ct)
    {
        using var steps = new StepTimeRecorder(); // before the engine, so its instruments are seen as they are made
        using var runner = setup.CreateRunner(); // a runner allocates its KV cache once
        await using var engine = new InferenceEngine(runner, setup.Tokenizer, setup.Options);
        await engine.WarmedUp.WaitAsync(ct).ConfigureAwait(false);
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
        return (EngineRunSummary.From(results, clock.Elapsed), steps.Summary());
    }
}
