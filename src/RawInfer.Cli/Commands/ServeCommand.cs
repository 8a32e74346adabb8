using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using RawInfer.Engine;
using RawInfer.Safety.Access;
using RawInfer.Safety.Limits;
using RawInfer.Server;
using RawInfer.Server.Safety;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer serve --model … --listen 127.0.0.1:PORT --keys keys.json --deny-list deny.txt --audit-dir DIR</c>: the
/// binary protocol server (docs/protocol.md) with its safety checks (keys, rate limits, deny-list, audit log). SIGTERM
/// or Ctrl-C: GOAWAY, stop accepting, drain, flush the logs, exit 0.
/// </summary>
internal static class ServeCommand
{
    /// <summary>Holds the server's API keys (comma-separated) when no --api-key is given.</summary>
    public const string ApiKeyVariable = "RAWINFER_API_KEY";

    /// <summary>Warm-up rounds of serve by default.</summary>
    public const int DefaultWarmUpRounds = 3;

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
        var kvMiB = new Option<int>("--kv-mib") { Description = "KV-cache budget in MiB (default 256 on the CPU; on CUDA the device memory left after the weights).", DefaultValueFactory = _ => 256 };
        var threads = new Option<int>("--threads") { Description = "CPU threads; 0 = all cores.", DefaultValueFactory = _ => 0 };
        var warmupRounds = new Option<int>("--warmup-rounds") { Description = $"Forward passes on dummy rows before accepting connections, in rounds of a prefill, a 1-row and a 4-row decode (0 = none; at most {EngineOptions.MaxWarmUpRounds}).", DefaultValueFactory = _ => DefaultWarmUpRounds };
        var kvPrefault = new Option<bool>("--kv-prefault") { Description = "Commit the whole KV-cache budget before the first request (as vLLM reserves its cache at start), so that no step pays page faults when it first reaches part of the pool; false: map it in as blocks are first used.", DefaultValueFactory = _ => true };
        var device = DeviceOption.Create();
        var kvDtype = KvDtypeOption.Create();
        var logLevel = new Option<LogLevel>("--log-level") { Description = "Minimum log level.", DefaultValueFactory = _ => LogLevel.Information };
        var keysFile = new Option<string?>("--keys") { Description = "API key file (JSON: id, role, salt, SHA-256 hash, limits per key); instead of --api-key/--admin-key." };
        var denyList = new Option<string?>("--deny-list") { Description = "Deny-list file: one phrase a line, '#' comments; checked on prompts and on the output stream." };
        var auditDir = new Option<string?>("--audit-dir") { Description = "Audit log directory (default $XDG_STATE_HOME/rawinfer/audit or ~/.local/state/rawinfer/audit)." };
        var keyRpm = new Option<int?>("--key-requests-per-minute") { Description = "Requests per minute per key (keys without their own limit); default unlimited." };
        var keyInput = new Option<int?>("--key-input-tokens-per-minute") { Description = "Prompt tokens per minute per key; default unlimited." };
        var keyOutput = new Option<int?>("--key-output-tokens-per-minute") { Description = "Output tokens per minute per key (max tokens reserved at admission, unused part refunded); default unlimited." };
        var command = new Command("serve", "Serve a model over the RawInfer binary protocol.");
        foreach (var option in new Option[]
        {
            model, tokenizer, listen, apiKeys, adminKeys, maxConnections, maxInFlight, maxTokens, drain, kvMiB, kvDtype, kvPrefault, threads, warmupRounds, device, logLevel,
            keysFile, denyList, auditDir, keyRpm, keyInput, keyOutput,
        })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            var endpoint = ParseEndpoint(parse.GetValue(listen)!, "--listen");
            var keys = KeyStore(parse.GetValue(keysFile), parse.GetValue(apiKeys), parse.GetValue(adminKeys), context);
            var modelPath = ModelLocator.ResolveModel(parse.GetValue(model), context);
            using var loaded = ModelFiles.Load(modelPath);
            var tok = ModelFiles.LoadTokenizer(parse.GetValue(tokenizer), modelPath, loaded.Config, context);
            if (parse.GetValue(warmupRounds) is < 0 or > EngineOptions.MaxWarmUpRounds)
            {
                throw new CliException($"--warmup-rounds must be in 0..{EngineOptions.MaxWarmUpRounds}, not {parse.GetValue(warmupRounds)}");
            }

            var limits = new EngineOptions
            {
                KvCacheBytes = (long)parse.GetValue(kvMiB) << 20, WarmUpRounds = parse.GetValue(warmupRounds), PrefaultKvCache = parse.GetValue(kvPrefault),
            };
            using var runner = ModelRunnerFactory.Create(
                loaded, DeviceOption.Parse(parse.GetValue(device)), parse.GetValue(threads), limits, out var notice,
                KvDtypeOption.Parse(parse.GetValue(kvDtype)));
            if (notice is not null)
            {
                await error.WriteLineAsync(notice).ConfigureAwait(false);
            }

            // on CUDA the KV cache takes the device memory left after weights and activations, unless --kv-mib was given
            limits = ModelRunnerFactory.WithKvCache(runner, limits, budgetGiven: parse.GetResult(kvMiB) is { Implicit: false });
            using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(parse.GetValue(logLevel)));

            // Every check sits on the request path: keys, limits, deny-list at the edge, in the engine and on the
            // output stream, and the audit log every final frame waits for.
            await using var safety = OpenSafety(parse.GetValue(auditDir), parse.GetValue(denyList), keys, tok, context,
                new RateLimitOptions(parse.GetValue(keyRpm), parse.GetValue(keyInput), parse.GetValue(keyOutput)));
            var engine = new InferenceEngine(runner, tok, safety.ApplyTo(limits));
            var server = new RawInferServer(engine, tok, safety.Authenticator, safety.ApplyTo(new ServerOptions
            {
                Endpoint = endpoint,
                MaxConnections = parse.GetValue(maxConnections),
                MaxInFlightPerConnection = parse.GetValue(maxInFlight),
                MaxTokens = parse.GetValue(maxTokens),
            }), loggerFactory);

            var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.TrySetResult(); });
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.TrySetResult(); });
            using var onCancel = ct.Register(() => stop.TrySetResult());

            // the opening (and any recovery) is on disk, and the kernels are compiled, before the first client is served
            await safety.Log.WaitDurableAsync(safety.Log.OpenedSequence, ct).ConfigureAwait(false);
            await engine.WarmedUp.WaitAsync(ct).ConfigureAwait(false);
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

    /// <summary>Keys from --keys, or from --api-key/--admin-key (hashed in memory, never kept in plain text).</summary>
    private static ApiKeyStore KeyStore(string? keysFile, string[]? clientKeys, string[]? adminKeys, CliContext context)
    {
        if (keysFile is not null)
        {
            if (clientKeys is { Length: > 0 } || adminKeys is { Length: > 0 })
            {
                throw new CliException("give either --keys or --api-key/--admin-key, not both");
            }

            try
            {
                return new ApiKeyStore(keysFile);
            }
            catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
            {
                throw new CliException($"--keys: {e.Message}");
            }
        }

        var client = clientKeys is { Length: > 0 } ? clientKeys
            : context.GetEnvironmentVariable(ApiKeyVariable)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
        var entries = new List<ApiKeyEntry>();
        for (var i = 0; i < client.Length; i++)
        {
            entries.Add(ApiKeyStore.CreateEntry($"client-{i + 1}", KeyRole.Client, client[i]));
        }

        for (var i = 0; i < (adminKeys?.Length ?? 0); i++)
        {
            entries.Add(ApiKeyStore.CreateEntry($"admin-{i + 1}", KeyRole.Admin, adminKeys![i]));
        }

        return entries.Count > 0 ? new ApiKeyStore(entries) : throw new CliException($"serve needs --keys FILE or at least one --api-key (or ${ApiKeyVariable})");
    }

    private static ServerSafety OpenSafety(
        string? auditDir, string? denyList, ApiKeyStore keys, Tokenizers.ITokenizer tokenizer, CliContext context, RateLimitOptions keyLimits)
    {
        auditDir ??= DefaultAuditDirectory(context) ?? throw new CliException("no home folder to keep the audit log in: pass --audit-dir");
        if (denyList is not null && !File.Exists(denyList))
        {
            throw new CliException($"--deny-list: {denyList} does not exist");
        }

        try
        {
            return ServerSafety.Open(new ServerSafetyOptions { AuditDirectory = auditDir, DenyListFile = denyList, KeyLimits = keyLimits }.WithTokenizer(tokenizer), keys);
        }
        catch (IOException e)
        {
            throw new CliException($"audit log {auditDir}: {e.Message}");
        }
    }

    /// <summary>$XDG_STATE_HOME/rawinfer/audit, else ~/.local/state/rawinfer/audit; null when neither is known.</summary>
    private static string? DefaultAuditDirectory(CliContext context)
    {
        var xdg = context.GetEnvironmentVariable("XDG_STATE_HOME");
        var root = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg) ? xdg
            : Path.IsPathRooted(context.HomeDirectory) ? Path.Combine(context.HomeDirectory, ".local", "state")
            : null;
        return root is null ? null : Path.Combine(root, "rawinfer", "audit");
    }
}
