using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using RawInfer.Engine.Runner;

namespace RawInfer.Gpu.Runner;

public sealed unsafe partial class CudaModelRunner
{
    /// <summary>
    /// Checks the batch once at the edge (the same rules as the CPU runner's; duplicated rather than shared, as
    /// the house style asks until a third backend appears). A kernel indexing out of range on the device would
    /// corrupt memory silently or poison the context, so nothing unchecked reaches it.
    /// </summary>
    private void Validate(ForwardBatch batch, int logitsLength)
    {
        var c = Config;
        var rows = batch.NumTokens;
        var sequences = batch.NumSequences;
        Require(rows >= 1 && rows <= batch.MaxTokens, nameof(batch.NumTokens), rows, batch.MaxTokens + 1);
        Require(sequences >= 1 && sequences <= batch.MaxSequences, nameof(batch.NumSequences), sequences, batch.MaxSequences + 1);
        Require(batch.QueryStart[0] == 0, nameof(batch.QueryStart), batch.QueryStart[0], 1);
        Require(batch.QueryStart[sequences] == rows, nameof(batch.QueryStart), batch.QueryStart[sequences], rows + 1);
        var numLogitRows = batch.NumLogitRows;
        Require(numLogitRows >= 0 && numLogitRows <= batch.MaxSequences, nameof(batch.NumLogitRows), numLogitRows, batch.MaxSequences + 1);
        if ((long)numLogitRows * c.VocabSize > logitsLength)
        {
            throw new ArgumentException(
                $"logits hold {logitsLength} floats but {numLogitRows} rows × vocab {c.VocabSize} are needed", "logits");
        }

        var slots = (long)NumKvBlocks * KvBlockSize;
        for (var s = 0; s < sequences; s++)
        {
            var start = batch.QueryStart[s];
            var end = batch.QueryStart[s + 1];
            Require(end > start && end <= rows, nameof(batch.QueryStart), end, rows + 1);
            var context = batch.ContextLengths[s];
            Require(context >= 1 && context <= c.MaxSeqLen, nameof(batch.ContextLengths), context, c.MaxSeqLen + 1);
            var blocks = (context + KvBlockSize - 1) / KvBlockSize;
            Require(blocks <= batch.MaxBlocksPerSequence, nameof(batch.ContextLengths), context, (batch.MaxBlocksPerSequence * KvBlockSize) + 1);
            var table = batch.BlockTable(s);
            for (var b = 0; b < blocks; b++)
            {
                Require((uint)table[b] < (uint)NumKvBlocks, nameof(batch.BlockTables), table[b], NumKvBlocks);
            }

            for (var r = start; r < end; r++)
            {
                Require((uint)batch.TokenIds[r] < (uint)c.VocabSize, nameof(batch.TokenIds), batch.TokenIds[r], c.VocabSize);
                Require((uint)batch.Positions[r] < (uint)context, nameof(batch.Positions), batch.Positions[r], context);
                Require((ulong)(uint)batch.SlotMapping[r] < (ulong)slots, nameof(batch.SlotMapping), batch.SlotMapping[r], (int)Math.Min(slots, int.MaxValue));
            }
        }

        for (var i = 0; i < numLogitRows; i++)
        {
            Require((uint)batch.LogitRows[i] < (uint)rows, nameof(batch.LogitRows), batch.LogitRows[i], rows);
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
