namespace RawInfer.Gpu.Runner;

/// <summary>
/// Storage type of the weight matrices, the KV cache and every GEMM input on the device. Activations between
/// kernels stay float32; accumulation is always float32.
/// </summary>
public enum GpuElementType
{
    /// <summary>IEEE half precision (5-bit exponent): the better mantissa, overflows past 65,504.</summary>
    F16,

    /// <summary>bfloat16 (8-bit exponent, 7-bit mantissa): float32's range, coarser values.</summary>
    BF16,
}

/// <summary>Facts about a <see cref="GpuElementType"/>.</summary>
public static class GpuElementTypes
{
    /// <summary>Bytes per element (both types are 16-bit).</summary>
    public const int ElementBytes = sizeof(ushort);

    /// <summary>The kernel-name suffix of the type ("f16" or "bf16").</summary>
    public static string KernelSuffix(this GpuElementType type) => type == GpuElementType.BF16 ? "bf16" : "f16";

    /// <summary>
    /// The device type chosen for a model whose matrices are stored as <paramref name="stored"/>: BF16 stays
    /// BF16 (converting it to F16 could overflow), everything else (F32, F16, Q8_0) becomes F16.
    /// </summary>
    public static GpuElementType DefaultFor(Models.TensorType stored) =>
        stored == Models.TensorType.BF16 ? GpuElementType.BF16 : GpuElementType.F16;
}
