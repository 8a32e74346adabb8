namespace RawInfer.Native;

/// <summary>The native libraries RawInfer binds to.</summary>
public enum NativeLibraryKind
{
    /// <summary>The CUDA driver, libcuda.so.1 (installed with the NVIDIA driver, never with the toolkit).</summary>
    CudaDriver,

    /// <summary>The runtime compiler NVRTC, libnvrtc.so.*, with libnvrtc-builtins.so.* beside it.</summary>
    Nvrtc,

    /// <summary>cuBLAS, libcublas.so.*; needs cuBLASLt from the same release.</summary>
    Cublas,

    /// <summary>cuBLASLt, libcublasLt.so.*; loaded before cuBLAS, from cuBLAS's folder.</summary>
    CublasLt,
}

/// <summary>
/// One place to try a library: <see cref="Path"/> is a bare file name (the dynamic loader's search decides) or a
/// full path; <see cref="Preload"/> lists full paths loaded first from the same folder, because the library opens
/// them by bare name at run time (NVRTC opens libnvrtc-builtins, cuBLAS needs cuBLASLt) and a folder outside the
/// loader's search path would otherwise not be found.
/// </summary>
public sealed record LibraryCandidate(string Path, IReadOnlyList<string> Preload)
{
    /// <summary>Whether <see cref="Path"/> is a bare name left to the dynamic loader's search.</summary>
    public bool IsBareName => !Path.Contains('/', StringComparison.Ordinal);

    /// <inheritdoc/>
    public override string ToString() =>
        Preload.Count == 0 ? Path : $"{Path} (after {string.Join(", ", Preload)})";
}
