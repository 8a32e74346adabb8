using System.Runtime.InteropServices;

namespace RawInfer.Native.Interop;

/// <summary>
/// cuBLAS v2 (cublas_api.h). Functions return cublasStatus_t (0 = success). Matrices are column-major; alpha and
/// beta are host pointers (the default pointer mode) whose type follows the compute type (float for COMPUTE_32F*).
/// </summary>
internal static unsafe partial class CublasApi
{
    static CublasApi() => NativeLibraryResolver.EnsureRegistered();

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasCreate_v2(nint* handle);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasDestroy_v2(nint handle);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasSetStream_v2(nint handle, nint stream);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasSetWorkspace_v2(nint handle, void* workspace, nuint workspaceSizeInBytes);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasGetVersion_v2(nint handle, int* version);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasSetMathMode(nint handle, int mode);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasGemmEx(
        nint handle, int transA, int transB, int m, int n, int k,
        void* alpha, void* a, int aType, int lda,
        void* b, int bType, int ldb,
        void* beta, void* c, int cType, int ldc,
        int computeType, int algorithm);

    [LibraryImport(LibraryNames.Cublas)]
    internal static partial int cublasGemmStridedBatchedEx(
        nint handle, int transA, int transB, int m, int n, int k,
        void* alpha, void* a, int aType, int lda, long strideA,
        void* b, int bType, int ldb, long strideB,
        void* beta, void* c, int cType, int ldc, long strideC,
        int batchCount, int computeType, int algorithm);
}

/// <summary>cuBLASLt (cublasLt.h): only the handle and version for now; cuBLAS itself links against it.</summary>
internal static unsafe partial class CublasLtApi
{
    static CublasLtApi() => NativeLibraryResolver.EnsureRegistered();

    [LibraryImport(LibraryNames.CublasLt)]
    internal static partial int cublasLtCreate(nint* handle);

    [LibraryImport(LibraryNames.CublasLt)]
    internal static partial int cublasLtDestroy(nint handle);

    [LibraryImport(LibraryNames.CublasLt)]
    internal static partial nuint cublasLtGetVersion();
}
