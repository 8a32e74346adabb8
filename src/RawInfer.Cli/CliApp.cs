using System.CommandLine;
using RawInfer.Cli.Commands;
using RawInfer.Models;
using RawInfer.Tokenizers;

namespace RawInfer.Cli;

/// <summary>
/// The <c>rawinfer</c> command tree. Runs in-process against any writers so tests can drive it like a user.
/// </summary>
internal static class CliApp
{
    /// <summary>Exit code for expected errors (bad input, missing or corrupt files, network).</summary>
    public const int ErrorExitCode = 1;

    public static int Run(string[] args, TextWriter output, TextWriter error, CliContext context) =>
        RunAsync(args, output, error, context).GetAwaiter().GetResult();

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CliContext context)
    {
        ArgumentNullException.ThrowIfNull(args);
        var root = new RootCommand("RawInfer: run Llama-architecture language models on the CPU or a CUDA GPU.");
        root.Subcommands.Add(GenerateCommand.Create(output, error, context));
        root.Subcommands.Add(BatchCommand.Create(output, error, context));
        root.Subcommands.Add(BenchCommand.Create(output, error, context));
        root.Subcommands.Add(ServeCommand.Create(output, error, context));
        root.Subcommands.Add(ClientCommand.Create(output, error, context));
        var model = new Command("model", "Download, create and inspect model files.");
        model.Subcommands.Add(PullCommand.Create(output, error, context));
        model.Subcommands.Add(ModelCreateCommand.Create(output, error));
        model.Subcommands.Add(ModelInfoCommand.Create(output, error));
        model.Subcommands.Add(ModelConvertCommand.Create(output, error));
        root.Subcommands.Add(model);
        root.Subcommands.Add(AuditCommand.Create(output, error));
        root.Subcommands.Add(GpuKernelsCommand.CreateGroup(output, error));

        // No forced exit after SIGTERM/Ctrl-C: `serve` drains within its own deadline and exits 0; the other
        // commands keep the runtime's default (the signal ends the process).
        var invocation = new InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        return await root.Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
    }

    /// <summary>
    /// Runs a command body, turning expected failures into one line on stderr and <see cref="ErrorExitCode"/>.
    /// Anything else is a bug and keeps its stack trace.
    /// </summary>
    public static async Task<int> Guard(TextWriter error, Func<Task<int>> body)
    {
        try
        {
            return await body().ConfigureAwait(false);
        }
        catch (Exception e) when (IsExpected(e))
        {
            await error.WriteLineAsync($"rawinfer: error: {OneLine(e.Message)}").ConfigureAwait(false);
            return ErrorExitCode;
        }
    }

    private static bool IsExpected(Exception e) => e is CliException or ModelFormatException or TokenizerFormatException
        or FileNotFoundException or DirectoryNotFoundException or FormatException or UnauthorizedAccessException
        or IOException or HttpRequestException or OperationCanceledException or NotSupportedException
        or InsufficientMemoryException;

    private static string OneLine(string message) => message.ReplaceLineEndings(" ");
}
