using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RawInfer.Engine;
using RawInfer.Engine.Sampling;
using RawInfer.Tokenizers;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer batch IN.jsonl OUT.jsonl</c>: runs a file of requests through the engine at once. Each input line is
/// an object with "prompt" and optionally "id", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop",
/// "priority"; each output line has "id", "text", "finish_reason", token counts and timings, in input order.
/// </summary>
internal static class BatchCommand
{
    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var input = new Argument<string>("input") { Description = "JSONL file of requests." };
        var outPath = new Argument<string>("output") { Description = "JSONL file to write the results to." };
        var model = new Option<string?>("--model", "-m") { Description = "Model file (default: as for generate)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file (default: as for generate)." };
        var maxRunning = new Option<int>("--max-running") { Description = "Most sequences per step.", DefaultValueFactory = _ => 100 };
        var threads = new Option<int>("--threads") { Description = "CPU threads; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var device = DeviceOption.Create();
        var kvDtype = KvDtypeOption.Create();
        var command = new Command("batch", "Run a JSONL file of requests through the continuous-batching engine.");
        command.Arguments.Add(input);
        command.Arguments.Add(outPath);
        foreach (var option in new Option[] { model, tokenizer, maxRunning, threads, device, kvDtype })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            var requests = ReadRequests(parse.GetValue(input)!);
            var modelPath = ModelLocator.ResolveModel(parse.GetValue(model), context);
            using var loaded = ModelFiles.Load(modelPath);
            var tok = LlamaTokenizer.Load(
                ModelLocator.ResolveTokenizer(parse.GetValue(tokenizer), modelPath, loaded.Config.VocabSize, context), loaded.Config.VocabSize);
            var engineOptions = new EngineOptions
            {
                MaxRunningSequences = parse.GetValue(maxRunning), MaxQueuedRequests = Math.Max(requests.Count, 1),
            };
            using var runner = ModelRunnerFactory.Create(
                loaded, DeviceOption.Parse(parse.GetValue(device)), parse.GetValue(threads), engineOptions, out var notice,
                KvDtypeOption.Parse(parse.GetValue(kvDtype)));
            if (notice is not null)
            {
                await error.WriteLineAsync(notice).ConfigureAwait(false);
            }

            await using var engine = new InferenceEngine(runner, tok, ModelRunnerFactory.WithKvCache(runner, engineOptions));

            var clock = Stopwatch.StartNew();
            var done = 0;
            var tasks = requests.Select(async r =>
            {
                var result = await engine.GenerateAsync(r, ct).ConfigureAwait(false);
                var n = Interlocked.Increment(ref done);
                lock (error)
                {
                    error.Write(string.Create(CultureInfo.InvariantCulture, $"\r{ProgressBar(n, requests.Count)} {n}/{requests.Count}"));
                }

                return result;
            }).ToList();
            var results = await Task.WhenAll(tasks).ConfigureAwait(false);
            var wall = clock.Elapsed;
            await error.WriteLineAsync().ConfigureAwait(false);
            WriteResults(parse.GetValue(outPath)!, results);
            await output.WriteLineAsync(EngineRunSummary.From(results, wall).ToString()).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static string ProgressBar(int done, int total)
    {
        const int Width = 30;
        var filled = total == 0 ? Width : done * Width / total;
        return "[" + new string('#', filled) + new string('.', Width - filled) + "]";
    }

    private static List<GenerationRequest> ReadRequests(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"input file not found: {path}");
        }

        var requests = new List<GenerationRequest>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            try
            {
                using var doc = JsonDocument.Parse(line);
                var o = doc.RootElement;
                var prompt = o.TryGetProperty("prompt", out var p) ? p.GetString() : null;
                if (prompt is null)
                {
                    throw new CliException($"{path}:{lineNumber}: \"prompt\" (a string) is required");
                }

                requests.Add(new GenerationRequest
                {
                    Prompt = prompt,
                    RequestId = o.TryGetProperty("id", out var id) ? id.ToString() : $"line-{lineNumber}",
                    MaxTokens = o.TryGetProperty("max_tokens", out var m) ? m.GetInt32() : 256,
                    Priority = o.TryGetProperty("priority", out var pr) ? pr.GetInt32() : 0,
                    StopStrings = o.TryGetProperty("stop", out var s) ? [.. s.EnumerateArray().Select(e => e.GetString() ?? "")] : [],
                    Sampling = new SamplingParams
                    {
                        Temperature = o.TryGetProperty("temperature", out var t) ? t.GetSingle() : 0f,
                        TopP = o.TryGetProperty("top_p", out var tp) ? tp.GetSingle() : 1f,
                        TopK = o.TryGetProperty("top_k", out var tk) ? tk.GetInt32() : 0,
                        Seed = o.TryGetProperty("seed", out var seed) ? seed.GetUInt64() : null,
                    },
                });
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
            {
                throw new CliException($"{path}:{lineNumber}: {e.Message}", e);
            }
        }

        return requests;
    }

    private static void WriteResults(string path, GenerationResult[] results)
    {
        using var stream = File.Create(path);
        foreach (var r in results)
        {
            using (var json = new Utf8JsonWriter(stream))
            {
                json.WriteStartObject();
                json.WriteString("id", r.RequestId);
                json.WriteString("text", r.Text);
                json.WriteString("finish_reason", r.FinishReason.ToString());
                json.WriteNumber("prompt_tokens", r.Usage.PromptTokens);
                json.WriteNumber("completion_tokens", r.Usage.CompletionTokens);
                json.WriteNumber("ttft_ms", r.Usage.TimeToFirstToken?.TotalMilliseconds ?? 0);
                json.WriteNumber("total_ms", r.Usage.TotalTime.TotalMilliseconds);
                json.WriteEndObject();
            }

            stream.WriteByte((byte)'\n');
        }
    }
}
