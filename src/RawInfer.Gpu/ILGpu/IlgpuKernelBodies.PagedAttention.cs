using ILGPU;

namespace RawInfer.Gpu.ILGpu;

/// <summary>The sizes of a paged-attention decode launch, passed to the kernel as one value.</summary>
/// <param name="MaxBlocks">Row length of the block table (blocks per sequence, at most).</param>
/// <param name="BlockSize">Slots per cache block.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads; divides <paramref name="Heads"/>.</param>
/// <param name="HeadDim">Width of one head.</param>
/// <param name="Scale">Score scale, usually 1 / sqrt(headDim).</param>
public readonly record struct PagedAttentionShape(int MaxBlocks, int BlockSize, int Heads, int KvHeads, int HeadDim, float Scale)
{
    /// <summary>Query heads that share one KV head.</summary>
    public int GroupHeads => Heads / KvHeads;

    /// <summary>Floats of dynamic shared memory one group needs with <paramref name="groupSize"/> threads.</summary>
    public int SharedFloats(int groupSize) =>
        (2 * GroupHeads * HeadDim) + (GroupHeads * groupSize) + (3 * GroupHeads);
}

internal static partial class IlgpuKernelBodies
{
    /// <summary>
    /// Decode attention through the block table: output_h = Σ_t softmax_t(scale · q_h·k_t) · v_t over the
    /// positions t in [0, contextLens[s]) of sequence s. One group per (sequence, KV head), group index
    /// s · kvHeads + kvHead; the GroupHeads query heads of that KV head (heads kvHead·G … kvHead·G + G − 1) are
    /// done together so each K/V row is read once for all of them. The context is walked in tiles of one token
    /// per thread with an online softmax (running max and sum per head, the accumulator rescaled per tile).
    /// output, q: (seqs, heads, headDim); kCache, vCache: (blocks, blockSize, kvHeads, headDim);
    /// blockTables: (seqs, maxBlocks); contextLens: (seqs). GroupHeads must not exceed the group size.
    /// Dynamic shared memory: <see cref="PagedAttentionShape.SharedFloats"/> floats.
    /// </summary>
    internal static void PagedAttentionDecode(
        ArrayView<float> output,
        ArrayView<float> q,
        ArrayView<float> kCache,
        ArrayView<float> vCache,
        ArrayView<int> blockTables,
        ArrayView<int> contextLens,
        PagedAttentionShape shape)
    {
        var headDim = shape.HeadDim;
        var kvHeads = shape.KvHeads;
        var groupHeads = shape.Heads / kvHeads;
        var tile = Group.DimX;
        var tid = Group.IdxX;
        var seq = Grid.IdxX / kvHeads;
        var kvHead = Grid.IdxX - (seq * kvHeads);
        var kvDim = kvHeads * headDim;
        var contextLen = contextLens[seq];
        var tableStart = (long)seq * shape.MaxBlocks;

        // shared layout: qs (G, headDim) | acc (G, headDim) | scores (G, tile) | runMax (G) | runSum (G) | alpha (G)
        var shared = SharedMemory.GetDynamic<float>();
        var elements = groupHeads * headDim;
        var accOffset = elements;
        var scoresOffset = 2 * elements;
        var maxOffset = scoresOffset + (groupHeads * tile);
        var sumOffset = maxOffset + groupHeads;
        var alphaOffset = sumOffset + groupHeads;

        // q rows of this KV head's query heads are contiguous: (seq, kvHead·G + h, :)
        var qStart = (((long)seq * shape.Heads) + ((long)kvHead * groupHeads)) * headDim;
        for (var e = tid; e < elements; e += tile)
        {
            shared[e] = q[qStart + e];
            shared[accOffset + e] = 0f;
        }

        for (var h = tid; h < groupHeads; h += tile)
        {
            shared[maxOffset + h] = float.NegativeInfinity;
            shared[sumOffset + h] = 0f;
        }

        Group.Barrier();
        for (var tileStart = 0; tileStart < contextLen; tileStart += tile)
        {
            var count = Math.Min(tile, contextLen - tileStart);

            // scores[h, j] = scale · q_h · k_(tileStart + j), one token per thread
            if (tid < count)
            {
                var keyStart = SlotOffset(blockTables, tableStart, tileStart + tid, shape.BlockSize, kvDim) + ((long)kvHead * headDim);
                for (var h = 0; h < groupHeads; h++)
                {
                    var dot = 0f;
                    for (var d = 0; d < headDim; d++)
                    {
                        dot += shared[(h * headDim) + d] * kCache[keyStart + d];
                    }

                    shared[scoresOffset + (h * tile) + tid] = dot * shape.Scale;
                }
            }

            Group.Barrier();

            // online softmax, one thread per head: scores become e^(s - newMax), acc is rescaled by alpha
            for (var h = tid; h < groupHeads; h += tile)
            {
                var scoreRow = scoresOffset + (h * tile);
                var previousMax = shared[maxOffset + h];
                var tileMax = float.NegativeInfinity;
                for (var j = 0; j < count; j++)
                {
                    tileMax = MathF.Max(tileMax, shared[scoreRow + j]);
                }

                var newMax = MathF.Max(previousMax, tileMax);
                var tileSum = 0f;
                for (var j = 0; j < count; j++)
                {
                    var p = Exp(shared[scoreRow + j] - newMax);
                    shared[scoreRow + j] = p;
                    tileSum += p;
                }

                var alpha = Exp(previousMax - newMax); // 0 on the first tile (previousMax = -inf)
                shared[alphaOffset + h] = alpha;
                shared[sumOffset + h] = (shared[sumOffset + h] * alpha) + tileSum;
                shared[maxOffset + h] = newMax;
            }

            Group.Barrier();

            // acc[h, d] = alpha_h · acc[h, d] + Σ_j p[h, j] · v_(tileStart + j)[d]; each thread owns its elements
            for (var e = tid; e < elements; e += tile)
            {
                var h = e / headDim;
                var d = e - (h * headDim);
                var sum = shared[accOffset + e] * shared[alphaOffset + h];
                for (var j = 0; j < count; j++)
                {
                    var valueStart = SlotOffset(blockTables, tableStart, tileStart + j, shape.BlockSize, kvDim) + ((long)kvHead * headDim);
                    sum += shared[scoresOffset + (h * tile) + j] * vCache[valueStart + d];
                }

                shared[accOffset + e] = sum;
            }

            // the next tile overwrites scores and alpha
            Group.Barrier();
        }

        for (var e = tid; e < elements; e += tile)
        {
            var total = shared[sumOffset + (e / headDim)];
            output[qStart + e] = total > 0f ? shared[accOffset + e] / total : 0f;
        }
    }

    /// <summary>Float offset of position t's cache row (slot · kvDim) through the block table.</summary>
    private static long SlotOffset(ArrayView<int> blockTables, long tableStart, int position, int blockSize, int kvDim)
    {
        var logicalBlock = position / blockSize;
        var block = blockTables[tableStart + logicalBlock];
        var slot = ((long)block * blockSize) + (position - (logicalBlock * blockSize));
        return slot * kvDim;
    }
}
