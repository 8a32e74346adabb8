using RawInfer.Native;

namespace RawInfer.Gpu.Device;

public static partial class CudaDeviceSelector
{
    /// <summary>Chooses a backend for <paramref name="choice"/> by asking the real CUDA driver.</summary>
    /// <exception cref="CudaUnavailableException">CUDA was asked for and there is no usable device.</exception>
    public static DeviceSelection Select(DeviceChoice choice) => Select(choice, ProbeDriver);

    /// <summary>Loads the driver (once per process) and counts devices; never throws.</summary>
    public static CudaProbeResult ProbeDriver()
    {
        try
        {
            return CudaDriver.TryInitialize(out var reason)
                ? new CudaProbeResult(CudaDriver.DeviceCount, null)
                : new CudaProbeResult(0, reason);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException or CudaException)
        {
            // TryInitialize reports these itself; this is a second net so a probe can never take the CLI down
            return new CudaProbeResult(0, $"CUDA driver unusable ({e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")})");
        }
    }
}
