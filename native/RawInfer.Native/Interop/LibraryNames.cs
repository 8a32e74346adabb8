namespace RawInfer.Native.Interop;

/// <summary>
/// Logical library names the bindings import. No file has these names: <see cref="NativeLibraryResolver"/> maps
/// each to the file found on this machine (libnvrtc.so.11.2 on a CPU box, nvidia/cu13/lib/libnvrtc.so.13 on the
/// GPU box), so one build binds to whichever CUDA release is installed.
/// </summary>
internal static class LibraryNames
{
    public const string CudaDriver = "rawinfer_cuda";
    public const string Nvrtc = "rawinfer_nvrtc";
    public const string Cublas = "rawinfer_cublas";
    public const string CublasLt = "rawinfer_cublaslt";
}
