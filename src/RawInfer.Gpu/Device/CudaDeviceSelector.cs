namespace RawInfer.Gpu.Device;

/// <summary>
/// Turns <c>--device cpu|cuda|auto</c> into a backend. <c>auto</c> takes CUDA device 0 when the driver loads and
/// reports a device, and otherwise falls back to the CPU with one line saying why ("no CUDA driver (libcuda.so.1
/// not found): using the CPU backend"); <c>cuda</c> without a usable device is an error with the same reason.
/// </summary>
public static partial class CudaDeviceSelector
{
    /// <summary>Chooses a backend given what <paramref name="probe"/> reports (the probe runs only when needed).</summary>
    /// <exception cref="CudaUnavailableException">CUDA was asked for and there is no usable device.</exception>
    public static DeviceSelection Select(DeviceChoice choice, Func<CudaProbeResult> probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (choice == DeviceChoice.Cpu)
        {
            return DeviceSelection.Cpu;
        }

        var found = probe();
        if (found.DeviceCount > 0 && found.Problem is null)
        {
            return new DeviceSelection(true, 0, null);
        }

        var problem = found.Problem ?? "the CUDA driver reports no device";
        return choice == DeviceChoice.Cuda
            ? throw new CudaUnavailableException($"--device cuda: {problem}")
            : new DeviceSelection(false, 0, $"{problem}: using the CPU backend");
    }
}
