using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests;

/// <summary>
/// Steady-state decode allocates nothing on the managed heap: stories260K through CpuTransformer.Forward, with
/// the pool forced on (every product and attention step dispatched) and with the default threshold, for the
/// F32 checkpoint and its Q8_0 and F16 GGUF conversions (which exercise the prepared-input buffers), those also
/// rewritten in place into the CPU layout (<see cref="CpuWeightLayout.TryRewriteInPlace"/>) where this machine has it.
/// </summary>
[Collection(KernelSwitches.Name)] // counts a step's allocations
public sealed class ForwardAllocationTests
{
    [Theory]
    [InlineData(TensorType.F32, 2, true, false)]
    [InlineData(TensorType.F32, 1, false, false)]
    [InlineData(TensorType.F16, 2, true, false)]
    [InlineData(TensorType.F16, 2, true, true)] // halves scaled in place: inputs scaled into a per-thread scratch
    [InlineData(TensorType.Q8_0, 2, true, false)]
    [InlineData(TensorType.Q8_0, 2, false, false)]
    [InlineData(TensorType.Q8_0, 2, true, true)] // rows interleaved in place
    public void Steady_state_forward_allocates_nothing(TensorType dtype, int threads, bool forcePool, bool rewriteInPlace)
    {
        var path = Path.Combine(Path.GetTempPath(), $"rawinfer-alloc-{Guid.NewGuid():N}.gguf");
        try
        {
            using var model = dtype == TensorType.F32
                ? Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"))
                : Convert(path, dtype);
            if (rewriteInPlace)
            {
                Assert.SkipUnless(CpuWeightLayout.TryRewriteInPlace(model, out var reason), $"no rewrite in place here: {reason}");
            }

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

            // Steady state: a window of 16 steps that allocates nothing. A one-time event on this thread (a lazily
            // initialised runtime structure the first time this thread, rather than a worker, claims some chunk)
            // is not a per-step allocation, so up to three windows are measured; an allocation in every step
            // shows in all three and fails.
            var windows = new List<long>();
            for (var start = 8; start < 56 && (windows.Count == 0 || windows[^1] != 0); start += 16)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var position = start; position < start + 16; position++)
                {
                    transformer.Forward((position * 37) % transformer.Config.VocabSize, position, kv);
                }

                windows.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            }

            Assert.True(windows[^1] == 0, $"bytes allocated per 16-step window: {string.Join(", ", windows)}");
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
