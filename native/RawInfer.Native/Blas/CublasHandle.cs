using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>cuBLAS and cuBLASLt loading.</summary>
public static class Cublas
{
    /// <summary>Loads cuBLASLt and cuBLAS (from the same folder); false with one line when they are missing.</summary>
    public static bool TryLoad([NotNullWhen(false)] out string? reason)
    {
        if (!NativeLibraryResolver.TryLoad(NativeLibraryKind.Cublas, out _, out var error)
            || !NativeLibraryResolver.TryLoad(NativeLibraryKind.CublasLt, out _, out error))
        {
            reason = error ?? "cuBLAS could not be loaded";
            return false;
        }

        reason = null;
        return true;
    }

    internal static void EnsureLoaded()
    {
        if (!TryLoad(out var reason))
        {
            throw new DllNotFoundException(reason);
        }
    }
}

/// <summary>
/// A cuBLAS handle bound to a context. cuBLAS is column-major: a row-major (rows, cols) matrix is a column-major
/// (cols, rows) one, which <see cref="LinearRowMajor"/> uses so callers can think row-major. Alpha and beta are
/// floats, so only the COMPUTE_32F* compute types apply here.
/// </summary>
public sealed unsafe class CublasHandle : CudaHandle
{
    /// <summary>Creates a handle (cublasCreate) on the context's device.</summary>
    public CublasHandle(CudaContext context)
        : base(context)
    {
        try
        {
            Cublas.EnsureLoaded();
            context.MakeCurrent();
            nint created;
            Check.Cublas(CublasApi.cublasCreate_v2(&created));
            SetHandle(created);
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>cuBLAS's version number, e.g. 130000 for 13.0.0 (cublasGetVersion).</summary>
    public int Version
    {
        get
        {
            int version;
            Check.Cublas(CublasApi.cublasGetVersion_v2(handle, &version));
            GC.KeepAlive(this);
            return version;
        }
    }

    /// <summary>Queues this handle's subsequent work on <paramref name="stream"/>.</summary>
    public void SetStream(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Check.Cublas(CublasApi.cublasSetStream_v2(handle, stream.DangerousGetHandle()));
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    /// <summary>
    /// Gives the handle <paramref name="workspace"/> for its kernels' scratch instead of its default pool, so that
    /// no GEMM allocates while a stream is being captured into a graph. Call after <see cref="SetStream"/>, which
    /// resets the workspace to the default pool. The buffer must outlive the handle's use of it.
    /// </summary>
    public void SetWorkspace(DeviceBuffer workspace)
    {
        ArgumentNullException.ThrowIfNull(workspace);
        Check.Cublas(CublasApi.cublasSetWorkspace_v2(handle, (void*)workspace.Pointer, (nuint)workspace.SizeBytes));
        GC.KeepAlive(workspace);
        GC.KeepAlive(this);
    }

    /// <summary>Sets the math mode (e.g. pedantic for reference checks).</summary>
    public void SetMathMode(CublasMathMode mode)
    {
        Check.Cublas(CublasApi.cublasSetMathMode(handle, (int)mode));
        GC.KeepAlive(this);
    }

    /// <summary>
    /// cublasGemmEx, column-major: C (m,n) = alpha·op(A)·op(B) + beta·C with op(A) (m,k), op(B) (k,n).
    /// Pointers are device pointers; lda/ldb/ldc are leading dimensions (column strides) in elements.
    /// </summary>
    [SuppressMessage("Naming", "CA1711", Justification = "The cuBLAS function's name.")]
    public void GemmEx(
        CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float alpha, nint a, CudaDataType aType, int lda,
        nint b, CudaDataType bType, int ldb,
        float beta, nint c, CudaDataType cType, int ldc,
        CublasComputeType computeType = CublasComputeType.COMPUTE_32F,
        CublasGemmAlgorithm algorithm = CublasGemmAlgorithm.Default)
    {
        Debug.Assert(computeType != CublasComputeType.COMPUTE_16F, "alpha and beta are float: use a COMPUTE_32F* type");
        Check.Cublas(CublasApi.cublasGemmEx(
            handle, (int)transA, (int)transB, m, n, k,
            &alpha, (void*)a, (int)aType, lda,
            (void*)b, (int)bType, ldb,
            &beta, (void*)c, (int)cType, ldc,
            (int)computeType, (int)algorithm));
        GC.KeepAlive(this);
    }

    /// <summary>
    /// cublasGemmStridedBatchedEx: <paramref name="batchCount"/> independent column-major GEMMs whose operands
    /// start <paramref name="strideA"/>/<paramref name="strideB"/>/<paramref name="strideC"/> elements apart.
    /// </summary>
    [SuppressMessage("Naming", "CA1711", Justification = "The cuBLAS function's name.")]
    public void GemmStridedBatchedEx(
        CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float alpha, nint a, CudaDataType aType, int lda, long strideA,
        nint b, CudaDataType bType, int ldb, long strideB,
        float beta, nint c, CudaDataType cType, int ldc, long strideC,
        int batchCount,
        CublasComputeType computeType = CublasComputeType.COMPUTE_32F,
        CublasGemmAlgorithm algorithm = CublasGemmAlgorithm.Default)
    {
        Debug.Assert(computeType != CublasComputeType.COMPUTE_16F, "alpha and beta are float: use a COMPUTE_32F* type");
        Check.Cublas(CublasApi.cublasGemmStridedBatchedEx(
            handle, (int)transA, (int)transB, m, n, k,
            &alpha, (void*)a, (int)aType, lda, strideA,
            (void*)b, (int)bType, ldb, strideB,
            &beta, (void*)c, (int)cType, ldc, strideC,
            batchCount, (int)computeType, (int)algorithm));
        GC.KeepAlive(this);
    }

    /// <summary>
    /// The linear layer, row-major: y (rows, outFeatures) = x (rows, inFeatures) · wᵀ + beta·y, with w stored
    /// (outFeatures, inFeatures) as in checkpoints. In cuBLAS's column-major view this is
    /// yᵀ (out, rows) = op_T(w) (out, in) · xᵀ (in, rows), with lda = ldb = inFeatures and ldc = outFeatures.
    /// </summary>
    public void LinearRowMajor(
        nint y, CudaDataType yType, nint x, CudaDataType xType, nint w, CudaDataType wType,
        int rows, int inFeatures, int outFeatures, float beta = 0f,
        CublasComputeType computeType = CublasComputeType.COMPUTE_32F) =>
        GemmEx(
            CublasOperation.T, CublasOperation.N, outFeatures, rows, inFeatures,
            1f, w, wType, inFeatures,
            x, xType, inFeatures,
            beta, y, yType, outFeatures,
            computeType);

    private protected override bool ReleaseNative() => CublasApi.cublasDestroy_v2(handle) == 0;
}

/// <summary>A cuBLASLt handle (cublasLtCreate); matmul descriptors can be added on top when needed.</summary>
public sealed unsafe class CublasLtHandle : CudaHandle
{
    /// <summary>Creates a handle bound to the context's device.</summary>
    public CublasLtHandle(CudaContext context)
        : base(context)
    {
        try
        {
            Cublas.EnsureLoaded();
            context.MakeCurrent();
            nint created;
            Check.Cublas(CublasLtApi.cublasLtCreate(&created));
            SetHandle(created);
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>cuBLASLt's version number (cublasLtGetVersion), e.g. 130000.</summary>
    public static long Version
    {
        get
        {
            Cublas.EnsureLoaded();
            return (long)CublasLtApi.cublasLtGetVersion();
        }
    }

    private protected override bool ReleaseNative() => CublasLtApi.cublasLtDestroy(handle) == 0;
}
