using System.CommandLine;
using System.Globalization;

namespace RawInfer.LlamaCompare;

/// <summary>
/// The command line: <c>dotnet run -c Release --project perf/RawInfer.LlamaCompare -- --model FILE.gguf</c>.
/// Loads the file in both engines, checks that they agree on the logits, runs the tests and prints the table.
/// </summary>
internal static class CompareCommand
{
    public static RootCommand Create(TextWriter output)
    {
        var defaults = new CompareOptions { ModelPath = "" };
        var model = new Option<string>("--model") { Description = "GGUF model file both engines load.", Required = true };
        var threads = new Option<int>("--threads") { Description = "Threads for both engines.", DefaultValueFactory = _ => defaults.Threads };
        var runs = new Option<int>("--runs") { Description = "Timed runs per test and engine (median reported).", DefaultValueFactory = _ => defaults.Runs };
        var warmup = new Option<int>("--warmup") { Description = "Untimed runs before them.", DefaultValueFactory = _ => defaults.WarmupRuns };
        var dtype = new Option<string?>("--dtype") { Description = "Label of the weight type in the table (default: read from the file)." };
        var tests = new Option<string>("--tests") { Description = "Comma-separated: decode, prefill, batched.", DefaultValueFactory = _ => "decode,prefill,batched" };
        var decodePrompt = new Option<int>("--decode-prompt") { Description = "Prompt tokens before the decode steps.", DefaultValueFactory = _ => defaults.DecodePromptTokens };
        var decodeTokens = new Option<int>("--decode-tokens") { Description = "Timed decode steps per run.", DefaultValueFactory = _ => defaults.DecodeTokens };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length of the prefill test.", DefaultValueFactory = _ => defaults.PrefillTokens };
        var sequences = new Option<int>("--batched-sequences") { Description = "Sequences of the batched decode test.", DefaultValueFactory = _ => defaults.BatchedSequences };
        var batchedPrompt = new Option<int>("--batched-prompt") { Description = "Prompt tokens of each batched sequence.", DefaultValueFactory = _ => defaults.BatchedPromptTokens };
        var batchedSteps = new Option<int>("--batched-steps") { Description = "Timed batched decode steps per run.", DefaultValueFactory = _ => defaults.BatchedSteps };
        var checkSteps = new Option<int>("--check-steps") { Description = "Greedy steps of the logit agreement check (0 = skip).", DefaultValueFactory = _ => defaults.CheckSteps };
        var bandwidth = new Option<double?>("--bandwidth-gbs") { Description = "Memory bandwidth for the decode roofline (default 55 GB/s)." };
        var peak = new Option<double?>("--peak-gflops") { Description = "FP32 FMA peak for the prefill/batched roofline (default 420 GFLOP/s)." };
        var measure = new Option<bool>("--measure-machine") { Description = "Measure bandwidth (triad) and peak (FMA loop) here instead." };
        var json = new Option<string?>("--json") { Description = "Also write the results to this JSON file." };

        var command = new RootCommand("RawInfer's CPU backend against llama.cpp (LLamaSharp) on the same GGUF file.");
        foreach (var option in new Option[] { model, threads, runs, warmup, dtype, tests, decodePrompt, decodeTokens, promptTokens,
            sequences, batchedPrompt, batchedSteps, checkSteps, bandwidth, peak, measure, json })
        {
            command.Options.Add(option);
        }

        command.SetAction(parse =>
        {
            var given = parse.GetValue(bandwidth) is not null || parse.GetValue(peak) is not null;
            var options = new CompareOptions
            {
                ModelPath = parse.GetValue(model)!,
                Threads = parse.GetValue(threads),
                Runs = parse.GetValue(runs),
                WarmupRuns = parse.GetValue(warmup),
                DtypeLabel = parse.GetValue(dtype),
                Tests = parse.GetValue(tests)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                DecodePromptTokens = parse.GetValue(decodePrompt),
                DecodeTokens = parse.GetValue(decodeTokens),
                PrefillTokens = parse.GetValue(promptTokens),
                BatchedSequences = parse.GetValue(sequences),
                BatchedPromptTokens = parse.GetValue(batchedPrompt),
                BatchedSteps = parse.GetValue(batchedSteps),
                CheckSteps = parse.GetValue(checkSteps),
                BandwidthGBs = parse.GetValue(bandwidth) ?? defaults.BandwidthGBs,
                PeakGFlops = parse.GetValue(peak) ?? defaults.PeakGFlops,
                MeasureMachine = parse.GetValue(measure),
                JsonPath = parse.GetValue(json),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                parse.InvocationConfiguration.Error.WriteLine($"llama-compare: error: {e.Message}");
                return 1;
            }

            var report = CompareSession.Run(options, given ? "given" : "default", output);
            report.WriteTable(output);
            if (options.JsonPath is { } path)
            {
                report.WriteJson(path);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"wrote {path}"));
            }

            return 0;
        });
        return command;
    }
}
