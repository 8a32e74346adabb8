using RawInfer.Gpu.ILGpu;
using Xunit;

namespace RawInfer.Gpu.Tests.ILGpu;

/// <summary>One ILGPU CPU accelerator with the kernels compiled once, shared by the CPU kernel tests.</summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    public IlgpuCpuFixture()
    {
        Device = IlgpuContextFactory.CreateCpu();
        Kernels = new IlgpuKernels(Device.Accelerator);
    }

    public IlgpuDevice Device { get; }

    public IlgpuKernels Kernels { get; }

    public void Dispose() => Device.Dispose();
}

/// <summary>Tests on the CPU accelerator run one at a time: each launch already uses every core.</summary>
[CollectionDefinition(Name)]
public sealed class IlgpuCpuCollection : ICollectionFixture<IlgpuCpuFixture>
{
    public const string Name = "ILGPU CPU accelerator";
}
