using System.CommandLine;
using RawInfer.Cli.Download;
using Spectre.Console;

namespace RawInfer.Cli.Commands;

/// <summary><c>rawinfer model pull NAME</c>: download a known model and its tokenizer into the cache.</summary>
internal static class PullCommand
{
    public static Command Create(TextWriter output, TextWriter error, CliContext context)
    {
        var name = new Argument<string>("name") { Description = $"Model to download: {string.Join(", ", KnownModels.All.Select(m => m.Name))}." };
        var baseUrl = new Option<string?>("--base-url")
        {
            Description = $"Folder URL to download from (default: the model's public location; env {CliContext.BaseUrlVariable}).",
        };
        var dir = new Option<string?>("--dir") { Description = "Folder to download into (default: the per-user model cache)." };
        var command = new Command("pull", "Download a model and its tokenizer, verifying their SHA-256.");
        command.Arguments.Add(name);
        command.Options.Add(baseUrl);
        command.Options.Add(dir);
        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            var model = KnownModels.Find(parse.GetValue(name)!)
                ?? throw new CliException($"unknown model '{parse.GetValue(name)}'; known: {string.Join(", ", KnownModels.All.Select(m => m.Name))}");
            var source = ResolveBaseUrl(parse.GetValue(baseUrl) ?? context.GetEnvironmentVariable(CliContext.BaseUrlVariable), model);
            var target = parse.GetValue(dir) ?? context.CacheModelsDirectory
                ?? throw new CliException("cannot tell where the model cache is (no home folder and no XDG_CACHE_HOME); pass --dir");
            await PullAsync(model, source, target, output, error, context, ct).ConfigureAwait(false);
            return 0;
        }));
        return command;
    }

    private static Uri ResolveBaseUrl(string? text, KnownModel model)
    {
        if (string.IsNullOrEmpty(text))
        {
            return model.DefaultBaseUrl;
        }

        // A folder URL: without the trailing slash, relative file names would replace its last segment.
        var withSlash = text.EndsWith('/') ? text : text + "/";
        return Uri.TryCreate(withSlash, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new CliException($"base URL '{text}' is not an absolute http(s) URL");
    }

    private static async Task PullAsync(
        KnownModel model, Uri source, string target, TextWriter output, TextWriter error, CliContext context, CancellationToken ct)
    {
        Directory.CreateDirectory(target);
        var handler = context.CreateHttpHandler?.Invoke() ?? new SocketsHttpHandler();
        using var http = new HttpClient(handler, disposeHandler: true);
        var downloader = new ModelDownloader(http);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(error) });
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn())
            .StartAsync(async progress =>
            {
                foreach (var file in model.Files)
                {
                    var destination = Path.Combine(target, file.Name);
                    var task = progress.AddTask(file.Name, autoStart: true, maxValue: 1);
                    if (File.Exists(destination)
                        && string.Equals(await ModelDownloader.Sha256HexAsync(destination, ct).ConfigureAwait(false), file.Sha256, StringComparison.OrdinalIgnoreCase))
                    {
                        task.Value = task.MaxValue;
                        task.Description = $"{file.Name} (already present)";
                        continue;
                    }

                    await downloader.DownloadAsync(new Uri(source, file.Name), destination, file.Sha256, task, ct).ConfigureAwait(false);
                    if (!console.Profile.Capabilities.Interactive)
                    {
                        // Without a live display (redirected stderr) the bar never shows; say what happened instead.
                        await error.WriteLineAsync($"{file.Name}: downloaded and verified (sha256 {file.Sha256[..12]}...)").ConfigureAwait(false);
                    }
                }
            }).ConfigureAwait(false);

        await output.WriteLineAsync($"{model.Name}: {string.Join(", ", model.Files.Select(f => f.Name))} in {target}").ConfigureAwait(false);
    }
}
