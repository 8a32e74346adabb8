using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// Drives two runners (the CPU reference and the CUDA runner) with identical batches: one real
/// <see cref="BlockManager"/> allocates, appends and forks; every batch is built once from its block tables and
/// slot mappings and executed on both, copy-on-write copies included. Token streams are fixed in advance
/// (teacher forcing), so both runners see exactly the same inputs whatever their logits are.
/// </summary>
internal sealed class TwinRunnerHarness
{
    private readonly IModelRunner _reference;
    private readonly IModelRunner _subject;
    private readonly ForwardBatch _batch;
    private readonly float[] _referenceLogits;
    private readonly float[] _subjectLogits;
    private readonly Dictionary<long, Sequence> _sequences = [];

    public TwinRunnerHarness(IModelRunner reference, IModelRunner subject, int numBlocks, int blockSize, int maxTokens)
    {
        _reference = reference;
        _subject = subject;
        Blocks = new BlockManager(numBlocks, blockSize);
        reference.AllocateKvCache(numBlocks, blockSize);
        subject.AllocateKvCache(numBlocks, blockSize);
        var maxBlocksPerSequence = (reference.Config.MaxSeqLen + blockSize - 1) / blockSize;
        _batch = new ForwardBatch(maxTokens, maxTokens, maxBlocksPerSequence);
        _referenceLogits = new float[maxTokens * reference.Config.VocabSize];
        _subjectLogits = new float[maxTokens * reference.Config.VocabSize];
    }

    public BlockManager Blocks { get; }

    /// <summary>Largest |reference − subject| over every logit compared so far, and the largest |reference|.</summary>
    public double MaxAbsDifference { get; private set; }

    public double MaxAbsReference { get; private set; }

    /// <summary>Rows compared, and rows whose argmax differed.</summary>
    public int RowsCompared { get; private set; }

    public int ArgmaxMismatches { get; private set; }

    public void Start(long id, int[] tokens, int promptLength)
    {
        var cached = Blocks.Allocate(id, tokens.AsSpan(0, promptLength));
        _sequences[id] = new Sequence(tokens, promptLength, cached);
    }

    public void Fork(long parent, long child, int[] childTokens)
    {
        var p = _sequences[parent];
        Blocks.Fork(parent, child);
        _sequences[child] = new Sequence(childTokens, p.Computed, p.Computed);
    }

    /// <summary>
    /// One step: each entry runs the next <c>Count</c> tokens of sequence <c>Id</c>; logits are asked for the
    /// last row of each entry only when <paramref name="everyRow"/> is false (as the engine does), else for all.
    /// </summary>
    public void Step(bool everyRow, params (long Id, int Count)[] work)
    {
        var batch = _batch;
        batch.Clear();
        var row = 0;
        var logitRows = 0;
        for (var s = 0; s < work.Length; s++)
        {
            var (id, count) = work[s];
            var sequence = _sequences[id];
            var start = sequence.Computed;
            var appendFrom = Math.Max(start, sequence.PromptLength);
            if (start + count > appendFrom)
            {
                var copy = Blocks.Append(id, sequence.Tokens.AsSpan(appendFrom, start + count - appendFrom));
                if (copy.IsNeeded)
                {
                    _reference.CopyBlock(copy.Source, copy.Destination);
                    _subject.CopyBlock(copy.Source, copy.Destination);
                }
            }

            for (var i = 0; i < count; i++)
            {
                batch.TokenIds[row + i] = sequence.Tokens[start + i];
                batch.Positions[row + i] = start + i;
                if (everyRow || i == count - 1)
                {
                    batch.LogitRows[logitRows++] = row + i;
                }
            }

            Blocks.WriteSlotMapping(id, start, batch.SlotMapping.AsSpan(row, count));
            Blocks.BlockTable(id).CopyTo(batch.BlockTable(s));
            batch.ContextLengths[s] = start + count;
            row += count;
            batch.QueryStart[s + 1] = row;
            sequence.Computed += count;
        }

        batch.NumSequences = work.Length;
        batch.NumTokens = row;
        batch.NumLogitRows = logitRows;
        _reference.Execute(batch, _referenceLogits);
        _subject.Execute(batch, _subjectLogits);
        Compare(logitRows);
    }

    private void Compare(int rows)
    {
        var vocab = _reference.Config.VocabSize;
        for (var r = 0; r < rows; r++)
        {
            var expected = _referenceLogits.AsSpan(r * vocab, vocab);
            var actual = _subjectLogits.AsSpan(r * vocab, vocab);
            for (var i = 0; i < vocab; i++)
            {
                Assert.False(float.IsNaN(actual[i]) || float.IsInfinity(actual[i]), $"row {r} logit {i} is {actual[i]}");
                MaxAbsDifference = Math.Max(MaxAbsDifference, Math.Abs(expected[i] - actual[i]));
                MaxAbsReference = Math.Max(MaxAbsReference, Math.Abs(expected[i]));
            }

            RowsCompared++;
            if (ArgMax(expected) != ArgMax(actual))
            {
                ArgmaxMismatches++;
            }
        }
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    private sealed class Sequence(int[] tokens, int promptLength, int computed)
    {
        public int[] Tokens { get; } = tokens;

        public int PromptLength { get; } = promptLength;

        public int Computed { get; set; } = computed;
    }
}
