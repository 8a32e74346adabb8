using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Causal attention of one query row for one KV head, reading the sequence's K/V through its block table
/// (PagedAttention). The query heads that share the KV head are done together, positions outermost, so each
/// cached K and V row is loaded once for the whole group.
/// <para>
/// Per head the arithmetic is exactly the single-sequence <c>AttentionJob</c>'s: score = (q·k) / sqrt(headDim)
/// with <see cref="Dot"/>, a max-shifted <see cref="Softmax"/>, and the values summed in position order with
/// <see cref="Axpy"/>. So a row's output depends only on its query and its sequence's cache, never on the batch.
/// </para>
/// </summary>
internal static unsafe partial class PagedAttention
{
    /// <summary>
    /// output_h = Σ_t softmax_t(q_h·k_t / sqrt(headDim)) · v_t over positions t in [0, contextLength), for the
    /// <c>group</c> query heads h of one KV head.
    /// </summary>
    /// <param name="query">(group, headDim) the group's query heads of this row, already rotated.</param>
    /// <param name="keys">(slots, kvDim) one layer's keys, row = slot.</param>
    /// <param name="values">(slots, kvDim) one layer's values, row = slot.</param>
    /// <param name="kvDim">Floats per slot: kvHeads × headDim.</param>
    /// <param name="kvHead">Which KV head of the slot row to read.</param>
    /// <param name="headDim">Width of one head.</param>
    /// <param name="blockTable">(≥ ceil(contextLength / blockSize)) logical → physical block of the sequence.</param>
    /// <param name="blockSize">Slots per block.</param>
    /// <param name="contextLength">Positions attended: the row's position + 1.</param>
    /// <param name="scores">(group, scoreStride) scratch; scoreStride ≥ contextLength.</param>
    /// <param name="scoreStride">Row stride of <paramref name="scores"/>.</param>
    /// <param name="output">(group, headDim) the attention output of the group's heads.</param>
    public static void Compute(
        ReadOnlySpan<float> query,
        ReadOnlySpan<float> keys,
        ReadOnlySpan<float> values,
        int kvDim,
        int kvHead,
        int headDim,
        ReadOnlySpan<int> blockTable,
        int blockSize,
        int contextLength,
        Span<float> scores,
        int scoreStride,
        Span<float> output)
    {
        if (Vector512.IsHardwareAccelerated && headDim % Vector512<float>.Count == 0)
        {
            Vector512Path(query, keys, values, kvDim, kvHead, headDim, blockTable, blockSize, contextLength, scores, scoreStride, output);
        }
        else
        {
            Generic(query, keys, values, kvDim, kvHead, headDim, blockTable, blockSize, contextLength, scores, scoreStride, output);
        }
    }

    /// <summary>The kernel through <see cref="Dot"/>, <see cref="Softmax"/> and <see cref="Axpy"/>; any head width.</summary>
    internal static void Generic(
        ReadOnlySpan<float> query,
        ReadOnlySpan<float> keys,
        ReadOnlySpan<float> values,
        int kvDim,
        int kvHead,
        int headDim,
        ReadOnlySpan<int> blockTable,
        int blockSize,
        int contextLength,
        Span<float> scores,
        int scoreStride,
        Span<float> output)
    {
        var group = query.Length / headDim;
        Debug.Assert(group * headDim == query.Length && output.Length == query.Length);
        Debug.Assert(contextLength > 0 && contextLength <= scoreStride && scores.Length >= group * scoreStride);
        Debug.Assert(blockTable.Length * blockSize >= contextLength);
        var sqrtHeadDim = MathF.Sqrt(headDim);
        var headOffset = kvHead * headDim;

        // scores[h, t] = q_h · k_t / sqrt(headDim), walking the block table block by block
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var slot = blockTable[block] * blockSize;
            var end = Math.Min(t + blockSize, contextLength);
            for (; t < end; t++, slot++)
            {
                var key = keys.Slice((slot * kvDim) + headOffset, headDim);
                for (var h = 0; h < group; h++)
                {
                    scores[(h * scoreStride) + t] = Dot.Compute(query.Slice(h * headDim, headDim), key) / sqrtHeadDim;
                }
            }
        }

        // softmax over positions 0 .. contextLength-1, per head
        for (var h = 0; h < group; h++)
        {
            Softmax.InPlace(scores.Slice(h * scoreStride, contextLength));
        }

        // output_h = Σ_t p[h, t] · v_t, in position order
        output.Clear();
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var slot = blockTable[block] * blockSize;
            var end = Math.Min(t + blockSize, contextLength);
            for (; t < end; t++, slot++)
            {
                var value = values.Slice((slot * kvDim) + headOffset, headDim);
                for (var h = 0; h < group; h++)
                {
                    Axpy.Compute(scores[(h * scoreStride) + t], value, output.Slice(h * headDim, headDim));
                }
            }
        }
    }
}
