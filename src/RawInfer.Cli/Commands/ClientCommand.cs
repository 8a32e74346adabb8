using System.CommandLine;
using System.Globalization;
using RawInfer.Client;
using RawInfer.Protocol;

namespace RawInfer.Cli.Commands;

/// <summary><c>rawinfer client "prompt" --server HOST:PORT</c>: stream a completion from a server to the terminal.</summary>
internal static class ClientCommand
{
    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var prompt = new Argument<string>("prompt") { Description = "Text to continue." };
        var server = new Option<string>("--server") { Description = "HOST:PORT of the server.", DefaultValueFactory = _ => "127.0.0.1:7070" };
        var apiKey = new Option<string?>("--api-key") { Description = $"API key (default ${ServeCommand.ApiKeyVariable}, first of the list)." };
        var maxTokens = new Option<int>("--max-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature", "-t") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => 1f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold; 1 = off.", DefaultValueFactory = _ => 0.9f };
        var seed = new Option<ulong?>("--seed", "-s") { Description = "Random seed." };
        var stats = new Option<bool>("--stats") { Description = "Print the server's stats after the completion." };
        var command = new Command("client", "Stream a completion from a RawInfer server.");
        command.Arguments.Add(prompt);
        foreach (var option in new Option[] { server, apiKey, maxTokens, temperature, topP, seed, stats })
        {
            command.Options.Add(option);
        }

        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            var endpoint = ServeCommand.ParseEndpoint(parse.GetValue(server)!, "--server");
            var key = ResolveKey(parse.GetValue(apiKey), context);
            try
            {
                await using var client = await RawInferClient.ConnectAsync(endpoint, key, cancellationToken: ct).ConfigureAwait(false);
                var request = new SubmitFrame
                {
                    Prompt = parse.GetValue(prompt), MaxTokens = parse.GetValue(maxTokens), Temperature = parse.GetValue(temperature),
                    TopP = parse.GetValue(topP), Seed = parse.GetValue(seed),
                };
                await foreach (var chunk in client.StreamAsync(request, ct).ConfigureAwait(false))
                {
                    await output.WriteAsync(chunk.Text).ConfigureAwait(false);
                    await output.FlushAsync(ct).ConfigureAwait(false);
                    if (chunk.Done is { } done)
                    {
                        await output.WriteLineAsync().ConfigureAwait(false);
                        await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                            $"{done.Reason}: {done.Usage.PromptTokens} prompt + {done.Usage.CompletionTokens} generated tokens in {done.Usage.TotalTime.TotalMilliseconds:F0} ms (first token {done.Usage.TimeToFirstToken?.TotalMilliseconds ?? 0:F0} ms)")).ConfigureAwait(false);
                    }
                }

                if (parse.GetValue(stats))
                {
                    var s = await client.GetStatsAsync(cancellationToken: ct).ConfigureAwait(false);
                    await error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"server: {s.Connections} connections, {s.RunningRequests} running, {s.WaitingRequests} waiting, {s.GeneratedTokens} tokens generated, KV {s.KvBlocksUsed}/{s.KvBlocksTotal} blocks")).ConfigureAwait(false);
                }
            }
            catch (RawInferException e)
            {
                throw new CliException($"server refused: {e.Message}" + (e.RetryAfter is { } r ? $" (retry after {r.TotalSeconds:F1} s)" : ""), e);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new CliException($"cannot reach {endpoint}: {e.Message}", e);
            }

            return 0;
        }));
        return command;
    }

    /// <summary>The explicit key, else the first of $RAWINFER_API_KEY.</summary>
    public static string ResolveKey(string? explicitKey, CliContext context) =>
        explicitKey
        ?? context.GetEnvironmentVariable(ServeCommand.ApiKeyVariable)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault()
        ?? throw new CliException($"no API key: pass --api-key or set ${ServeCommand.ApiKeyVariable}");
}
