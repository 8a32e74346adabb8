using RawInfer.Cpu.Runner;
using RawInfer.Cpu.Threading;
using RawInfer.Engine.Runner;
using RawInfer.Cpu.Tests.Gguf;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>The runner checks a batch once at its edge and names the bad field; a good batch still runs after.</summary>
[Collection(KernelSwitches.Name)] // counts a step's allocations
public class RunnerValidationTests
{
    [Fact]
    public void Execute_before_the_KV_cache_exists_is_refused()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var runner = new CpuModelRunner(model, 1);
        var batch = OneRow(runner);
        Assert.Throws<InvalidOperationException>(() => runner.Execute(batch, new float[512]));
        runner.AllocateKvCache(4, 16);
        Assert.Throws<InvalidOperationException>(() => runner.AllocateKvCache(4, 16));
        Assert.Equal(model.Config.KvBytesPerToken(), runner.KvBytesPerToken);
    }

    [Fact]
    public void A_KV_cache_larger_than_the_memory_left_is_refused_before_anything_is_allocated()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var runner = new CpuModelRunner(model, 1);
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        Assert.True(available > 0, "the runtime reports no memory limit");
        var blockBytes = 16 * runner.KvBytesPerToken;
        var blocks = checked((int)(available / blockBytes) + 1); // one block more than all of the memory
        var before = GC.GetAllocatedBytesForCurrentThread(); // this thread's own: tests running beside it allocate too
        var e = Assert.Throws<InsufficientMemoryException>(() => runner.AllocateKvCache(blocks, 16));
        Assert.Contains($"a KV cache of {blocks} blocks × 16 tokens (f32) takes {(long)blocks * blockBytes >> 20} MiB", e.Message, StringComparison.Ordinal);
        Assert.Null(runner.Storage);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the refused pool was allocated");

        runner.AllocateKvCache(4, 16); // nothing was lost: a pool that fits is taken after
        Assert.NotNull(runner.Storage);
    }

    [Theory]
    [InlineData(KvCacheType.F32)]
    [InlineData(KvCacheType.F16)]
    public void A_KV_cache_past_one_array_per_layer_is_refused_with_the_most_it_holds(KvCacheType type)
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var runner = new CpuModelRunner(model, 1, type);
        var most = PagedKvStorage.MaxBlocks(16, model.Config.KvDim);
        Assert.Equal((Array.MaxLength - 32) / (16 * model.Config.KvDim), most); // 32 elements kept to put each slab on a cache line
        var before = GC.GetAllocatedBytesForCurrentThread(); // this thread's own: tests running beside it allocate too
        var e = Assert.Throws<NotSupportedException>(() => runner.AllocateKvCache(most + 1, 16));
        var mib = PagedKvStorage.BytesFor(model.Config.NumLayers, most, 16, model.Config.KvDim, type) >> 20;
        Assert.Contains($"a KV cache of {most + 1} blocks × 16 tokens is more than the CPU backend holds for this model: at most {most} blocks ({mib} MiB)", e.Message, StringComparison.Ordinal);
        Assert.Contains("lower the KV-cache budget", e.Message, StringComparison.Ordinal);
        Assert.Null(runner.Storage);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1 << 20, "the refused pool was allocated");

        runner.AllocateKvCache(4, 16); // nothing was lost: a pool that fits is taken after
        Assert.NotNull(runner.Storage);
    }

    [Theory]
    [InlineData("TokenIds")]
    [InlineData("Positions")]
    [InlineData("SlotMapping")]
    [InlineData("BlockTables")]
    [InlineData("LogitRows")]
    [InlineData("QueryStart")]
    [InlineData("logits")]
    public void A_bad_batch_names_its_field(string field)
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var runner = new CpuModelRunner(model, 1);
        runner.AllocateKvCache(4, 16);
        var logits = new float[512];
        var batch = OneRow(runner);
        runner.Execute(batch, logits); // the good batch runs

        switch (field)
        {
            case "TokenIds": batch.TokenIds[0] = 512; break;
            case "Positions": batch.Positions[0] = 1; break; // beyond the context length of 1
            case "SlotMapping": batch.SlotMapping[0] = 64; break;
            case "BlockTables": batch.BlockTable(0)[0] = 4; break;
            case "LogitRows": batch.LogitRows[0] = 1; break;
            case "QueryStart": batch.QueryStart[1] = 2; break;
            default: logits = new float[511]; break;
        }

        var error = Assert.ThrowsAny<ArgumentException>(() => runner.Execute(batch, logits));
        Assert.Contains(field, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1, KvCacheType.F32, TensorType.F32, false)]
    [InlineData(2, KvCacheType.F32, TensorType.F32, false)]
    [InlineData(2, KvCacheType.F16, TensorType.F32, false)]
    [InlineData(2, KvCacheType.BF16, TensorType.F32, false)]
    [InlineData(1, KvCacheType.F32, TensorType.Q8_0, false)] // Q8_0 GGUF: the integer GEMM's per-thread scratch, on this thread
    [InlineData(1, KvCacheType.F32, TensorType.Q8_0, true)] // rows interleaved (and the F16 down projection's halves scaled) in place
    [InlineData(1, KvCacheType.F32, TensorType.F16, true)] // halves scaled in place: the inputs' per-thread scratch
    public void A_step_allocates_nothing_once_warm(int threads, KvCacheType kvCacheType, TensorType dtype, bool rewriteInPlace)
    {
        using var gguf = dtype == TensorType.F32 ? null : new ConvertedStories260K(dtype);
        using var model = gguf is null ? Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin")) : GgufLlamaLoader.Load(gguf.Path);
        if (rewriteInPlace)
        {
            Assert.SkipUnless(CpuWeightLayout.TryRewriteInPlace(model, out var reason), $"no rewrite in place here: {reason}");
        }

        using var runner = new CpuModelRunner(model, threads, kvCacheType) { ParallelThreshold = 0 };
        runner.AllocateKvCache(4, 16);
        var logits = new float[512];
        var batch = OneRow(runner);
        for (var i = 0; i < 50; i++)
        {
            runner.Execute(batch, logits); // sizes the buffers, then lets the JIT settle
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 20; i++)
        {
            runner.Execute(batch, logits);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void A_step_allocates_nothing_when_stealing_is_first_switched_on_after_the_warm_up()
    {
        // The CI failure this pins: a warm-up with ShareTails off never sized the stealing cursors, and the first
        // step with it on grew them (152 bytes) inside the counting window.
        var enabledBefore = ShareTails.Enabled;
        try
        {
            using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
            using var runner = new CpuModelRunner(model, 2) { ParallelThreshold = 0 };
            runner.AllocateKvCache(4, 16);
            var logits = new float[512];
            var batch = OneRow(runner);
            ShareTails.Enabled = false;
            for (var i = 0; i < 50; i++)
            {
                runner.Execute(batch, logits);
            }

            ShareTails.Enabled = true;
            var before = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < 20; i++)
            {
                runner.Execute(batch, logits);
            }

            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        finally
        {
            ShareTails.Enabled = enabledBefore;
        }
    }

    /// <summary>One sequence, one token (BOS) at position 0 in slot 0 of block 0.</summary>
    private static ForwardBatch OneRow(CpuModelRunner runner)
    {
        var batch = new ForwardBatch(maxTokens: 4, maxSequences: 2, maxBlocksPerSequence: 2);
        batch.TokenIds[0] = 1;
        batch.QueryStart[1] = 1;
        batch.ContextLengths[0] = 1;
        batch.NumTokens = 1;
        batch.NumSequences = 1;
        batch.NumLogitRows = 1;
        Assert.Equal(512, runner.Config.VocabSize);
        return batch;
    }
}
