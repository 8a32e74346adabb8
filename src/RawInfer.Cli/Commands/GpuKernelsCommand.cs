using System.CommandLine;
using RawInfer.Gpu.Kernels;
using RawInfer.Native;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer gpu compile-kernels --arch sm_90 [--output DIR]</c>: compiles kernels/*.cu ahead of time with NVRTC
/// (a cubin per file for sm_XX, PTX for compute_XX), for machines where compiling at start-up is unwanted.
/// </summary>
internal static class GpuKernelsCommand
{
    /// <summary>The <c>gpu</c> command group holding <c>compile-kernels</c>.</summary>
    public static Command CreateGroup(TextWriter output, TextWriter error)
    {
        var gpu = new Command("gpu", "CUDA backend tools.");
        gpu.Subcommands.Add(Create(output, error));
        return gpu;
    }

    /// <summary>The <c>compile-kernels</c> command.</summary>
    public static Command Create(TextWriter output, TextWriter error)
    {
        var arch = new Option<string>("--arch")
        {
            Description = "Target: sm_XX for a cubin of that GPU generation (sm_90 = H100), compute_XX for PTX.",
            Required = true,
        };
        var outputDir = new Option<string?>("--output", "-o") { Description = "Folder for the images (default: kernels-ARCH)." };
        var command = new Command("compile-kernels", "Compile the CUDA kernels ahead of time with NVRTC.");
        command.Options.Add(arch);
        command.Options.Add(outputDir);
        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            var architecture = parse.GetValue(arch)!;
            Run(architecture, parse.GetValue(outputDir) ?? $"kernels-{architecture}", output);
            return Task.FromResult(0);
        }));
        return command;
    }

    private static void Run(string architecture, string outputDir, TextWriter output)
    {
        IReadOnlyList<string> written;
        try
        {
            written = KernelCompiler.CompileAll(architecture, outputDir);
        }
        catch (NvrtcCompileException e)
        {
            throw new CliException($"{e.Message}: {e.Log}", e);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException or NvrtcException)
        {
            throw new CliException(e.Message, e);
        }

        var (major, minor) = Nvrtc.Version;
        output.WriteLine($"compiled {written.Count} kernel files for {architecture} with NVRTC {major}.{minor}:");
        foreach (var path in written)
        {
            output.WriteLine($"  {path} ({new FileInfo(path).Length:N0} bytes)");
        }
    }
}
