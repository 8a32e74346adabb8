using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Safety.Access;
using RawInfer.Server;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer serve --model … --listen 127.0.0.1:PORT</c>: the binary protocol server (docs/protocol.md). SIGTERM or
/// Ctrl-C: GOAWAY, stop accepting, drain, flush the logs, exit 0.
/// </summary>
internal static class ServeCommand
{
    /// <summary>Holds the server's API keys (comma-separated) when no --api-key is given.</summary>
    public const string ApiKeyVariable = "RAWINFER_API_KEY";

    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var model = new Option<string?>("--model", "-m") { Description = "Model file (default: the stories model from the usual places)." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file (default: chosen by the model's vocabulary size)." };
        var listen = new Option<string>("--listen") { Description = "HOST:PORT to listen on (loopback by default; port 0 picks one).", DefaultValueFactory = _ => "127.0.0.1:7070" };
        var apiKeys = new Option<string[]>("--api-key") { Description = $"A client API key (repeatable; default ${ApiKeyVariable}, comma-separated).", AllowMultipleArgumentsPerToken = false };
        var adminKeys = new Option<string[]>("--admin-key") { Description = "An admin API key (detailed stats); repeatable." };
        var maxConnections = new Option<int>("--max-connections") { Description = "Open connections allowed.", DefaultValueFactory = _ => new ServerOptions().MaxConnections };
        var maxInFlight = new Option<int>("--max-in-flight") { Description = "Requests in flight per connection.", DefaultValueFactory = _ => new ServerOptions().MaxInFlightPerConnection };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Largest max tokens a request may ask for.", DefaultValueFactory = _ => new ServerOptions().MaxTokens };
        var drain = new Option<double>("--drain-seconds") { Description = "Time in-flight requests get to finish on shutdown.", DefaultValueFactory = _ => 30 };
        var kvMiB = new Option<int>("--kv-mib") { Description = "KV-cache budget in MiB.", DefaultValueFactory = _ => 256 };
        var threads = new Option<int>("--threads") { Description = "CPU threads; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Minimum log level.", DefaultValueFactory = _ => LogLevel.Information };
        var command = new Command("serve", "Serve a model over the RawInfer binary protocol.");
        foreach (var option in new Option[] { model, tokenizer, listen, apiKeys, adminKeys, maxConnections, maxInFlight, maxTokens, drain, kvMiB, threads, logLevel })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            var endpoint = ParseEndpoint(parse.GetValue(listen)!, "--listen");
            var keys = Keys(parse.GetValue(apiKeys), parse.GetValue(adminKeys), context);
            var modelPath = ModelLocator.ResolveModel(parse.GetValue(model), context);
            using var loaded = ModelFiles.Load(modelPath);
            var tok = ModelFiles.LoadTokenizer(parse.GetValue(tokenizer), modelPath, loaded.Config, context);
            using var runner = new CpuModelRunner(loaded, parse.GetValue(threads));
            using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(parse.GetValue(logLevel)));
            var engine = new InferenceEngine(runner, tok, new EngineOptions { KvCacheBytes = (long)parse.GetValue(kvMiB) << 20 });
            var server = new RawInferServer(engine, tok, new StaticApiKeyAuthenticator(keys), new ServerOptions
            {
                Endpoint = endpoint,
                MaxConnections = parse.GetValue(maxConnections),
                MaxInFlightPerConnection = parse.GetValue(maxInFlight),
                MaxTokens = parse.GetValue(maxTokens),
            }, loggerFactory);

            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var onCancel = ct.Register(() => stop.TrySetResult());
            server.Start();
            if (!IPAddress.IsLoopback(endpoint.Address))
            {
                await error.WriteLineAsync($"warning: listening on {endpoint.Address}, reachable from other machines").ConfigureAwait(false);
            }

            await output.WriteLineAsync($"listening on {server.LocalEndPoint}").ConfigureAwait(false);
            await output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            await stop.Task.ConfigureAwait(false);

            var cancelled = await server.ShutdownAsync(TimeSpan.FromSeconds(parse.GetValue(drain)), CancellationToken.None).ConfigureAwait(false);
            await engine.ShutdownAsync(ShutdownMode.Abort, CancellationToken.None).ConfigureAwait(false);
            await engine.DisposeAsync().ConfigureAwait(false);
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"shut down ({cancelled} requests cancelled at the drain deadline)")).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    /// <summary>HOST:PORT with an IP address or "localhost".</summary>
    public static IPEndPoint ParseEndpoint(string text, string option)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new CliException($"{option} must be HOST:PORT, not '{text}'");
        }

        var host = text[..colon].Trim('[', ']');
        if (host == "localhost")
        {
            return new IPEndPoint(IPAddress.Loopback, port);
        }

        return IPAddress.TryParse(host, out var address)
            ? new IPEndPoint(address, port)
            : throw new CliException($"{option}: '{host}' is not an IP address");
    }

    private static List<(string Key, Principal Principal)> Keys(string[]? clientKeys, string[]? adminKeys, CliContext context)
    {
        var client = clientKeys is { Length: > 0 } ? clientKeys
            : context.GetEnvironmentVariable(ApiKeyVariable)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
        var keys = new List<(string, Principal)>();
        for (var i = 0; i < client.Length; i++)
        {
            keys.Add((client[i], new Principal($"client-{i + 1}", KeyRole.Client, new KeyLimits())));
        }

        for (var i = 0; i < (adminKeys?.Length ?? 0); i++)
        {
            keys.Add((adminKeys![i], new Principal($"admin-{i + 1}", KeyRole.Admin, new KeyLimits())));
        }

        return keys.Count > 0 ? keys : throw new CliException($"serve needs at least one --api-key (or ${ApiKeyVariable})");
    }
}
