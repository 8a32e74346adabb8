using RawInfer.Cpu;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Gpu.Runner;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Tests;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// A model whose Q8_0 matrices the CPU backend rewrote in place, or whose F16 halves it scaled in place
/// (<see cref="CpuWeightLayout"/>), is refused by the
/// CUDA runner with a message saying so, before any device is touched (this runs without a GPU): uploading those
/// bytes as the file's layout would compute garbage.
/// </summary>
public sealed class RewrittenWeightsTests
{
    [Fact]
    public void The_CUDA_runner_refuses_weights_rewritten_for_the_CPU()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        var path = Path.Combine(Path.GetTempPath(), $"rawinfer-rewritten-{Guid.NewGuid():N}.gguf");
        try
        {
            Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), path, TensorType.Q8_0);
            using var model = GgufLlamaLoader.Load(path);
            Assert.True(CpuWeightLayout.TryRewriteInPlace(model, out var reason), reason);
            var e = Assert.Throws<ArgumentException>(() => new CudaModelRunner(model));
            Assert.Contains("rewritten in place into the CPU backend's interleaved Q8_0 layout", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void The_CUDA_runner_refuses_halves_scaled_for_the_CPU()
    {
        Assert.SkipUnless(WidenInRegisters.Supports(TensorType.F16, 64), "no AVX-512 F16 kernels here: no halves scaled");
        var path = Path.Combine(Path.GetTempPath(), $"rawinfer-scaled-{Guid.NewGuid():N}.gguf");
        try
        {
            Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), path, TensorType.F16);
            using var model = GgufLlamaLoader.Load(path);
            Assert.True(CpuWeightLayout.TryRewriteInPlace(model, out var reason), reason);
            Assert.True(model.Weights.Layers[0].Wq.HalvesScaled);
            var e = Assert.Throws<ArgumentException>(() => new CudaModelRunner(model));
            Assert.Contains("its F16 halves were scaled in place for the CPU backend", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
