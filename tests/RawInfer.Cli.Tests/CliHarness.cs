using RawInfer.Cli;

namespace RawInfer.Cli.Tests;

/// <summary>Runs the CLI in-process with a private home folder and environment; captures stdout and stderr.</summary>
internal sealed class CliHarness : IDisposable
{
    public CliHarness()
    {
        Home = Directory.CreateTempSubdirectory("rawinfer-cli-").FullName;
    }

    /// <summary>A fresh folder standing in for the user's home (so the model cache starts empty).</summary>
    public string Home { get; }

    public Dictionary<string, string?> Environment { get; } = new(StringComparer.Ordinal);

    public Func<HttpMessageHandler>? HttpHandler { get; set; }

    public CliResult Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var context = new CliContext
        {
            GetEnvironmentVariable = name => Environment.GetValueOrDefault(name),
            HomeDirectory = Home,
            CreateHttpHandler = HttpHandler,
        };
        int exitCode = CliApp.Run(args, output, error, context);
        return new CliResult(exitCode, output.ToString(), error.ToString());
    }

    public string TempFile(string name) => Path.Combine(Home, name);

    public void Dispose() => Directory.Delete(Home, recursive: true);
}

internal sealed record CliResult(int ExitCode, string Output, string Error)
{
    /// <summary>An expected error: non-zero exit, one "rawinfer: error:" line on stderr, no stack trace.</summary>
    public void AssertCleanError(string expectedFragment)
    {
        Assert.NotEqual(0, ExitCode);
        var lines = Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var errorLine = Assert.Single(lines, l => l.StartsWith("rawinfer: error:", StringComparison.Ordinal));
        Assert.Contains(expectedFragment, errorLine, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", Error, StringComparison.Ordinal);
    }
}
