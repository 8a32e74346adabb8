using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using ILGPU;
using ILGPU.Runtime;

namespace RawInfer.Gpu.ILGpu;

/// <summary>
/// The small transformer ops as ILGPU kernels (F32 data), compiled once for one <see cref="Accelerator"/> and
/// launched through typed methods. Every launch goes on the given stream (the accelerator's default stream when
/// none) and returns without waiting. Sizes are checked here, once per launch; the kernels trust them.
/// </summary>
public sealed partial class IlgpuKernels
{
    // Preferred group sizes; the accelerator may allow fewer threads (the test CPU device allows 64).
    private const int PreferredReductionGroup = 256;
    private const int PreferredAttentionGroup = 128;

    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>> _residualAdd;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> _swiGlu;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int> _embeddingGather;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int> _kvWrite;
    private readonly Action<AcceleratorStream, Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int> _rope;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> _rmsNorm;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<int>, ArrayView<float>, int> _argmax;
    private readonly Action<AcceleratorStream, KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, PagedAttentionShape> _pagedAttention;

    /// <summary>Compiles (or takes from ILGPU's cache) every kernel for <paramref name="accelerator"/>.</summary>
    public IlgpuKernels(Accelerator accelerator)
    {
        ArgumentNullException.ThrowIfNull(accelerator);
        Accelerator = accelerator;
        ReductionGroupSize = PickGroupSize(accelerator, PreferredReductionGroup);
        AttentionGroupSize = PickGroupSize(accelerator, PreferredAttentionGroup);

        _residualAdd = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>>(IlgpuKernelBodies.ResidualAdd);
        _swiGlu = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(IlgpuKernelBodies.SwiGlu);
        _embeddingGather = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, int>(IlgpuKernelBodies.EmbeddingGather);
        _kvWrite = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(IlgpuKernelBodies.KvWrite);
        _rope = accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(IlgpuKernelBodies.Rope);
        _rmsNorm = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(IlgpuKernelBodies.RmsNorm);
        _argmax = accelerator.LoadKernel<ArrayView<int>, ArrayView<float>, int>(IlgpuKernelBodies.Argmax);
        _pagedAttention = accelerator.LoadKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<int>, PagedAttentionShape>(IlgpuKernelBodies.PagedAttentionDecode);
    }

    /// <summary>The accelerator the kernels were compiled for.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>Threads per group of RMSNorm and argmax (a multiple of the warp size).</summary>
    public int ReductionGroupSize { get; }

    /// <summary>Threads per group of paged attention, which is also its tile of context tokens.</summary>
    public int AttentionGroupSize { get; }

    /// <summary>
    /// The kernel methods by name, for ahead-of-time compilation such as <see cref="IlgpuPtx"/>. A method whose
    /// first parameter is an index is implicitly grouped; the others are explicitly grouped.
    /// </summary>
    public static IReadOnlyList<(string Name, MethodInfo Method)> KernelMethods { get; } =
    [
        (nameof(IlgpuKernelBodies.ResidualAdd), Method(IlgpuKernelBodies.ResidualAdd)),
        (nameof(IlgpuKernelBodies.SwiGlu), Method(IlgpuKernelBodies.SwiGlu)),
        (nameof(IlgpuKernelBodies.EmbeddingGather), Method(IlgpuKernelBodies.EmbeddingGather)),
        (nameof(IlgpuKernelBodies.KvWrite), Method(IlgpuKernelBodies.KvWrite)),
        (nameof(IlgpuKernelBodies.Rope), Method(IlgpuKernelBodies.Rope)),
        (nameof(IlgpuKernelBodies.RmsNorm), Method(IlgpuKernelBodies.RmsNorm)),
        (nameof(IlgpuKernelBodies.Argmax), Method(IlgpuKernelBodies.Argmax)),
        (nameof(IlgpuKernelBodies.PagedAttentionDecode), Method(IlgpuKernelBodies.PagedAttentionDecode)),
    ];

    /// <summary>1 / theta^(2i/headDim) for i in [0, headDim/2), computed exactly as the CPU backend does.</summary>
    public static float[] RopeInverseFrequencies(int headDim, float theta)
    {
        if (headDim <= 0 || headDim % 2 != 0)
        {
            ThrowArgument(nameof(headDim), $"headDim must be positive and even, got {headDim}");
        }

        var frequencies = new float[headDim / 2];
        for (var i = 0; i < frequencies.Length; i++)
        {
            frequencies[i] = 1f / MathF.Pow(theta, 2 * i / (float)headDim);
        }

        return frequencies;
    }

    private static MethodInfo Method(Delegate kernel) => kernel.Method;

    private static int PickGroupSize(Accelerator accelerator, int preferred)
    {
        var warp = accelerator.WarpSize;
        var size = Math.Min(preferred, accelerator.MaxNumThreadsPerGroup) / warp * warp;
        Debug.Assert(size / warp <= IlgpuKernelBodies.MaxWarpsPerGroup);
        return Math.Max(size, warp);
    }

    private AcceleratorStream StreamOrDefault(AcceleratorStream? stream) => stream ?? Accelerator.DefaultStream;

    private static void RequireLength<T>(ArrayView<T> view, long needed, string name)
        where T : unmanaged
    {
        if (view.Length < needed)
        {
            ThrowArgument(name, $"{name} holds {view.Length} elements, the launch needs {needed}");
        }
    }

    private static int FlatCount(long count, string what)
    {
        if (count < 0 || count > int.MaxValue)
        {
            ThrowArgument(what, $"{what} = {count} is outside [0, 2^31): the kernels index with 32-bit ints");
        }

        return (int)count;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowArgument(string name, string message) => throw new ArgumentException(message, name);
}
