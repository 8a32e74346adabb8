using RawInfer.Gpu.ILGpu;
using RawInfer.Native;
using Xunit;

namespace RawInfer.Gpu.Tests.ILGpu;

/// <summary>An ILGPU CUDA accelerator on device 0 when one opens; otherwise the one-line reason.</summary>
public sealed class IlgpuCudaFixture : IDisposable
{
    public IlgpuCudaFixture()
    {
        if (IlgpuContextFactory.TryCreateCuda(0, out var device, out var reason))
        {
            Device = device;
            Kernels = new IlgpuKernels(device.Accelerator);
        }
        else
        {
            Reason = reason;
        }
    }

    public IlgpuDevice? Device { get; }

    public IlgpuKernels? Kernels { get; }

    public string? Reason { get; }

    public void Dispose() => Device?.Dispose();
}

/// <summary>The CUDA side of the ILGPU route: a clean refusal without a driver, the kernels on a real GPU.</summary>
public sealed class IlgpuCudaTests(IlgpuCudaFixture fixture) : IClassFixture<IlgpuCudaFixture>
{
    // The GPU's exp/sin/cos are approximate instructions; 20x the CPU accelerator's tolerances.
    private const double GpuToleranceScale = 20;

    [Fact]
    public void Cuda_context_without_driver_reports_no_cuda_device()
    {
        if (NativeLibraryResolver.TryLoad(NativeLibraryKind.CudaDriver, out _, out _))
        {
            Assert.Skip("a CUDA driver is present on this machine; the no-driver path cannot be exercised");
        }

        var created = IlgpuContextFactory.TryCreateCuda(0, out var device, out var reason);

        Assert.False(created);
        Assert.Null(device);
        Assert.NotNull(reason);
        Assert.StartsWith("no CUDA device", reason, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', reason);
    }

    [Fact]
    public void Elementwise_kernels_match_reference_on_cuda()
    {
        var checks = Checks();
        checks.ResidualAdd(100_003, seed: 1);
        checks.SwiGlu(100_003, seed: 2);
        checks.EmbeddingGather(37, 32_000, 288, seed: 3);
        checks.KvWrite(64, 16, 1024, 301, seed: 4);
        checks.Rope(33, 32, 8, 128, 8192, seed: 5);
    }

    [Fact]
    public void Reduction_kernels_match_reference_on_cuda()
    {
        var checks = Checks();
        checks.RmsNorm(33, 4096, seed: 6);
        checks.RmsNormInPlace(5, 2049, seed: 7);
        checks.Argmax(9, 32_000, seed: 8);
    }

    [Fact]
    public void PagedAttention_matches_reference_on_cuda()
    {
        var checks = Checks();
        checks.PagedAttentionDecode([1, 17, 300, 1025], heads: 32, kvHeads: 8, headDim: 128, blockSize: 16, seed: 9);
        checks.PagedAttentionDecode([129], heads: 6, kvHeads: 6, headDim: 48, blockSize: 32, seed: 10);
    }

    private IlgpuKernelChecks Checks()
    {
        if (fixture.Kernels is null)
        {
            Assert.Skip(fixture.Reason ?? "no CUDA device");
        }

        return new IlgpuKernelChecks(fixture.Kernels, GpuToleranceScale);
    }
}
