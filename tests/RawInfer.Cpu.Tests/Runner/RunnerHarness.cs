using RawInfer.Cpu.Runner;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// A miniature engine for runner tests: the real <see cref="BlockManager"/> allocates and appends, batches are
/// built from its block tables and slot mappings, and the logits of every row are kept by (sequence, position).
/// Token streams are fixed in advance (teacher forcing), so a schedule decides only which rows run in which step.
/// </summary>
internal sealed class RunnerHarness
{
    private readonly CpuModelRunner _runner;
    private readonly ForwardBatch _batch;
    private readonly float[] _logits;
    private readonly Dictionary<long, Sequence> _sequences = [];

    public RunnerHarness(CpuModelRunner runner, int numBlocks, int blockSize, int maxTokens)
    {
        _runner = runner;
        Blocks = new BlockManager(numBlocks, blockSize);
        runner.AllocateKvCache(numBlocks, blockSize);

        // every row may ask for logits, so the batch allows as many logit rows as tokens
        var maxBlocksPerSequence = (runner.Config.MaxSeqLen + blockSize - 1) / blockSize;
        _batch = new ForwardBatch(maxTokens, maxTokens, maxBlocksPerSequence);
        _logits = new float[maxTokens * runner.Config.VocabSize];
    }

    public BlockManager Blocks { get; }

    /// <summary>Logits of each computed row, keyed by (sequence id, position).</summary>
    public Dictionary<(long Id, int Position), float[]> Logits { get; } = [];

    /// <summary>Allocates a sequence whose first <paramref name="promptLength"/> tokens are its prompt.</summary>
    /// <returns>Prompt tokens served from the prefix cache (not computed again).</returns>
    public int Start(long id, int[] tokens, int promptLength)
    {
        var cached = Blocks.Allocate(id, tokens.AsSpan(0, promptLength));
        _sequences[id] = new Sequence(tokens, promptLength, cached);
        return cached;
    }

    /// <summary>Starts <paramref name="child"/> as a fork of <paramref name="parent"/>, continuing with its own tokens.</summary>
    public void Fork(long parent, long child, int[] childTokens)
    {
        var p = _sequences[parent];
        Assert.True(childTokens.AsSpan(0, p.Computed).SequenceEqual(p.Tokens.AsSpan(0, p.Computed)));
        Blocks.Fork(parent, child);
        _sequences[child] = new Sequence(childTokens, p.Computed, p.Computed);
    }

    /// <summary>Tokens of the sequence computed so far.</summary>
    public int Computed(long id) => _sequences[id].Computed;

    /// <summary>One engine step: each entry runs the next <c>Count</c> tokens of sequence <c>Id</c>.</summary>
    public void Step(params (long Id, int Count)[] work)
    {
        var batch = _batch;
        batch.Clear();
        var row = 0;
        for (var s = 0; s < work.Length; s++)
        {
            var (id, count) = work[s];
            var sequence = _sequences[id];
            var start = sequence.Computed;

            // tokens past the prompt are appended as a decode loop would, copying a shared tail block first
            var appendFrom = Math.Max(start, sequence.PromptLength);
            if (start + count > appendFrom)
            {
                var copy = Blocks.Append(id, sequence.Tokens.AsSpan(appendFrom, start + count - appendFrom));
                if (copy.IsNeeded)
                {
                    _runner.CopyBlock(copy.Source, copy.Destination);
                }
            }

            for (var i = 0; i < count; i++)
            {
                batch.TokenIds[row + i] = sequence.Tokens[start + i];
                batch.Positions[row + i] = start + i;
                batch.LogitRows[row + i] = row + i;
            }

            Blocks.WriteSlotMapping(id, start, batch.SlotMapping.AsSpan(row, count));
            var table = Blocks.BlockTable(id);
            table.CopyTo(batch.BlockTable(s));
            batch.ContextLengths[s] = start + count;
            row += count;
            batch.QueryStart[s + 1] = row;
        }

        batch.NumSequences = work.Length;
        batch.NumTokens = row;
        batch.NumLogitRows = row;
        _runner.Execute(batch, _logits);

        var vocab = _runner.Config.VocabSize;
        row = 0;
        foreach (var (id, count) in work)
        {
            var sequence = _sequences[id];
            for (var i = 0; i < count; i++, row++)
            {
                Logits[(id, sequence.Computed + i)] = _logits.AsSpan(row * vocab, vocab).ToArray();
            }

            sequence.Computed += count;
        }
    }

    private sealed class Sequence(int[] tokens, int promptLength, int computed)
    {
        public int[] Tokens { get; } = tokens;

        public int PromptLength { get; } = promptLength;

        public int Computed { get; set; } = computed;
    }
}
