using ILGPU.Runtime.Cuda;
using RawInfer.Gpu.ILGpu;
using Xunit;

namespace RawInfer.Gpu.Tests.ILGpu;

/// <summary>
/// ILGPU turns every kernel into PTX for the H100 (sm_90) with no GPU or driver present. ILGPU 1.5.3 writes
/// `.target sm_80` for every architecture from sm_80 up (checked for sm_86, sm_89, sm_90, sm_120), which the
/// driver JIT-compiles for sm_90; so the test accepts a target between sm_80 and sm_90.
/// </summary>
public sealed class IlgpuPtxTests
{
    [Fact]
    public void Every_kernel_compiles_to_ptx_for_sm_90()
    {
        var kernels = IlgpuKernels.KernelMethods;
        var methods = new System.Reflection.MethodInfo[kernels.Count];
        for (var i = 0; i < kernels.Count; i++)
        {
            methods[i] = kernels[i].Method;
        }

        var ptx = IlgpuPtx.Compile(methods, CudaArchitecture.SM_90, IlgpuPtx.DefaultInstructionSet);

        Assert.Equal(kernels.Count, ptx.Count);
        for (var i = 0; i < kernels.Count; i++)
        {
            Assert.Contains(".version 7.8", ptx[i], StringComparison.Ordinal);
            Assert.InRange(TargetArchitecture(ptx[i]), 80, 90);
            Assert.Contains($".visible .entry Kernel_{kernels[i].Name}(", ptx[i], StringComparison.Ordinal);

            // a math call ILGPU cannot lower becomes an undefined external function that only fails at JIT time
            Assert.DoesNotContain(".extern .func", ptx[i], StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Barrier_kernels_emit_barriers_and_shuffles()
    {
        var rmsNorm = IlgpuPtx.Compile(Find("RmsNorm"), CudaArchitecture.SM_90);
        Assert.Contains("bar.sync", rmsNorm, StringComparison.Ordinal);
        Assert.Contains("shfl.sync.down", rmsNorm, StringComparison.Ordinal);

        var attention = IlgpuPtx.Compile(Find("PagedAttentionDecode"), CudaArchitecture.SM_90);
        Assert.Contains("bar.sync", attention, StringComparison.Ordinal);
        Assert.Contains(".shared", attention, StringComparison.Ordinal);
    }

    /// <summary>The number of the PTX module's `.target sm_NN` line.</summary>
    private static int TargetArchitecture(string ptx)
    {
        const string prefix = ".target sm_";
        var start = ptx.IndexOf(prefix, StringComparison.Ordinal);
        Assert.True(start >= 0, "no .target line in the PTX");
        start += prefix.Length;
        var end = start;
        while (end < ptx.Length && char.IsAsciiDigit(ptx[end]))
        {
            end++;
        }

        return int.Parse(ptx.AsSpan(start, end - start), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static System.Reflection.MethodInfo Find(string name)
    {
        foreach (var (kernelName, method) in IlgpuKernels.KernelMethods)
        {
            if (kernelName == name)
            {
                return method;
            }
        }

        throw new InvalidOperationException($"no kernel named {name}");
    }
}
