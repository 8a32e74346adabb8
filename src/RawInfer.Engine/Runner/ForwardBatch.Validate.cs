using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using RawInfer.Models;

namespace RawInfer.Engine.Runner;

public sealed partial class ForwardBatch
{
    /// <summary>
    /// Checks the batch once at a runner's edge, so its kernels (CPU loops or device code, where an index out of
    /// range would corrupt memory silently) can index without checks of their own.
    /// </summary>
    /// <param name="config">The runner's model.</param>
    /// <param name="numKvBlocks">Blocks of the runner's KV storage.</param>
    /// <param name="kvBlockSize">Slots per block.</param>
    /// <param name="logitsLength">Floats in the logits output the caller passed.</param>
    /// <exception cref="ArgumentException">A field is out of range; the message names the field and the limit.</exception>
    public void Validate(ModelConfig config, int numKvBlocks, int kvBlockSize, int logitsLength)
    {
        ArgumentNullException.ThrowIfNull(config);
        var rows = NumTokens;
        var sequences = NumSequences;
        Require(rows >= 1 && rows <= MaxTokens, nameof(NumTokens), rows, MaxTokens + 1);
        Require(sequences >= 1 && sequences <= MaxSequences, nameof(NumSequences), sequences, MaxSequences + 1);
        Require(QueryStart[0] == 0, nameof(QueryStart), QueryStart[0], 1);
        Require(QueryStart[sequences] == rows, nameof(QueryStart), QueryStart[sequences], rows + 1);
        var numLogitRows = NumLogitRows;
        Require(numLogitRows >= 0 && numLogitRows <= MaxSequences, nameof(NumLogitRows), numLogitRows, MaxSequences + 1);
        if ((long)numLogitRows * config.VocabSize > logitsLength)
        {
            throw new ArgumentException(
                $"logits hold {logitsLength} floats but {numLogitRows} rows × vocab {config.VocabSize} are needed", "logits");
        }

        var slots = (long)numKvBlocks * kvBlockSize;
        for (var s = 0; s < sequences; s++)
        {
            var start = QueryStart[s];
            var end = QueryStart[s + 1];
            Require(end > start && end <= rows, nameof(QueryStart), end, rows + 1);
            var context = ContextLengths[s];
            Require(context >= 1 && context <= config.MaxSeqLen, nameof(ContextLengths), context, config.MaxSeqLen + 1);
            var blocks = (context + kvBlockSize - 1) / kvBlockSize;
            Require(blocks <= MaxBlocksPerSequence, nameof(ContextLengths), context, (MaxBlocksPerSequence * kvBlockSize) + 1);
            var table = BlockTable(s);
            for (var b = 0; b < blocks; b++)
            {
                Require((uint)table[b] < (uint)numKvBlocks, nameof(BlockTables), table[b], numKvBlocks);
            }

            for (var r = start; r < end; r++)
            {
                Require((uint)TokenIds[r] < (uint)config.VocabSize, nameof(TokenIds), TokenIds[r], config.VocabSize);
                Require((uint)Positions[r] < (uint)context, nameof(Positions), Positions[r], context);
                Require((ulong)(uint)SlotMapping[r] < (ulong)slots, nameof(SlotMapping), SlotMapping[r], (int)Math.Min(slots, int.MaxValue));
            }
        }

        for (var i = 0; i < numLogitRows; i++)
        {
            Require((uint)LogitRows[i] < (uint)rows, nameof(LogitRows), LogitRows[i], rows);
        }
    }

    /// <summary>Throws when a batch field is out of range; the message names the field and the limit.</summary>
    private static void Require(bool condition, string field, int value, int limit)
    {
        if (!condition)
        {
            ThrowBadBatch(field, value, limit);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadBatch(string field, int value, int limit) =>
        throw new ArgumentException($"ForwardBatch.{field}: {value} is outside the valid range (limit {limit})", "batch");
}
