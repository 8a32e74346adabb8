using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Runner;
using RawInfer.KvCache;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// <see cref="PrefillAttention"/> (a run of consecutive rows at once) against <see cref="PagedAttention"/> row by
/// row: the same bits for every row and head, over shuffled block tables, odd block sizes and contexts that
/// start mid-block; and against a double-precision scalar reference within a stated tolerance.
/// </summary>
public unsafe class PrefillAttentionTests
{
    public static TheoryData<int, int, int, int, int> Cases()
    {
        var data = new TheoryData<int, int, int, int, int>();
        foreach (var headDim in new[] { 16, 32, 64 }) // 32: sqrt(headDim) not a power of two
        {
            foreach (var group in new[] { 1, 3 })
            {
                foreach (var rows in new[] { 1, 2, 5, 8 })
                {
                    foreach (var (firstContext, blockSize) in new[] { (1, 16), (17, 16), (40, 5), (257, 16) })
                    {
                        data.Add(headDim, group, rows, firstContext, blockSize);
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_run_gives_each_row_the_bits_of_the_single_row_kernel(int headDim, int group, int rows, int firstContext, int blockSize)
    {
        Assert.SkipUnless(PrefillAttention.Supports(headDim), "neither AVX-512 nor AVX2 with FMA here");
        const int KvHeads = 2;
        const int KvHead = 1;
        var kvDim = KvHeads * headDim;
        var dim = KvHeads * group * headDim;
        var context = firstContext + rows - 1;
        var blocks = (context + blockSize - 1) / blockSize;

        // a shuffled block table over twice the blocks needed
        var table = Enumerable.Range(0, 2 * blocks).OrderBy(b => (b * 7919) % 31).Take(blocks).ToArray();
        var slots = 2 * blocks * blockSize;
        var keys = Random(slots * kvDim, seed: headDim + group);
        var values = Random(slots * kvDim, seed: headDim + group + 1);
        var q = Random(rows * dim, seed: rows + firstContext);
        var groupOffset = KvHead * group * headDim;
        var groupWidth = group * headDim;
        var scoreStride = context + 3;

        var actual = new float[rows * dim];
        var runScores = new float[PrefillAttention.MaxRows * group * scoreStride];
        fixed (float* pq = q)
        fixed (float* po = actual)
        fixed (float* pk = keys)
        fixed (float* pv = values)
        fixed (float* ps = runScores)
        {
            PrefillAttention.Compute(
                pq + groupOffset, po + groupOffset, dim, rows, group, headDim, new KvLayer(pk, kvDim), new KvLayer(pv, kvDim), null, KvHead,
                table, blockSize, firstContext, ps, scoreStride);
        }

        var scores = new float[group * scoreStride];
        for (var r = 0; r < rows; r++)
        {
            var expected = new float[groupWidth];
            var query = q.AsSpan((r * dim) + groupOffset, groupWidth);
            PagedAttention.Compute(query, keys, values, kvDim, KvHead, headDim, table, blockSize, firstContext + r, scores, scoreStride, expected);
            for (var i = 0; i < groupWidth; i++)
            {
                var got = actual[(r * dim) + groupOffset + i];
                Assert.True(
                    BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(got),
                    $"row {r}, element {i}: {expected[i]:R} vs {got:R}");
            }

            // and the values themselves: softmax-weighted sums of values in [-1, 1), against double precision
            for (var h = 0; h < group; h++)
            {
                var reference = Reference(query.Slice(h * headDim, headDim), keys, values, kvDim, KvHead, headDim, table, blockSize, firstContext + r);
                for (var i = 0; i < headDim; i++)
                {
                    var got = actual[(r * dim) + groupOffset + (h * headDim) + i];
                    Assert.True(Math.Abs(got - reference[i]) <= 1e-5, $"row {r}, head {h}, element {i}: {got:R} vs {reference[i]:R}");
                }
            }
        }
    }

    public static TheoryData<KvCacheType, int, int, int, int, int> SixteenBitCases()
    {
        var data = new TheoryData<KvCacheType, int, int, int, int, int>();
        foreach (var type in new[] { KvCacheType.F16, KvCacheType.BF16 })
        {
            foreach (var row in Cases())
            {
                var (headDim, group, rows, firstContext, blockSize) = row.Data;
                data.Add(type, headDim, group, rows, firstContext, blockSize);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SixteenBitCases))]
    public void On_a_16_bit_cache_a_run_gives_the_bits_of_a_float_cache_holding_the_rounded_values(
        KvCacheType type, int headDim, int group, int rows, int firstContext, int blockSize)
    {
        Assert.SkipUnless(PrefillAttention.Supports(headDim), "neither AVX-512 nor AVX2 with FMA here");
        const int KvHeads = 2;
        const int KvHead = 1;
        var kvDim = KvHeads * headDim;
        var dim = KvHeads * group * headDim;
        var context = firstContext + rows - 1;
        var blocks = (context + blockSize - 1) / blockSize;
        var table = Enumerable.Range(0, 2 * blocks).OrderBy(b => (b * 7919) % 31).Take(blocks).ToArray();
        var slots = 2 * blocks * blockSize;
        var keyBits = PagedAttentionTests.Round(Random(slots * kvDim, seed: headDim + group + 5, -3f, 3f), type);
        var valueBits = PagedAttentionTests.Round(Random(slots * kvDim, seed: headDim + group + 6), type);
        var roundedKeys = PagedAttentionTests.Widen(keyBits, type);
        var roundedValues = PagedAttentionTests.Widen(valueBits, type);
        var q = Random(rows * dim, seed: rows + firstContext + 1);
        var groupOffset = KvHead * group * headDim;
        var scoreStride = context + 3;
        var runScores = new float[PrefillAttention.MaxRows * group * scoreStride];
        var expected = new float[rows * dim];
        var actual = new float[rows * dim];
        var scratch = new float[blockSize * headDim];
        fixed (float* pq = q)
        fixed (float* pe = expected)
        fixed (float* pa = actual)
        fixed (float* rk = roundedKeys)
        fixed (float* rv = roundedValues)
        fixed (ushort* hk = keyBits)
        fixed (ushort* hv = valueBits)
        fixed (float* ps = runScores)
        fixed (float* kv = scratch)
        {
            PrefillAttention.Compute(
                pq + groupOffset, pe + groupOffset, dim, rows, group, headDim, new KvLayer(rk, kvDim), new KvLayer(rv, kvDim), null, KvHead,
                table, blockSize, firstContext, ps, scoreStride);
            var keyLayer = type == KvCacheType.F16 ? new KvLayer((Half*)hk, kvDim) : KvLayer.BFloat16(hk, kvDim);
            var valueLayer = type == KvCacheType.F16 ? new KvLayer((Half*)hv, kvDim) : KvLayer.BFloat16(hv, kvDim);
            PrefillAttention.Compute(
                pq + groupOffset, pa + groupOffset, dim, rows, group, headDim, keyLayer, valueLayer, kv, KvHead,
                table, blockSize, firstContext, ps, scoreStride);
        }

        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), actual.Select(BitConverter.SingleToInt32Bits));
        Assert.Contains(actual, x => x != 0); // the group's outputs were written
    }

    private static double[] Reference(
        ReadOnlySpan<float> query, float[] keys, float[] values, int kvDim, int kvHead, int headDim, int[] table, int blockSize, int context)
    {
        var scores = new double[context];
        for (var t = 0; t < context; t++)
        {
            var slot = (table[t / blockSize] * blockSize) + (t % blockSize);
            double dot = 0;
            for (var i = 0; i < headDim; i++)
            {
                dot += (double)query[i] * keys[(slot * kvDim) + (kvHead * headDim) + i];
            }

            scores[t] = dot / Math.Sqrt(headDim);
        }

        var max = scores.Max();
        var sum = 0.0;
        for (var t = 0; t < context; t++)
        {
            scores[t] = Math.Exp(scores[t] - max);
            sum += scores[t];
        }

        var output = new double[headDim];
        for (var t = 0; t < context; t++)
        {
            var slot = (table[t / blockSize] * blockSize) + (t % blockSize);
            for (var i = 0; i < headDim; i++)
            {
                output[i] += scores[t] / sum * values[(slot * kvDim) + (kvHead * headDim) + i];
            }
        }

        return output;
    }
}
