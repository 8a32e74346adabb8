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
/// A half cache's rows are converted exactly to float32 a block at a time (<see cref="KvLayer"/>) and then go
/// through the same arithmetic.
/// </para>
/// </summary>
internal static unsafe partial class PagedAttention
{
    /// <summary>
    /// output_h = Σ_t softmax_t(q_h·k_t / sqrt(headDim)) · v_t over positions t in [0, contextLength), for the
    /// <c>group</c> query heads h of one KV head, on a float32 cache.
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
        Debug.Assert(output.Length == query.Length && scores.Length >= (query.Length / headDim) * scoreStride);
        fixed (float* q = query)
        fixed (float* k = keys)
        fixed (float* v = values)
        fixed (float* s = scores)
        fixed (float* o = output)
        {
            Compute(q, query.Length / headDim, headDim, new KvLayer(k, kvDim), new KvLayer(v, kvDim), null, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
    }

    /// <summary>
    /// As the span overload, on a cache of either element type.
    /// </summary>
    /// <param name="query">(group, headDim) the group's query heads.</param>
    /// <param name="group">Query heads per KV head.</param>
    /// <param name="kvScratch">(blockSize, headDim) floats for a half cache's converted rows; may be null for float32.</param>
    /// <param name="output">(group, headDim).</param>
    public static void Compute(
        float* query,
        int group,
        int headDim,
        KvLayer keys,
        KvLayer values,
        float* kvScratch,
        int kvHead,
        ReadOnlySpan<int> blockTable,
        int blockSize,
        int contextLength,
        float* scores,
        int scoreStride,
        float* output)
    {
        if (Vector512.IsHardwareAccelerated && headDim % Vector512<float>.Count == 0)
        {
            Vector512Path(query, group, headDim, keys, values, kvScratch, kvHead, blockTable, blockSize, contextLength, scores, scoreStride, output);
        }
        else if (Vector256Enabled && Narrow(headDim))
        {
            Vector256Path(query, group, headDim, keys, values, kvScratch, kvHead, blockTable, blockSize, contextLength, scores, scoreStride, output);
        }
        else
        {
            Generic(query, group, headDim, keys, values, kvScratch, kvHead, blockTable, blockSize, contextLength, scores, scoreStride, output);
        }
    }

    /// <summary>
    /// Two adjacent KV heads, kvHead and kvHead + 1, of a model with one query head per KV head: query, output
    /// (2, headDim) and scores (2, scoreStride) as two calls of the pointer <c>Compute</c> with group 1 would use
    /// them, and the same bits. The 512-bit kernel runs both heads' value sums side by side.
    /// </summary>
    public static void ComputeTwoHeads(
        float* query,
        int headDim,
        KvLayer keys,
        KvLayer values,
        float* kvScratch,
        int kvHead,
        ReadOnlySpan<int> blockTable,
        int blockSize,
        int contextLength,
        float* scores,
        int scoreStride,
        float* output)
    {
        if (Vector512.IsHardwareAccelerated && headDim % Vector512<float>.Count == 0)
        {
            Vector512TwoHeads(query, headDim, keys, values, kvHead, blockTable, blockSize, contextLength, scores, scoreStride, output);
        }
        else
        {
            for (var j = 0; j < 2; j++)
            {
                Compute(
                    query + (j * headDim), 1, headDim, keys, values, kvScratch, kvHead + j, blockTable, blockSize, contextLength,
                    scores + ((long)j * scoreStride), scoreStride, output + (j * headDim));
            }
        }
    }

    /// <summary>The kernel through <see cref="Dot"/>, <see cref="Softmax"/> and <see cref="Axpy"/>; any head width. Arguments as the pointer overload of <c>Compute</c>.</summary>
    internal static void Generic(
        float* query,
        int group,
        int headDim,
        KvLayer keys,
        KvLayer values,
        float* kvScratch,
        int kvHead,
        ReadOnlySpan<int> blockTable,
        int blockSize,
        int contextLength,
        float* scores,
        int scoreStride,
        float* output)
    {
        Debug.Assert(contextLength > 0 && contextLength <= scoreStride);
        Debug.Assert(blockTable.Length * blockSize >= contextLength);
        var sqrtHeadDim = MathF.Sqrt(headDim);
        var headOffset = kvHead * headDim;

        // scores[h, t] = q_h · k_t / sqrt(headDim), walking the block table block by block
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var count = Math.Min(blockSize, contextLength - t);
            var key = keys.HeadRows((long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var keyStride);
            for (var end = t + count; t < end; t++, key += keyStride)
            {
                for (var h = 0; h < group; h++)
                {
                    scores[((long)h * scoreStride) + t] = Dot.Compute(new ReadOnlySpan<float>(query + (h * headDim), headDim), new ReadOnlySpan<float>(key, headDim)) / sqrtHeadDim;
                }
            }
        }

        // softmax over positions 0 .. contextLength-1, per head
        for (var h = 0; h < group; h++)
        {
            Softmax.InPlace(new Span<float>(scores + ((long)h * scoreStride), contextLength));
        }

        // output_h = Σ_t p[h, t] · v_t, in position order
        new Span<float>(output, group * headDim).Clear();
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var count = Math.Min(blockSize, contextLength - t);
            var value = values.HeadRows((long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var valueStride);
            for (var end = t + count; t < end; t++, value += valueStride)
            {
                for (var h = 0; h < group; h++)
                {
                    Axpy.Compute(scores[((long)h * scoreStride) + t], new ReadOnlySpan<float>(value, headDim), new Span<float>(output + (h * headDim), headDim));
                }
            }
        }
    }
}
