using System.Runtime.InteropServices;

namespace RawInfer.Native.Interop;

/// <summary>NVRTC (nvrtc.h). Functions return nvrtcResult (0 = success); nvrtcProgram is an opaque pointer.</summary>
internal static unsafe partial class NvrtcApi
{
    static NvrtcApi() => NativeLibraryResolver.EnsureRegistered();

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcVersion(int* major, int* minor);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial byte* nvrtcGetErrorString(int result);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcCreateProgram(
        nint* program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcDestroyProgram(nint* program);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcCompileProgram(nint program, int optionCount, byte** options);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcGetProgramLogSize(nint program, nuint* size);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcGetProgramLog(nint program, byte* log);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcGetPTXSize(nint program, nuint* size);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcGetPTX(nint program, byte* ptx);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcGetCUBINSize(nint program, nuint* size);

    [LibraryImport(LibraryNames.Nvrtc)]
    internal static partial int nvrtcGetCUBIN(nint program, byte* cubin);
}
