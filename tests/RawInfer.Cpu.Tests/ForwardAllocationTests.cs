using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests;

/// <summary>
/// Steady-state decode allocates nothing on the managed heap: stories260K through CpuTransformer.Forward, with
/// the pool forced on (every product and attention step dispatched) and with the default threshold, for the
/// F32 checkpoint and its Q8_0 and F16 GGUF conversions (which exercise the prepared-input buffers).
/// </summary>
public sealed class ForwardAllocationTests
{
    [Theory]
    [InlineData(TensorType.F32, 2, true)]
    [InlineData(TensorType.F32, 1, false)]
    [InlineData(TensorType.F16, 2, true)]
    [InlineData(TensorType.Q8_0, 2, true)]
    [InlineData(TensorType.Q8_0, 2, false)]
    public void Steady_state_forward_allocates_nothing(TensorType dtype, int threads, bool forcePool)
    {
        var path = Path.Combine(Path.GetTempPath(), $"rawinfer-alloc-{Guid.NewGuid():N}.gguf");
        try
        {
            using var model = dtype == TensorType.F32
                ? Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"))
                : Convert(path, dtype);
            using var transformer = new CpuTransformer(model, threads);
            if (forcePool)
            {
                transformer.ParallelThreshold = 0;
            }

            var kv = transformer.CreateKvCache(64);

            // Warm-up: first calls grow buffers and compile code.
            for (var position = 0; position < 8; position++)
            {
                transformer.Forward((position * 37) % transformer.Config.VocabSize, position, kv);
            }

            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var position = 8; position < 40; position++)
            {
                transformer.Forward((position * 37) % transformer.Config.VocabSize, position, kv);
            }

            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static LoadedModel Convert(string path, TensorType dtype)
    {
        Llama2cToGguf.Convert(TestPaths.Model("stories260K.bin"), TestPaths.Model("tok512.bin"), path, dtype);
        return GgufLlamaLoader.Load(path);
    }
}
