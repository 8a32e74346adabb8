using System.Numerics;
using RawInfer.Engine.Runner;

namespace RawInfer.Gpu.Runner;

public sealed unsafe partial class CudaModelRunner
{
    /// <summary>Device addresses of this step's metadata (inside the one device metadata buffer), and host facts.</summary>
    private readonly record struct StepMetadata(
        nint Tokens,          // (rows) int
        nint Positions,       // (rows) int
        nint Slots,           // (rows) int
        nint QueryStart,      // (seqs + 1) int
        nint ContextLengths,  // (seqs) int
        nint BlockTables,     // (seqs, BlockTableStride) int
        nint LogitRows,       // (logitRows) int
        int BlockTableStride, // the table rows are packed to this width: see UploadMetadata
        bool LogitRowsAreAllRowsInOrder);

    /// <summary>
    /// Packs the step's token ids, positions, slot mapping, query starts, context lengths, block tables and logit
    /// rows into the pinned host buffer, back to back, and queues one copy of it to the device. The pinned buffer
    /// is not reused before the step's final synchronisation. The block tables are trimmed to the longest
    /// context's block count rounded up to a power of two (at most the batch's table width): every address in
    /// the device buffer, and the decode plan made from that width, then stay the same from one decode step to
    /// the next until the width doubles, which is what lets a captured decode graph be replayed.
    /// </summary>
    private StepMetadata UploadMetadata(ForwardBatch batch)
    {
        var rows = batch.NumTokens;
        var seqs = batch.NumSequences;
        var logitRows = batch.NumLogitRows;
        var maxContext = 0;
        for (var s = 0; s < seqs; s++)
        {
            maxContext = Math.Max(maxContext, batch.ContextLengths[s]);
        }

        var needed = Math.Max(1, (maxContext + KvBlockSize - 1) / KvBlockSize);
        var stride = Math.Min((int)BitOperations.RoundUpToPowerOf2((uint)needed), batch.MaxBlocksPerSequence);
        var offTokens = 0;
        var offPositions = offTokens + rows;
        var offSlots = offPositions + rows;
        var offQueryStart = offSlots + rows;
        var offContext = offQueryStart + seqs + 1;
        var offTables = offContext + seqs;
        var offLogitRows = offTables + (seqs * stride);
        var total = offLogitRows + logitRows;
        EnsureMetadata(total);

        var host = new Span<int>((void*)_hostMetadata!.Pointer, total);
        batch.TokenIds.AsSpan(0, rows).CopyTo(host[offTokens..]);
        batch.Positions.AsSpan(0, rows).CopyTo(host[offPositions..]);
        batch.SlotMapping.AsSpan(0, rows).CopyTo(host[offSlots..]);
        batch.QueryStart.AsSpan(0, seqs + 1).CopyTo(host[offQueryStart..]);
        batch.ContextLengths.AsSpan(0, seqs).CopyTo(host[offContext..]);
        for (var s = 0; s < seqs; s++)
        {
            // entries past a sequence's own block count are never read (the kernels stop at its context length)
            batch.BlockTable(s)[..stride].CopyTo(host.Slice(offTables + (s * stride), stride));
        }

        var inOrder = logitRows == rows;
        for (var i = 0; i < logitRows; i++)
        {
            host[offLogitRows + i] = batch.LogitRows[i];
            inOrder &= batch.LogitRows[i] == i;
        }

        _deviceMetadata!.CopyFromHost((void*)_hostMetadata.Pointer, (long)total * sizeof(int), _stream);
        var d = _deviceMetadata.Pointer;
        return new StepMetadata(
            Tokens: d + (offTokens * sizeof(int)),
            Positions: d + (offPositions * sizeof(int)),
            Slots: d + (offSlots * sizeof(int)),
            QueryStart: d + (offQueryStart * sizeof(int)),
            ContextLengths: d + (offContext * sizeof(int)),
            BlockTables: d + (offTables * sizeof(int)),
            LogitRows: d + (offLogitRows * sizeof(int)),
            BlockTableStride: stride,
            LogitRowsAreAllRowsInOrder: inOrder);
    }
}
