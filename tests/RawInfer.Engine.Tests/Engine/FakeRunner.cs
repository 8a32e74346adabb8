using RawInfer.Engine.Runner;
using RawInfer.Models;

namespace RawInfer.Engine.Tests.Engine;

/// <summary>
/// A deterministic stand-in for a model: each row's "K/V" is its token id, written to its slot; a sequence's logits
/// are a hash of the context it reads back through its block table. A wrong slot mapping, block table or a prefix
/// hit on K/V that was never computed changes the history read back, and so the output; the same history always
/// gives the same logits, whatever the batch.
/// </summary>
internal sealed class FakeRunner : IModelRunner
{
    private readonly object _gate = new();
    private int[] _slots = [];
    private int _blockSize;

    public FakeRunner(int vocabSize = 64, int maxSeqLen = 256)
    {
        Config = new ModelConfig(8, 16, 1, 1, 1, vocabSize, maxSeqLen, SharedClassifier: true);
    }

    public ModelConfig Config { get; }

    public long KvBytesPerToken => 8;

    /// <summary>Called on the engine thread before each forward pass (tests block or observe here).</summary>
    public Action<ForwardBatch>? BeforeExecute { get; set; }

    /// <summary>Record <see cref="SeenTokens"/> (off when a test counts the engine thread's allocations).</summary>
    public bool RecordSeenTokens { get; set; } = true;

    /// <summary>Every token id that reached the model.</summary>
    public HashSet<int> SeenTokens { get; } = [];

    public int Executions { get; private set; }

    public int MaxSequencesInBatch { get; private set; }

    public int MaxTokensInBatch { get; private set; }

    /// <summary>Steps that mixed a decode row with a prefill chunk.</summary>
    public int MixedSteps { get; private set; }

    public int NumBlocks { get; private set; }

    public void AllocateKvCache(int numBlocks, int blockSize)
    {
        NumBlocks = numBlocks;
        _blockSize = blockSize;
        _slots = new int[numBlocks * blockSize];
        Array.Fill(_slots, -1);
    }

    /// <summary>Calls of <see cref="PrefaultKvCache"/>.</summary>
    public int Prefaults { get; private set; }

    /// <summary>Forward passes run before the last <see cref="PrefaultKvCache"/>, and the thread it ran on.</summary>
    public (int Executions, string? Thread) AtPrefault { get; private set; }

    public void PrefaultKvCache()
    {
        Prefaults++;
        AtPrefault = (Executions, Thread.CurrentThread.Name);
    }

    public void CopyBlock(int source, int destination) =>
        _slots.AsSpan(source * _blockSize, _blockSize).CopyTo(_slots.AsSpan(destination * _blockSize, _blockSize));

    public void Execute(ForwardBatch batch, Span<float> logits)
    {
        BeforeExecute?.Invoke(batch);
        lock (_gate)
        {
            Executions++;
            MaxSequencesInBatch = Math.Max(MaxSequencesInBatch, batch.NumSequences);
            MaxTokensInBatch = Math.Max(MaxTokensInBatch, batch.NumTokens);
            for (var r = 0; r < batch.NumTokens && RecordSeenTokens; r++)
            {
                SeenTokens.Add(batch.TokenIds[r]);
            }
        }

        bool hasDecode = false, hasPrefill = false;
        var logitIndex = 0;
        for (var s = 0; s < batch.NumSequences; s++)
        {
            var first = batch.QueryStart[s];
            var end = batch.QueryStart[s + 1];
            hasDecode |= end - first == 1 && batch.Positions[first] > 0;
            hasPrefill |= end - first > 1;
            for (var r = first; r < end; r++)
            {
                _slots[batch.SlotMapping[r]] = batch.TokenIds[r];
            }

            if (logitIndex < batch.NumLogitRows && batch.LogitRows[logitIndex] == end - 1)
            {
                var table = batch.BlockTable(s);
                var hash = 1469598103934665603UL;
                for (var p = 0; p < batch.ContextLengths[s]; p++)
                {
                    hash = Mix(hash, _slots[(table[p / _blockSize] * _blockSize) + (p % _blockSize)]);
                }

                FillLogits(hash, logits.Slice(logitIndex * Config.VocabSize, Config.VocabSize));
                logitIndex++;
            }
        }

        MixedSteps += hasDecode && hasPrefill ? 1 : 0;
    }

    /// <summary>The logits the fake model gives after <paramref name="history"/> (the reference, without the engine).</summary>
    public static void ReferenceLogits(ReadOnlySpan<int> history, Span<float> logits)
    {
        var hash = 1469598103934665603UL;
        foreach (var token in history)
        {
            hash = Mix(hash, token);
        }

        FillLogits(hash, logits);
    }

    public void Dispose()
    {
    }

    private static ulong Mix(ulong hash, int token) => (hash ^ (uint)(token + 7)) * 1099511628211UL;

    private static void FillLogits(ulong hash, Span<float> logits)
    {
        for (var v = 0; v < logits.Length; v++)
        {
            var x = (hash + ((ulong)v * 0x9E3779B97F4A7C15UL)) ^ (hash >> 29);
            x *= 0xBF58476D1CE4E5B9UL;
            x ^= x >> 31;
            logits[v] = ((x >> 40) / (float)(1 << 24) * 8f) - 4f;
        }
    }
}
