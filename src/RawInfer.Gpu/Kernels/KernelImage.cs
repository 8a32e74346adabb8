namespace RawInfer.Gpu.Kernels;

/// <summary>What a <see cref="KernelImage"/> holds.</summary>
public enum KernelImageKind
{
    /// <summary>PTX text (NUL-terminated), JIT-compiled by the driver on load: any device of at least that arch.</summary>
    Ptx,

    /// <summary>An ELF cubin for exactly one SM architecture: no JIT, and no PTX-version dependence on the driver.</summary>
    Cubin,
}

/// <summary>One compiled kernels/*.cu translation unit, ready for CudaModule.LoadData.</summary>
public sealed class KernelImage
{
    /// <summary>Creates an image.</summary>
    /// <param name="fileName">The source file, e.g. "rmsnorm.cu".</param>
    /// <param name="architecture">"sm_90" for a cubin, "compute_90" for PTX.</param>
    /// <param name="kind">Cubin or PTX.</param>
    /// <param name="data">The cubin bytes, or the PTX text (a NUL terminator is appended when missing).</param>
    public KernelImage(string fileName, string architecture, KernelImageKind kind, ReadOnlyMemory<byte> data)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        if (data.IsEmpty)
        {
            throw new ArgumentException($"compiled image of {fileName} for {architecture} is empty", nameof(data));
        }

        if (kind == KernelImageKind.Ptx && data.Span[^1] != 0)
        {
            var terminated = new byte[data.Length + 1];
            data.Span.CopyTo(terminated);
            data = terminated;
        }

        FileName = fileName;
        Architecture = architecture;
        Kind = kind;
        Data = data;
    }

    /// <summary>The source file, e.g. "rmsnorm.cu".</summary>
    public string FileName { get; }

    /// <summary>"sm_XX" (cubin) or "compute_XX" (PTX).</summary>
    public string Architecture { get; }

    /// <summary>Cubin or PTX.</summary>
    public KernelImageKind Kind { get; }

    /// <summary>The module image as CudaModule.LoadData takes it.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The PTX text without its terminator (only for <see cref="KernelImageKind.Ptx"/>).</summary>
    public string PtxText => Kind == KernelImageKind.Ptx
        ? System.Text.Encoding.UTF8.GetString(Data.Span[..^1])
        : throw new InvalidOperationException($"{FileName} for {Architecture} is a cubin, not PTX");

    /// <summary>The file name an ahead-of-time build writes: "rmsnorm.sm_90.cubin" or "rmsnorm.compute_90.ptx".</summary>
    public static string ArtifactName(string fileName, string architecture)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        var stem = Path.GetFileNameWithoutExtension(fileName);
        return KernelCompiler.IsCubinArchitecture(architecture) ? $"{stem}.{architecture}.cubin" : $"{stem}.{architecture}.ptx";
    }
}

/// <summary>Turns CUDA C into a module image; NVRTC in production, a stand-in in the cache tests.</summary>
internal interface IKernelCodeGenerator
{
    /// <summary>Identifies the compiler build (part of the cache key), e.g. "nvrtc 12.8".</summary>
    string Version { get; }

    /// <summary>Compiles one translation unit for <paramref name="architecture"/> ("sm_XX" cubin, "compute_XX" PTX).</summary>
    KernelImage Compile(string fileName, string source, string architecture, IReadOnlyList<string> options, IReadOnlyDictionary<string, string> headers);
}
