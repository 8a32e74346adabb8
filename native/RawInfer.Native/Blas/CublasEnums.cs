#pragma warning disable CA1707 // Member names mirror the C enums (CUDA_R_16F, CUBLAS_COMPUTE_32F) so call sites read like cuBLAS docs.

namespace RawInfer.Native;

/// <summary>cublasOperation_t: how cuBLAS reads a (column-major) operand.</summary>
public enum CublasOperation
{
    /// <summary>CUBLAS_OP_N: as stored.</summary>
    N = 0,

    /// <summary>CUBLAS_OP_T: transposed.</summary>
    T = 1,

    /// <summary>CUBLAS_OP_C: conjugate-transposed.</summary>
    C = 2,
}

/// <summary>cudaDataType (library_types.h): the element type of a GEMM operand.</summary>
public enum CudaDataType
{
    /// <summary>CUDA_R_32F: float.</summary>
    R_32F = 0,

    /// <summary>CUDA_R_64F: double.</summary>
    R_64F = 1,

    /// <summary>CUDA_R_16F: IEEE half.</summary>
    R_16F = 2,

    /// <summary>CUDA_R_8I: signed byte.</summary>
    R_8I = 3,

    /// <summary>CUDA_R_32I: int.</summary>
    R_32I = 10,

    /// <summary>CUDA_R_16BF: bfloat16.</summary>
    R_16BF = 14,
}

/// <summary>cublasComputeType_t: the accumulation type (and what reduced precision cuBLAS may use).</summary>
public enum CublasComputeType
{
    /// <summary>CUBLAS_COMPUTE_16F: half accumulation (alpha/beta are half; not supported by the float overloads here).</summary>
    COMPUTE_16F = 64,

    /// <summary>CUBLAS_COMPUTE_32F: float accumulation; F16/BF16 inputs use tensor cores.</summary>
    COMPUTE_32F = 68,

    /// <summary>CUBLAS_COMPUTE_32F_PEDANTIC: float accumulation, no reduced-precision shortcuts.</summary>
    COMPUTE_32F_PEDANTIC = 69,

    /// <summary>CUBLAS_COMPUTE_32F_FAST_16F: float accumulation, may convert F32 inputs to half.</summary>
    COMPUTE_32F_FAST_16F = 74,

    /// <summary>CUBLAS_COMPUTE_32F_FAST_16BF: float accumulation, may convert F32 inputs to bfloat16.</summary>
    COMPUTE_32F_FAST_16BF = 75,

    /// <summary>CUBLAS_COMPUTE_32F_FAST_TF32: float accumulation, may convert F32 inputs to TF32.</summary>
    COMPUTE_32F_FAST_TF32 = 77,
}

/// <summary>cublasGemmAlgo_t values worth naming.</summary>
public enum CublasGemmAlgorithm
{
    /// <summary>CUBLAS_GEMM_DEFAULT: cuBLAS's heuristic.</summary>
    Default = -1,

    /// <summary>CUBLAS_GEMM_DEFAULT_TENSOR_OP (same as Default since CUDA 11).</summary>
    DefaultTensorOp = 99,
}

/// <summary>cublasMath_t.</summary>
public enum CublasMathMode
{
    /// <summary>CUBLAS_DEFAULT_MATH.</summary>
    Default = 0,

    /// <summary>CUBLAS_PEDANTIC_MATH: no reduced precision anywhere.</summary>
    Pedantic = 2,

    /// <summary>CUBLAS_TF32_TENSOR_OP_MATH: F32 GEMMs may use TF32 tensor cores.</summary>
    Tf32TensorOp = 3,

    /// <summary>CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION (a flag added to another mode).</summary>
    DisallowReducedPrecisionReduction = 16,
}
