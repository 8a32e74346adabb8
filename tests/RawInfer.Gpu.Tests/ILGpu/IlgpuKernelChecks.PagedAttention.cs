using RawInfer.Gpu.ILGpu;
using static RawInfer.Gpu.Tests.ILGpu.IlgpuTestData;

namespace RawInfer.Gpu.Tests.ILGpu;

internal sealed partial class IlgpuKernelChecks
{
    /// <summary>
    /// Decode attention for one query row per sequence, the sequences' blocks scattered over the cache by a
    /// shuffled block table (unused table entries point at spare blocks of random data, so a read past the
    /// context changes the answer), against plain softmax attention in double precision over the K/V rows
    /// gathered in logical order.
    /// </summary>
    public void PagedAttentionDecode(int[] contextLens, int heads, int kvHeads, int headDim, int blockSize, int seed)
    {
        var seqs = contextLens.Length;
        var maxBlocks = 0;
        var usedBlocks = 0;
        foreach (var length in contextLens)
        {
            var needed = (length + blockSize - 1) / blockSize;
            maxBlocks = Math.Max(maxBlocks, needed);
            usedBlocks += needed;
        }

        maxBlocks += 1; // every row has at least one unused entry
        const int spareBlocks = 3;
        var totalBlocks = usedBlocks + spareBlocks;
        var kvDim = kvHeads * headDim;
        var physical = Permutation(totalBlocks, seed);
        var blockTables = new int[seqs * maxBlocks];
        var next = 0;
        for (var s = 0; s < seqs; s++)
        {
            var needed = (contextLens[s] + blockSize - 1) / blockSize;
            for (var b = 0; b < maxBlocks; b++)
            {
                blockTables[(s * maxBlocks) + b] = b < needed ? physical[next++] : physical[usedBlocks + (b % spareBlocks)];
            }
        }

        var q = Random(seqs * heads * headDim, seed + 1);
        var kCache = Random(totalBlocks * blockSize * kvDim, seed + 2);
        var vCache = Random(totalBlocks * blockSize * kvDim, seed + 3, -2f, 2f);
        var scale = 1f / MathF.Sqrt(headDim);
        var shape = new PagedAttentionShape(maxBlocks, blockSize, heads, kvHeads, headDim, scale);
        using var dout = _accelerator.Allocate1D<float>(q.Length);
        using var dq = Upload(_accelerator, q);
        using var dk = Upload(_accelerator, kCache);
        using var dv = Upload(_accelerator, vCache);
        using var dtables = Upload(_accelerator, blockTables);
        using var dlens = Upload(_accelerator, contextLens);

        kernels.PagedAttentionDecode(dout.View, dq.View, dk.View, dv.View, dtables.View, dlens.View, seqs, shape);

        var expected = ReferenceAttention(q, kCache, vCache, blockTables, contextLens, maxBlocks, blockSize, heads, kvHeads, headDim, scale);
        AssertClose(expected, Download(_accelerator, dout), 2e-6 * toleranceScale, 1e-5 * toleranceScale, "paged attention");
    }

    /// <summary>
    /// out[s, h] = Σ_t softmax_t(scale · q[s, h]·k_t) v_t, query head h reading KV head h / (heads / kvHeads),
    /// with the logical position t at slot table[s, t / blockSize] · blockSize + t % blockSize.
    /// </summary>
    private static double[] ReferenceAttention(
        float[] q, float[] kCache, float[] vCache, int[] blockTables, int[] contextLens,
        int maxBlocks, int blockSize, int heads, int kvHeads, int headDim, float scale)
    {
        var groupHeads = heads / kvHeads;
        var kvDim = kvHeads * headDim;
        var output = new double[q.Length];
        for (var s = 0; s < contextLens.Length; s++)
        {
            var length = contextLens[s];
            var slots = new int[length];
            for (var t = 0; t < length; t++)
            {
                slots[t] = (blockTables[(s * maxBlocks) + (t / blockSize)] * blockSize) + (t % blockSize);
            }

            for (var h = 0; h < heads; h++)
            {
                var kvHead = h / groupHeads;
                var qRow = ((s * heads) + h) * headDim;
                var scores = new double[length];
                var max = double.NegativeInfinity;
                for (var t = 0; t < length; t++)
                {
                    var dot = 0.0;
                    for (var d = 0; d < headDim; d++)
                    {
                        dot += (double)q[qRow + d] * kCache[(slots[t] * kvDim) + (kvHead * headDim) + d];
                    }

                    scores[t] = dot * scale;
                    max = Math.Max(max, scores[t]);
                }

                var sum = 0.0;
                for (var t = 0; t < length; t++)
                {
                    scores[t] = Math.Exp(scores[t] - max);
                    sum += scores[t];
                }

                for (var t = 0; t < length; t++)
                {
                    for (var d = 0; d < headDim; d++)
                    {
                        output[qRow + d] += scores[t] / sum * vCache[(slots[t] * kvDim) + (kvHead * headDim) + d];
                    }
                }
            }
        }

        return output;
    }
}
