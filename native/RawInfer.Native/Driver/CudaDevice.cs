using System.Runtime.InteropServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>A CUDA device and the properties the runtime sizes itself by.</summary>
public sealed unsafe class CudaDevice
{
    private CudaDevice(int ordinal, int handle)
    {
        Ordinal = ordinal;
        Handle = handle;

        const int NameCapacity = 256;
        var name = stackalloc byte[NameCapacity];
        Check.Cuda(CudaApi.cuDeviceGetName(name, NameCapacity, handle));
        Name = Marshal.PtrToStringUTF8((nint)name) ?? "";

        nuint totalBytes;
        Check.Cuda(CudaApi.cuDeviceTotalMem_v2(&totalBytes, handle));
        TotalMemoryBytes = (long)totalBytes;
        ComputeCapability = (GetAttribute(CudaDeviceAttribute.ComputeCapabilityMajor),
            GetAttribute(CudaDeviceAttribute.ComputeCapabilityMinor));
        MultiprocessorCount = GetAttribute(CudaDeviceAttribute.MultiprocessorCount);
    }

    /// <summary>The ordinal among visible devices (as CUDA_VISIBLE_DEVICES numbers them).</summary>
    public int Ordinal { get; }

    /// <summary>The device name, e.g. "NVIDIA H100 80GB HBM3".</summary>
    public string Name { get; }

    /// <summary>Compute capability, e.g. (9, 0) for an H100.</summary>
    public (int Major, int Minor) ComputeCapability { get; }

    /// <summary>The real architecture NVRTC compiles a cubin for, e.g. "sm_90".</summary>
    public string Architecture => $"sm_{ComputeCapability.Major}{ComputeCapability.Minor}";

    /// <summary>Total device memory in bytes.</summary>
    public long TotalMemoryBytes { get; }

    /// <summary>Number of streaming multiprocessors.</summary>
    public int MultiprocessorCount { get; }

    /// <summary>The CUdevice value.</summary>
    internal int Handle { get; }

    /// <summary>Opens the device with the given ordinal; initializes the driver first (throws if unavailable).</summary>
    public static CudaDevice Get(int ordinal)
    {
        var count = CudaDriver.DeviceCount;
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(ordinal, count);
        int handle;
        Check.Cuda(CudaApi.cuDeviceGet(&handle, ordinal));
        return new CudaDevice(ordinal, handle);
    }

    /// <summary>Reads one cuDeviceGetAttribute value.</summary>
    public int GetAttribute(CudaDeviceAttribute attribute)
    {
        int value;
        Check.Cuda(CudaApi.cuDeviceGetAttribute(&value, (int)attribute, Handle));
        return value;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Name} ({Architecture}, {MultiprocessorCount} SMs, {TotalMemoryBytes / (1024 * 1024)} MiB)";
}

/// <summary>CUdevice_attribute values (cuda.h) RawInfer reads; others can be cast from their numeric value.</summary>
public enum CudaDeviceAttribute
{
    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK.</summary>
    MaxThreadsPerBlock = 1,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X.</summary>
    MaxGridDimX = 5,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y.</summary>
    MaxGridDimY = 6,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z.</summary>
    MaxGridDimZ = 7,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK (bytes, without opt-in).</summary>
    MaxSharedMemoryPerBlock = 8,

    /// <summary>CU_DEVICE_ATTRIBUTE_WARP_SIZE.</summary>
    WarpSize = 10,

    /// <summary>CU_DEVICE_ATTRIBUTE_CLOCK_RATE (kHz).</summary>
    ClockRateKHz = 13,

    /// <summary>CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT.</summary>
    MultiprocessorCount = 16,

    /// <summary>CU_DEVICE_ATTRIBUTE_PCI_BUS_ID.</summary>
    PciBusId = 33,

    /// <summary>CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE (kHz).</summary>
    MemoryClockRateKHz = 36,

    /// <summary>CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH (bits).</summary>
    GlobalMemoryBusWidthBits = 37,

    /// <summary>CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE (bytes).</summary>
    L2CacheSizeBytes = 38,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR.</summary>
    MaxThreadsPerMultiprocessor = 39,

    /// <summary>CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT (copy engines).</summary>
    AsyncEngineCount = 40,

    /// <summary>CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING.</summary>
    UnifiedAddressing = 41,

    /// <summary>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR.</summary>
    ComputeCapabilityMajor = 75,

    /// <summary>CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR.</summary>
    ComputeCapabilityMinor = 76,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR (bytes).</summary>
    MaxSharedMemoryPerMultiprocessor = 81,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR.</summary>
    MaxRegistersPerMultiprocessor = 82,

    /// <summary>CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN (bytes a kernel may opt in to).</summary>
    MaxSharedMemoryPerBlockOptin = 97,
}
