using RawInfer.Native;

namespace RawInfer.Gpu.Kernels;

/// <summary><see cref="IKernelCodeGenerator"/> over native's NVRTC binding.</summary>
internal sealed class NvrtcCodeGenerator : IKernelCodeGenerator
{
    private NvrtcCodeGenerator(string version) => Version = version;

    /// <summary>"nvrtc MAJOR.MINOR": a new NVRTC release gets new cache entries.</summary>
    public string Version { get; }

    /// <summary>Loads NVRTC or throws <see cref="InvalidOperationException"/> saying why it is unavailable.</summary>
    public static NvrtcCodeGenerator Load()
    {
        if (!Nvrtc.TryLoad(out var reason))
        {
            throw new InvalidOperationException($"NVRTC is needed to compile the CUDA kernels but cannot be loaded: {reason}");
        }

        var (major, minor) = Nvrtc.Version;
        return new NvrtcCodeGenerator($"nvrtc {major}.{minor}");
    }

    public KernelImage Compile(string fileName, string source, string architecture, IReadOnlyList<string> options,
        IReadOnlyDictionary<string, string> headers)
    {
        var output = Nvrtc.Compile(source, fileName, architecture, options, headers);
        if (KernelCompiler.IsCubinArchitecture(architecture))
        {
            var cubin = output.Cubin
                ?? throw new InvalidOperationException($"NVRTC returned no cubin for {fileName} ({architecture})");
            return new KernelImage(fileName, architecture, KernelImageKind.Cubin, cubin);
        }

        var ptx = output.Ptx ?? throw new InvalidOperationException($"NVRTC returned no PTX for {fileName} ({architecture})");
        return new KernelImage(fileName, architecture, KernelImageKind.Ptx, System.Text.Encoding.UTF8.GetBytes(ptx + "\0"));
    }
}
