namespace RawInfer.Gpu.Device;

/// <summary>The outcome of choosing a device: the CPU, or CUDA device <see cref="Ordinal"/>.</summary>
/// <param name="UseCuda">True to run on CUDA device <paramref name="Ordinal"/>.</param>
/// <param name="Ordinal">The CUDA device ordinal (0 when on the CPU).</param>
/// <param name="Notice">One line for stderr when auto fell back to the CPU; null otherwise.</param>
public sealed record DeviceSelection(bool UseCuda, int Ordinal, string? Notice)
{
    /// <summary>The CPU, with no notice.</summary>
    public static DeviceSelection Cpu { get; } = new(false, 0, null);
}

/// <summary>What a probe of the CUDA driver found.</summary>
/// <param name="DeviceCount">CUDA devices present (0 when the driver is missing or failed).</param>
/// <param name="Problem">Why CUDA cannot be used, in one line (null when a device is present).</param>
public readonly record struct CudaProbeResult(int DeviceCount, string? Problem);

/// <summary>Asked for <c>--device cuda</c> on a machine where CUDA cannot run.</summary>
public sealed class CudaUnavailableException : Exception
{
    public CudaUnavailableException(string message)
        : base(message)
    {
    }

    public CudaUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CudaUnavailableException()
    {
    }
}
