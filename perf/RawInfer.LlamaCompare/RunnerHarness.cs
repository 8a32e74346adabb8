using RawInfer.Cpu.Runner;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.LlamaCompare;

/// <summary>
/// A <see cref="CpuModelRunner"/> with its KV cache, a <see cref="BlockManager"/> and one reusable
/// <see cref="ForwardBatch"/>: the parts of an engine step that build the batch, without scheduling or sampling.
/// </summary>
internal sealed class RunnerHarness : IDisposable
{
    private readonly ModelConfig _config;

    /// <param name="model">The loaded model (outlives the harness).</param>
    /// <param name="threads">Runner threads.</param>
    /// <param name="maxTokens">Rows of the largest batch.</param>
    /// <param name="maxSequences">Sequences of the largest batch.</param>
    /// <param name="contextTokens">Tokens each sequence reaches.</param>
    public RunnerHarness(LoadedModel model, int threads, int maxTokens, int maxSequences, int contextTokens)
    {
        _config = model.Config;
        var blocksPerSequence = (contextTokens + BlockManager.DefaultBlockSize - 1) / BlockManager.DefaultBlockSize;
        var numBlocks = blocksPerSequence * maxSequences;
        Runner = new CpuModelRunner(model, threads);
        Runner.AllocateKvCache(numBlocks, BlockManager.DefaultBlockSize);
        Blocks = new BlockManager(numBlocks, BlockManager.DefaultBlockSize);
        Batch = new ForwardBatch(maxTokens, maxSequences, blocksPerSequence);
        Logits = new float[(long)maxSequences * _config.VocabSize];
    }

    public CpuModelRunner Runner { get; }

    public BlockManager Blocks { get; }

    public ForwardBatch Batch { get; }

    /// <summary>(maxSequences, vocab) logits of the last step's logit rows.</summary>
    public float[] Logits { get; }

    /// <summary>Appends sequence <paramref name="id"/>'s rows for positions start .. start + tokens.Length - 1.</summary>
    public void AddRows(long id, ReadOnlySpan<int> tokens, int start, bool wantLogits)
    {
        var batch = Batch;
        var s = batch.NumSequences;
        var row = batch.NumTokens;
        for (var i = 0; i < tokens.Length; i++)
        {
            batch.TokenIds[row + i] = tokens[i];
            batch.Positions[row + i] = start + i;
        }

        Blocks.WriteSlotMapping(id, start, batch.SlotMapping.AsSpan(row, tokens.Length));
        Blocks.BlockTable(id).CopyTo(batch.BlockTable(s));
        batch.ContextLengths[s] = start + tokens.Length;
        batch.NumTokens = row + tokens.Length;
        batch.NumSequences = s + 1;
        batch.QueryStart[s + 1] = batch.NumTokens;
        if (wantLogits)
        {
            batch.LogitRows[batch.NumLogitRows++] = batch.NumTokens - 1;
        }
    }

    public void Execute() => Runner.Execute(Batch, Logits.AsSpan(0, Batch.NumLogitRows * _config.VocabSize));

    public void Dispose() => Runner.Dispose();
}
