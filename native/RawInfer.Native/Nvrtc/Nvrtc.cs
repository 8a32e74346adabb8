using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// NVRTC, the runtime CUDA C++ compiler: compiles kernel source to PTX (for a virtual architecture, "compute_90")
/// or to a cubin (for a real one, "sm_90") without a GPU. NVRTC has no standard headers.
/// </summary>
public static unsafe partial class Nvrtc
{
    private static readonly Lock s_lock = new();
    private static bool? s_loaded;
    private static string? s_reason;
    private static (int Major, int Minor) s_version;

    /// <summary>Loads NVRTC; false with one line naming what was tried when it is not installed.</summary>
    public static bool TryLoad([NotNullWhen(false)] out string? reason)
    {
        lock (s_lock)
        {
            if (s_loaded is null)
            {
                s_reason = LoadLocked();
                s_loaded = s_reason is null;
            }

            reason = s_reason;
            return s_loaded.Value;
        }
    }

    /// <summary>The NVRTC release, e.g. (11, 8) or (13, 0). Throws when NVRTC is not installed.</summary>
    public static (int Major, int Minor) Version
    {
        get
        {
            EnsureLoaded();
            return s_version;
        }
    }

    /// <summary>The file NVRTC was loaded from (part of a kernel cache key), or null.</summary>
    public static string? LibraryPath => NativeLibraryResolver.LoadedPath(NativeLibraryKind.Nvrtc);

    /// <summary>Throws <see cref="DllNotFoundException"/> with the reason when NVRTC is not installed.</summary>
    public static void EnsureLoaded()
    {
        if (!TryLoad(out var reason))
        {
            ThrowNotLoaded(reason);
        }
    }

    private static string? LoadLocked()
    {
        if (!NativeLibraryResolver.TryLoad(NativeLibraryKind.Nvrtc, out _, out var error))
        {
            return error;
        }

        try
        {
            int major, minor;
            var result = NvrtcApi.nvrtcVersion(&major, &minor);
            if (result != 0)
            {
                return $"nvrtcVersion failed: {ErrorNames.Nvrtc(result)} ({result})";
            }

            s_version = (major, minor);
            return null;
        }
        catch (EntryPointNotFoundException e)
        {
            return $"the library loaded as NVRTC lacks nvrtcVersion: {e.Message.ReplaceLineEndings(" ")}";
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotLoaded(string reason) => throw new DllNotFoundException(reason);

    /// <summary>The name NVRTC gives an error code (nvrtcGetErrorString), falling back to our table.</summary>
    internal static string ErrorName(int result)
    {
        var text = NvrtcApi.nvrtcGetErrorString(result);
        return text == null ? ErrorNames.Nvrtc(result) : Marshal.PtrToStringUTF8((nint)text) ?? ErrorNames.Nvrtc(result);
    }
}

/// <summary>What a compile produced.</summary>
public sealed class NvrtcOutput
{
    /// <summary>PTX text (always for a compute_XX target; for sm_XX only when this NVRTC also returns it).</summary>
    public string? Ptx { get; init; }

    /// <summary>The cubin (ELF) for an sm_XX target; null for compute_XX.</summary>
    [SuppressMessage("Performance", "CA1819:Properties should not return arrays", Justification = "The contract's shape; the image is handed to cuModuleLoadDataEx as is.")]
    public byte[]? Cubin { get; init; }

    /// <summary>NVRTC's log (warnings); empty when there were none.</summary>
    public string Log { get; init; } = "";

    /// <summary>The architecture compiled for, e.g. "sm_90".</summary>
    public string Architecture { get; init; } = "";

    /// <summary>What to give <see cref="CudaModule.LoadData"/>: the cubin if any, else the NUL-terminated PTX.</summary>
    public byte[] ModuleImage() =>
        Cubin ?? System.Text.Encoding.UTF8.GetBytes((Ptx ?? throw new InvalidOperationException("no PTX or cubin")) + "\0");
}
