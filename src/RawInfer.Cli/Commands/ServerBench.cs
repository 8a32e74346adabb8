using System.Collections.Concurrent;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using RawInfer.Client;
using RawInfer.Protocol;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer bench --server HOST:PORT</c>: a load generator against a running server. Poisson arrivals (or a
/// closed loop at <c>--concurrency</c> when the rate is 0) with mixed prompt and output lengths, spread over
/// <c>--connections</c>; prints throughput and client-side TTFT/TPOT p50/p90/p99, with a progress line on stderr.
/// </summary>
internal sealed class ServerBench
{
    private readonly Option<string?> _server = new("--server") { Description = "Benchmark a running server at HOST:PORT instead of running offline." };
    private readonly Option<string?> _apiKey = new("--api-key") { Description = $"API key for --server (default ${ServeCommand.ApiKeyVariable})." };
    private readonly Option<int> _connections = new("--connections") { Description = "Connections to the server (--server).", DefaultValueFactory = _ => 4 };
    private readonly Option<int> _concurrency = new("--concurrency") { Description = "Most requests in flight at once (--server).", DefaultValueFactory = _ => 32 };
    private readonly Option<double> _duration = new("--duration") { Description = "Seconds to generate load (--server); 0 = send --requests requests.", DefaultValueFactory = _ => 0 };

    /// <summary>Adds the server-mode options to the bench command.</summary>
    public static ServerBench AddTo(Command command)
    {
        var bench = new ServerBench();
        foreach (var option in new Option[] { bench._server, bench._apiKey, bench._connections, bench._concurrency, bench._duration })
        {
            command.Options.Add(option);
        }

        return bench;
    }

    public bool IsRequested(ParseResult parse) => parse.GetValue(_server) is not null;

    public async Task<int> RunAsync(
        ParseResult parse, int requests, double rate, string promptLengths, string outputLengths,
        TextWriter output, TextWriter error, CliContext context, CancellationToken ct)
    {
        var endpoint = ServeCommand.ParseEndpoint(parse.GetValue(_server)!, "--server");
        var key = ClientCommand.ResolveKey(parse.GetValue(_apiKey), context);
        var prompts = LengthDistribution.Parse(promptLengths, "--prompt-lengths");
        var outputs = LengthDistribution.Parse(outputLengths, "--output-lengths");
        var connections = Math.Max(1, parse.GetValue(_connections));
        var concurrency = Math.Max(1, parse.GetValue(_concurrency));
        var duration = TimeSpan.FromSeconds(Math.Max(0, parse.GetValue(_duration)));

        var clients = new RawInferClient[connections];
        for (var i = 0; i < connections; i++)
        {
            clients[i] = await RawInferClient.ConnectAsync(endpoint, key, cancellationToken: ct).ConfigureAwait(false);
        }

        try
        {
            var samples = new ConcurrentBag<Sample>();
            var failures = 0;
            using var slots = new SemaphoreSlim(concurrency);
            var random = new Random(42);
            var clock = Stopwatch.StartNew();
            var tasks = new List<Task>();
            using var progress = new Timer(_ => error.Write(string.Create(CultureInfo.InvariantCulture,
                $"\r[{clock.Elapsed.TotalSeconds,6:F1} s] {samples.Count} done, {Volatile.Read(ref failures)} failed, {samples.Sum(s => s.Tokens) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9),8:F1} tokens/s ")),
                null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
            double next = 0;
            for (var i = 0; duration > TimeSpan.Zero ? clock.Elapsed < duration : i < requests; i++)
            {
                if (rate > 0)
                {
                    next += -Math.Log(1 - random.NextDouble()) / rate;
                    var wait = TimeSpan.FromSeconds(next) - clock.Elapsed;
                    if (wait > TimeSpan.Zero)
                    {
                        await Task.Delay(wait, ct).ConfigureAwait(false);
                    }
                }

                await slots.WaitAsync(ct).ConfigureAwait(false);
                var prompt = new int[prompts.Sample(random)];
                for (var k = 0; k < prompt.Length; k++)
                {
                    prompt[k] = random.Next(3, 256); // ids every Llama vocabulary has
                }

                var request = new SubmitFrame { PromptTokenIds = prompt, AddBos = false, MaxTokens = outputs.Sample(random), IgnoreEos = true };
                tasks.Add(OneAsync(clients[i % connections], request, samples, slots, () => Interlocked.Increment(ref failures), ct));
            }

            await Task.WhenAll(tasks).ConfigureAwait(false);
            clock.Stop();
            await error.WriteLineAsync().ConfigureAwait(false);
            await Report(output, [.. samples], failures, clock.Elapsed).ConfigureAwait(false);
            return 0;
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task OneAsync(
        RawInferClient client, SubmitFrame request, ConcurrentBag<Sample> samples, SemaphoreSlim slots, Action onFailure, CancellationToken ct)
    {
        try
        {
            var start = Stopwatch.GetTimestamp();
            long first = 0;
            long last = 0;
            var tokens = 0;
            await foreach (var chunk in client.StreamAsync(request, ct).ConfigureAwait(false))
            {
                if (chunk.TokenIds.Count > 0)
                {
                    last = Stopwatch.GetTimestamp();
                    first = first == 0 ? last : first;
                    tokens += chunk.TokenIds.Count;
                }
            }

            var ttft = first == 0 ? (TimeSpan?)null : Stopwatch.GetElapsedTime(start, first);
            var tpot = tokens > 1 ? Stopwatch.GetElapsedTime(first, last) / (tokens - 1) : (TimeSpan?)null;
            samples.Add(new Sample(tokens, ttft, tpot));
        }
        catch (Exception e) when (e is RawInferException or IOException)
        {
            onFailure();
        }
        finally
        {
            slots.Release();
        }
    }

    private static async Task Report(TextWriter output, Sample[] samples, int failures, TimeSpan wall)
    {
        var tokens = samples.Sum(s => (long)s.Tokens);
        var ttft = samples.Where(s => s.Ttft is not null).Select(s => s.Ttft!.Value.TotalMilliseconds).ToList();
        var tpot = samples.Where(s => s.Tpot is not null).Select(s => s.Tpot!.Value.TotalMilliseconds).ToList();
        await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"{samples.Length} requests ({failures} failed) in {wall.TotalSeconds:F2} s: {samples.Length / wall.TotalSeconds:F2} requests/s, {tokens / wall.TotalSeconds:F1} tokens/s")).ConfigureAwait(false);
        await output.WriteLineAsync("| metric | p50 ms | p90 ms | p99 ms |").ConfigureAwait(false);
        await output.WriteLineAsync("|---|---|---|---|").ConfigureAwait(false);
        foreach (var (name, values) in new[] { ("TTFT", ttft), ("TPOT", tpot) })
        {
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {EngineRunSummary.Percentile(values, 0.5):F2} | {EngineRunSummary.Percentile(values, 0.9):F2} | {EngineRunSummary.Percentile(values, 0.99):F2} |")).ConfigureAwait(false);
        }
    }

    private sealed record Sample(int Tokens, TimeSpan? Ttft, TimeSpan? Tpot);
}
