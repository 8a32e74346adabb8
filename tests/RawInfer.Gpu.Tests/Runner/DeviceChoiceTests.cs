using RawInfer.Gpu.Device;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

public sealed class DeviceChoiceTests
{
    [Theory]
    [InlineData("cpu", DeviceChoice.Cpu)]
    [InlineData("CUDA", DeviceChoice.Cuda)]
    [InlineData(" auto ", DeviceChoice.Auto)]
    public void NamesParse(string text, DeviceChoice expected)
    {
        Assert.Equal(expected, DeviceChoices.Parse(text));
        Assert.Equal(text.Trim().ToLowerInvariant(), expected.ToName());
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("")]
    [InlineData(null)]
    [InlineData("cuda:0")]
    public void UnknownNamesAreRefusedWithTheChoices(string? text)
    {
        Assert.False(DeviceChoices.TryParse(text, out _));
        var e = Assert.Throws<FormatException>(() => DeviceChoices.Parse(text));
        Assert.Contains("cpu, cuda, auto", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CpuNeverProbes()
    {
        var selection = CudaDeviceSelector.Select(DeviceChoice.Cpu, () => throw new InvalidOperationException("probed"));
        Assert.False(selection.UseCuda);
        Assert.Null(selection.Notice);
    }

    [Theory]
    [InlineData(DeviceChoice.Auto)]
    [InlineData(DeviceChoice.Cuda)]
    public void APresentDeviceIsUsed(DeviceChoice choice)
    {
        var selection = CudaDeviceSelector.Select(choice, () => new CudaProbeResult(2, null));
        Assert.True(selection.UseCuda);
        Assert.Equal(0, selection.Ordinal);
        Assert.Null(selection.Notice);
    }

    [Fact]
    public void AutoWithoutADriverFallsBackWithOneLine()
    {
        var selection = CudaDeviceSelector.Select(DeviceChoice.Auto, () => new CudaProbeResult(0, "no CUDA driver (libcuda.so.1 not found)"));
        Assert.False(selection.UseCuda);
        Assert.Equal("no CUDA driver (libcuda.so.1 not found): using the CPU backend", selection.Notice);
    }

    [Fact]
    public void AutoWithADriverButNoDeviceSaysSo()
    {
        var selection = CudaDeviceSelector.Select(DeviceChoice.Auto, () => new CudaProbeResult(0, null));
        Assert.False(selection.UseCuda);
        Assert.Equal("the CUDA driver reports no device: using the CPU backend", selection.Notice);
    }

    [Fact]
    public void CudaWithoutADriverIsAnErrorNamingTheReason()
    {
        var e = Assert.Throws<CudaUnavailableException>(
            () => CudaDeviceSelector.Select(DeviceChoice.Cuda, () => new CudaProbeResult(0, "no CUDA driver (libcuda.so.1 not found)")));
        Assert.Equal("--device cuda: no CUDA driver (libcuda.so.1 not found)", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }
}

/// <summary>The real driver probe on whatever machine runs the tests.</summary>
public sealed class DeviceProbeTests
{
    [Fact]
    public void AutoOnAMachineWithoutCudaFallsBackToTheCpuWithOneLine()
    {
        var probe = CudaDeviceSelector.ProbeDriver();
        if (probe.DeviceCount > 0)
        {
            Assert.Skip("a CUDA device is present: the fallback cannot be observed here");
        }

        Assert.NotNull(probe.Problem);
        var selection = CudaDeviceSelector.Select(DeviceChoice.Auto);
        Assert.False(selection.UseCuda);
        Assert.EndsWith(": using the CPU backend", selection.Notice, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', selection.Notice!);
    }

    [Fact]
    public void CudaOnAMachineWithoutCudaIsAClearError()
    {
        if (CudaDeviceSelector.ProbeDriver().DeviceCount > 0)
        {
            Assert.Skip("a CUDA device is present");
        }

        var e = Assert.Throws<CudaUnavailableException>(() => CudaDeviceSelector.Select(DeviceChoice.Cuda));
        Assert.StartsWith("--device cuda: ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void ADevicePresentIsSelectedByAuto()
    {
        if (CudaDeviceSelector.ProbeDriver().DeviceCount == 0)
        {
            Assert.Skip("no CUDA device");
        }

        Assert.True(CudaDeviceSelector.Select(DeviceChoice.Auto).UseCuda);
    }
}
