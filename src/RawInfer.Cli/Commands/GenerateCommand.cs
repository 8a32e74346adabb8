using System.CommandLine;
using System.Globalization;
using RawInfer.Cpu;
using RawInfer.Engine;
using RawInfer.Engine.Runner;
using RawInfer.Engine.Sampling;
using RawInfer.Gpu.Device;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Commands;

/// <summary><c>rawinfer generate "prompt"</c>: stream a continuation to stdout, speeds to stderr.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var prompt = new Argument<string>("prompt") { Description = "Text to continue.", DefaultValueFactory = _ => string.Empty };
        var model = new Option<string?>("--model", "-m")
        {
            Description = $"Model file (default: {KnownModels.Default.ModelFileName} from ${CliContext.ModelsVariable} or the model cache).",
        };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file (default: chosen by the model's vocabulary size, next to the model or in the same places)." };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => 1f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold; 1 = off.", DefaultValueFactory = _ => 0.9f };
        var topK = new Option<int>("--top-k") { Description = "Sample among the K most likely tokens only; 0 = off.", DefaultValueFactory = _ => 0 };
        var seed = new Option<ulong?>("--seed", "-s") { Description = "Random seed (default: random, printed to stderr)." };
        var threads = new Option<int>("--threads") { Description = "CPU threads; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var device = DeviceOption.Create();

        var command = new Command("generate", "Continue a prompt with a model, streaming the text.");
        command.Arguments.Add(prompt);
        foreach (var option in new Option[] { model, tokenizer, maxTokens, temperature, topP, topK, seed, threads, device })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            var settings = new GenerateSettings(
                parse.GetValue(prompt) ?? string.Empty,
                parse.GetValue(model),
                parse.GetValue(tokenizer),
                parse.GetValue(maxTokens),
                new SamplingParams
                {
                    Temperature = parse.GetValue(temperature),
                    TopP = parse.GetValue(topP),
                    TopK = parse.GetValue(topK),
                    Seed = parse.GetValue(seed),
                },
                parse.GetValue(threads),
                DeviceOption.Parse(parse.GetValue(device)));
            Run(settings, output, error, context);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static void Run(GenerateSettings s, TextWriter output, TextWriter error, CliContext context)
    {
        if (s.MaxTokens < 0)
        {
            throw new CliException($"--max-tokens must be >= 0, not {s.MaxTokens}");
        }

        if (s.Threads < 0)
        {
            throw new CliException($"--threads must be >= 0, not {s.Threads}");
        }

        try
        {
            s.Sampling.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            // The exception's message carries "(Parameter ...)"; keep the rule and show the value instead.
            string rule = e.Message.Split(" (Parameter", 2)[0];
            throw new CliException(string.Create(CultureInfo.InvariantCulture, $"--{ToOptionName(e.ParamName)} {e.ActualValue}: {rule}"), e);
        }

        string modelPath = ModelLocator.ResolveModel(s.ModelPath, context);
        using var model = ModelFiles.Load(modelPath);
        var config = model.Config;
        var tok = ModelFiles.LoadTokenizer(s.TokenizerPath, modelPath, config, context);
        using (var cuda = ModelRunnerFactory.TryCreateCuda(model, s.Device, EngineLimits, out var notice))
        {
            if (notice is not null)
            {
                error.WriteLine(notice);
            }

            if (cuda is not null)
            {
                // CpuTransformer is the CPU's single-sequence path; the CUDA runner runs behind the engine
                RunOnEngine(cuda, tok, s, output, error);
                return;
            }
        }

        using var transformer = new CpuTransformer(ModelRunnerFactory.PrepareForCpu(model), s.Threads);
        var sampler = new Sampler(s.Sampling, config.VocabSize);
        if (!s.Sampling.IsGreedy && s.Sampling.Seed is null)
        {
            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seed: {sampler.Seed}"));
        }

        var stats = TextGenerator.Run(transformer, tok, sampler, s.Prompt, s.MaxTokens, output);
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"prompt: {stats.PromptTokens} tokens in {stats.PromptTime.TotalMilliseconds:F1} ms ({PerSecond(stats.PromptTokens, stats.PromptTime):F1} tokens/s); " +
            $"decode: {stats.GeneratedTokens} tokens in {stats.DecodeTime.TotalMilliseconds:F1} ms ({PerSecond(stats.GeneratedTokens, stats.DecodeTime):F1} tokens/s); " +
            $"{transformer.Threads} threads"));
    }

    /// <summary>One sequence: a small step budget (prompt chunks of 512 rows) keeps the activation buffers small.</summary>
    private static readonly EngineOptions EngineLimits = new() { MaxRunningSequences = 1, MaxBatchedTokens = 512, MaxQueuedRequests = 1 };

    /// <summary>
    /// The same output as the CPU path (prompt echoed, continuation streamed, one summary line on stderr), with the
    /// model behind the engine. Like TextGenerator, BOS ends the text as EOS does, and the continuation stops at
    /// the model's context.
    /// </summary>
    private static void RunOnEngine(IModelRunner runner, ITokenizer tok, GenerateSettings s, TextWriter output, TextWriter error)
    {
        var promptTokens = tok.Encode(s.Prompt, addBos: true, addEos: false);
        if (promptTokens.Length == 0)
        {
            throw new CliException("the tokenizer has no BOS token and the prompt is empty: nothing to start from");
        }

        var room = runner.Config.MaxSeqLen - promptTokens.Length;
        if (room < 0)
        {
            throw new CliException($"the prompt is {promptTokens.Length} tokens; the model's context is {runner.Config.MaxSeqLen}");
        }

        var detokenizer = new IncrementalDetokenizer(tok);
        foreach (var token in promptTokens)
        {
            output.Write(detokenizer.Push(token));
        }

        output.Flush();
        var generated = 0;
        RequestUsage? usage = null;
        if (s.MaxTokens > 0 && room > 0)
        {
            var engine = new InferenceEngine(runner, tok, ModelRunnerFactory.WithKvCache(runner, EngineLimits));
            try
            {
                var request = new GenerationRequest
                {
                    PromptTokenIds = promptTokens,
                    MaxTokens = Math.Min(s.MaxTokens, room),
                    Sampling = s.Sampling,
                    StopTokenIds = [tok.BosId],
                };
                var stream = engine.StreamAsync(request).GetAsyncEnumerator();
                try
                {
                    while (stream.MoveNextAsync().AsTask().GetAwaiter().GetResult())
                    {
                        var chunk = stream.Current;
                        output.Write(chunk.Text);
                        output.Flush();
                        generated += chunk.TokenIds.Count;
                        usage = chunk.Usage ?? usage;
                    }
                }
                finally
                {
                    stream.DisposeAsync().AsTask().GetAwaiter().GetResult();
                }
            }
            finally
            {
                engine.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }

        output.WriteLine();
        output.Flush();
        var firstToken = usage?.TimeToFirstToken ?? TimeSpan.Zero;
        var decodeTime = usage is null ? TimeSpan.Zero : usage.TotalTime - firstToken;
        error.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"prompt: {promptTokens.Length} tokens in {firstToken.TotalMilliseconds:F1} ms ({PerSecond(promptTokens.Length, firstToken):F1} tokens/s); " +
            $"decode: {generated} tokens in {decodeTime.TotalMilliseconds:F1} ms ({PerSecond(Math.Max(generated - 1, 0), decodeTime):F1} tokens/s); " +
            $"{ModelRunnerFactory.Describe(runner)}"));
    }

    private static double PerSecond(int tokens, TimeSpan time) => time > TimeSpan.Zero ? tokens / time.TotalSeconds : 0;

    private static string ToOptionName(string? parameter) => parameter switch
    {
        nameof(SamplingParams.Temperature) => "temperature",
        nameof(SamplingParams.TopP) => "top-p",
        nameof(SamplingParams.TopK) => "top-k",
        _ => parameter ?? "option",
    };

    private sealed record GenerateSettings(
        string Prompt, string? ModelPath, string? TokenizerPath, int MaxTokens, SamplingParams Sampling, int Threads, DeviceChoice Device);
}
