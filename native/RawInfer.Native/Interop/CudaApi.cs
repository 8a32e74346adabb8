using System.Runtime.InteropServices;

namespace RawInfer.Native.Interop;

/// <summary>
/// CUDA driver API (cuda.h). Every function returns a CUresult (0 = success). Handles (CUcontext, CUstream,
/// CUevent, CUmodule, CUfunction) are opaque pointers; CUdeviceptr is a 64-bit integer; CUdevice an int.
/// The versioned names (_v2) are the symbols cuda.h maps the plain names to since CUDA 4/11.
/// </summary>
internal static unsafe partial class CudaApi
{
    // The resolver must be registered before the first call binds; a static constructor runs before any member.
    static CudaApi() => NativeLibraryResolver.EnsureRegistered();

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuInit(uint flags);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDriverGetVersion(int* driverVersion);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuGetErrorName(int error, byte** name);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuGetErrorString(int error, byte** description);

    // devices

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDeviceGetCount(int* count);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDeviceGet(int* device, int ordinal);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDeviceGetName(byte* name, int length, int device);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDeviceGetAttribute(int* value, int attribute, int device);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDeviceTotalMem_v2(nuint* bytes, int device);

    // contexts

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDevicePrimaryCtxRetain(nint* context, int device);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuDevicePrimaryCtxRelease_v2(int device);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuCtxSetCurrent(nint context);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuCtxGetCurrent(nint* context);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuCtxSynchronize();

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemGetInfo_v2(nuint* free, nuint* total);

    // streams and events

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuStreamCreate(nint* stream, uint flags);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuStreamDestroy_v2(nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuStreamSynchronize(nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuEventCreate(nint* evt, uint flags);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuEventDestroy_v2(nint evt);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuEventRecord(nint evt, nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuEventSynchronize(nint evt);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuEventElapsedTime(float* milliseconds, nint start, nint end);

    // memory

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemAlloc_v2(ulong* pointer, nuint bytes);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemFree_v2(ulong pointer);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemAllocHost_v2(void** pointer, nuint bytes);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemFreeHost(void* pointer);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemcpyHtoDAsync_v2(ulong destination, void* source, nuint bytes, nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemcpyDtoHAsync_v2(void* destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemcpyDtoDAsync_v2(ulong destination, ulong source, nuint bytes, nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuMemsetD8Async(ulong destination, byte value, nuint count, nint stream);

    // modules and launches

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuModuleLoadDataEx(nint* module, void* image, uint optionCount, int* options, void** optionValues);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuModuleUnload(nint module);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuModuleGetFunction(nint* function, nint module, byte* name);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuFuncGetAttribute(int* value, int attribute, nint function);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuFuncSetAttribute(nint function, int attribute, int value);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuLaunchKernel(
        nint function,
        uint gridX, uint gridY, uint gridZ,
        uint blockX, uint blockY, uint blockZ,
        uint sharedMemoryBytes, nint stream, void** kernelParameters, void** extra);

    // graphs: a stream's work captured once and replayed with one launch

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuStreamBeginCapture_v2(nint stream, int mode);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuStreamEndCapture(nint stream, nint* graph);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuStreamIsCapturing(nint stream, int* status);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuGraphInstantiateWithFlags(nint* graphExec, nint graph, ulong flags);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuGraphLaunch(nint graphExec, nint stream);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuGraphExecDestroy(nint graphExec);

    [LibraryImport(LibraryNames.CudaDriver)]
    internal static partial int cuGraphDestroy(nint graph);

    // CUstreamCaptureMode: only this thread's capture-unsafe calls (allocation, synchronisation) are refused
    internal const int StreamCaptureModeThreadLocal = 1;

    // CUjit_option values used with cuModuleLoadDataEx.
    internal const int JitInfoLogBuffer = 3;
    internal const int JitInfoLogBufferSizeBytes = 4;
    internal const int JitErrorLogBuffer = 5;
    internal const int JitErrorLogBufferSizeBytes = 6;

    internal const uint StreamNonBlocking = 0x1; // CU_STREAM_NON_BLOCKING
    internal const uint EventDefault = 0x0;      // CU_EVENT_DEFAULT
    internal const uint EventDisableTiming = 0x2; // CU_EVENT_DISABLE_TIMING
}
