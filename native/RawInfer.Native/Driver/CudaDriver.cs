using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// The CUDA driver: loads libcuda and calls cuInit once per process. Without a driver <see cref="TryInitialize"/>
/// returns false with one line saying why, so callers fall back to the CPU backend.
/// </summary>
public static unsafe class CudaDriver
{
    private static readonly Lock s_lock = new();
    private static bool? s_available;
    private static string? s_reason;
    private static int s_version;
    private static int s_deviceCount;

    /// <summary>
    /// Loads the driver and initializes it. False when there is no driver library, the library is not a driver,
    /// cuInit fails (e.g. CUDA_ERROR_NO_DEVICE) or no device is visible; <paramref name="reason"/> then says which.
    /// </summary>
    public static bool TryInitialize([NotNullWhen(false)] out string? reason)
    {
        lock (s_lock)
        {
            if (s_available is null)
            {
                s_reason = InitializeLocked();
                s_available = s_reason is null;
            }

            reason = s_reason;
            return s_available.Value;
        }
    }

    /// <summary>The number of visible CUDA devices (at least 1 once initialized).</summary>
    public static int DeviceCount
    {
        get
        {
            EnsureInitialized();
            return s_deviceCount;
        }
    }

    /// <summary>The CUDA version the driver supports, as cuDriverGetVersion gives it (13000 = CUDA 13.0).</summary>
    public static int Version
    {
        get
        {
            EnsureInitialized();
            return s_version;
        }
    }

    /// <summary>Throws <see cref="InvalidOperationException"/> with the reason when CUDA is unavailable.</summary>
    public static void EnsureInitialized()
    {
        if (!TryInitialize(out var reason))
        {
            ThrowUnavailable(reason);
        }
    }

    /// <summary>The one-line reason for a driver library that loaded by name but could not be bound.</summary>
    internal static string DescribeBindFailure(Exception exception) => exception switch
    {
        DllNotFoundException => $"CUDA driver library could not be loaded: {OneLine(exception.Message)}",
        EntryPointNotFoundException =>
            $"the library loaded as the CUDA driver lacks cuInit (not an NVIDIA driver?): {OneLine(exception.Message)}",
        _ => $"CUDA driver initialization failed: {OneLine(exception.Message)}",
    };

    /// <summary>The one-line reason for a failing cuInit result.</summary>
    internal static string DescribeInitResult(int result) => result switch
    {
        100 => "CUDA driver found but no CUDA device is visible (cuInit: CUDA_ERROR_NO_DEVICE); check nvidia-smi and CUDA_VISIBLE_DEVICES",
        34 => "libcuda found is the toolkit's stub, not a driver (cuInit: CUDA_ERROR_STUB_LIBRARY)",
        803 => "the CUDA driver does not match the loaded kernel module (cuInit: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH)",
        999 => "cuInit failed: CUDA_ERROR_UNKNOWN (999); the driver may be unloaded or the device in a bad state (see nvidia-smi)",
        _ => $"cuInit failed: {ErrorNames.Cuda(result)} ({result})",
    };

    private static string? InitializeLocked()
    {
        if (!NativeLibraryResolver.TryLoad(NativeLibraryKind.CudaDriver, out _, out var loadError))
        {
            return loadError;
        }

        int result;
        try
        {
            result = CudaApi.cuInit(0);
        }
        catch (DllNotFoundException e)
        {
            return DescribeBindFailure(e);
        }
        catch (EntryPointNotFoundException e)
        {
            return DescribeBindFailure(e);
        }

        if (result != 0)
        {
            return DescribeInitResult(result);
        }

        int version, count;
        result = CudaApi.cuDriverGetVersion(&version);
        if (result != 0)
        {
            return $"cuDriverGetVersion failed: {ErrorNames.Cuda(result)} ({result})";
        }

        result = CudaApi.cuDeviceGetCount(&count);
        if (result != 0)
        {
            return $"cuDeviceGetCount failed: {ErrorNames.Cuda(result)} ({result})";
        }

        if (count == 0)
        {
            return "CUDA driver found but it reports no device";
        }

        s_version = version;
        s_deviceCount = count;
        return null;
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ").Trim();

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnavailable(string reason) =>
        throw new InvalidOperationException($"CUDA is not available: {reason}");
}
