using System.CommandLine;
using System.Globalization;
using RawInfer.Cpu;
using RawInfer.Engine.Sampling;
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

        var command = new Command("generate", "Continue a prompt with a model, streaming the text.");
        command.Arguments.Add(prompt);
        foreach (var option in new Option[] { model, tokenizer, maxTokens, temperature, topP, topK, seed, threads })
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
                parse.GetValue(threads));
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
        using var transformer = new CpuTransformer(model, s.Threads);
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

    private static double PerSecond(int tokens, TimeSpan time) => time > TimeSpan.Zero ? tokens / time.TotalSeconds : 0;

    private static string ToOptionName(string? parameter) => parameter switch
    {
        nameof(SamplingParams.Temperature) => "temperature",
        nameof(SamplingParams.TopP) => "top-p",
        nameof(SamplingParams.TopK) => "top-k",
        _ => parameter ?? "option",
    };

    private sealed record GenerateSettings(
        string Prompt, string? ModelPath, string? TokenizerPath, int MaxTokens, SamplingParams Sampling, int Threads);
}
