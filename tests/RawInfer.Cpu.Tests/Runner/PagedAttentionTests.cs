using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.KvCache;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// Paged attention of one row for one KV head group against a naive double-precision reference on a contiguous
/// cache, with the sequence's blocks scattered over a shuffled pool; and on a half or bfloat16 cache, against the
/// float32 kernel run on the same rounded values (the same bits: the conversion is exact).
/// </summary>
public unsafe class PagedAttentionTests
{
    public static TheoryData<int, int, int, int> Cases()
    {
        var data = new TheoryData<int, int, int, int>();
        foreach (var headDim in new[] { 2, 16, 17, 32, 64 }) // 32: sqrt(headDim) not a power of two
        {
            foreach (var group in new[] { 1, 3 })
            {
                foreach (var context in new[] { 1, 17, 40 })
                {
                    foreach (var blockSize in new[] { 1, 4, 16 })
                    {
                        data.Add(headDim, group, context, blockSize);
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_the_reference_through_shuffled_blocks(int headDim, int group, int context, int blockSize)
    {
        const int KvHeads = 2;
        const int KvHead = 1; // the second head of each slot row, so the head offset matters
        var kvDim = KvHeads * headDim;
        var seed = (headDim * 1000) + (group * 100) + context + blockSize;

        // the sequence's K/V by position, contiguous: (context, kvDim); scaled so softmax is far from uniform
        var keys = Random(context * kvDim, seed, -2f, 2f);
        var values = Random(context * kvDim, seed + 1);
        var query = Random(group * headDim, seed + 2, -2f, 2f);

        // scatter the positions over a pool three times the size needed, through a shuffled block table
        var blocks = (context + blockSize - 1) / blockSize;
        var poolBlocks = 3 * blocks;
        var table = Enumerable.Range(0, poolBlocks).ToArray();
        new Random(seed).Shuffle(table);
        table = table[..blocks];
        var pooledKeys = Random(poolBlocks * blockSize * kvDim, seed + 3, 50f, 60f); // garbage that must not be read
        var pooledValues = Random(poolBlocks * blockSize * kvDim, seed + 4, 50f, 60f);
        for (var t = 0; t < context; t++)
        {
            var slot = (table[t / blockSize] * blockSize) + (t % blockSize);
            keys.AsSpan(t * kvDim, kvDim).CopyTo(pooledKeys.AsSpan(slot * kvDim));
            values.AsSpan(t * kvDim, kvDim).CopyTo(pooledValues.AsSpan(slot * kvDim));
        }

        var scoreStride = context + 3;
        var scores = new float[group * scoreStride];
        var output = new float[group * headDim];
        PagedAttention.Compute(
            query, pooledKeys, pooledValues, kvDim, KvHead, headDim, table, blockSize, context, scores, scoreStride, output);

        var expected = Reference(query, keys, values, kvDim, KvHead, headDim, context);
        AssertClose(expected, output, _ => 2e-6);

        // the same cache laid out contiguously (identity table) gives the same bits: layout never changes a result
        var contiguous = new float[group * headDim];
        var identity = Enumerable.Range(0, blocks).ToArray();
        var paddedKeys = new float[blocks * blockSize * kvDim];
        var paddedValues = new float[blocks * blockSize * kvDim];
        keys.CopyTo(paddedKeys, 0);
        values.CopyTo(paddedValues, 0);
        PagedAttention.Compute(
            query, paddedKeys, paddedValues, kvDim, KvHead, headDim, identity, blockSize, context, scores, scoreStride, contiguous);
        AssertSameBits(contiguous, output);

        // the dispatched kernel (a 512-bit or, without AVX-512, a 256-bit fast path where the head width allows) and the
        // generic one agree in bits
        var generic = new float[group * headDim];
        fixed (float* q = query)
        fixed (float* k = pooledKeys)
        fixed (float* v = pooledValues)
        fixed (float* s = scores)
        fixed (float* o = generic)
        {
            PagedAttention.Generic(
                q, group, headDim, new KvLayer(k, kvDim), new KvLayer(v, kvDim), null, KvHead, table, blockSize, context, s, scoreStride, o);
        }

        AssertSameBits(generic, output);
    }

    public static TheoryData<KvCacheType, int, int, int, int> SixteenBitCases()
    {
        var data = new TheoryData<KvCacheType, int, int, int, int>();
        foreach (var type in new[] { KvCacheType.F16, KvCacheType.BF16 })
        {
            foreach (var row in Cases())
            {
                var (headDim, group, context, blockSize) = row.Data;
                data.Add(type, headDim, group, context, blockSize);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SixteenBitCases))]
    public void A_16_bit_cache_gives_the_bits_of_a_float_cache_holding_the_rounded_values(
        KvCacheType type, int headDim, int group, int context, int blockSize)
    {
        const int KvHeads = 2;
        const int KvHead = 1;
        var kvDim = KvHeads * headDim;
        var seed = (headDim * 1000) + (group * 100) + context + blockSize + 7;
        var blocks = (context + blockSize - 1) / blockSize;
        var poolBlocks = 3 * blocks;
        var table = Enumerable.Range(0, poolBlocks).ToArray();
        new Random(seed).Shuffle(table);
        table = table[..blocks];

        // a pool of 16-bit values (that needed rounding, one subnormal as a half, and garbage in the slots not in the table)
        var keys = Random(poolBlocks * blockSize * kvDim, seed, -3f, 3f);
        var values = Random(poolBlocks * blockSize * kvDim, seed + 1);
        keys[kvDim + (KvHead * headDim)] = 3e-6f;
        var keyBits = Round(keys, type);
        var valueBits = Round(values, type);
        var roundedKeys = Widen(keyBits, type);
        var roundedValues = Widen(valueBits, type);
        var query = Random(group * headDim, seed + 2, -2f, 2f);

        var scoreStride = context + 1;
        var scores = new float[group * scoreStride];
        var expected = new float[group * headDim];
        PagedAttention.Compute(query, roundedKeys, roundedValues, kvDim, KvHead, headDim, table, blockSize, context, scores, scoreStride, expected);

        var dispatched = new float[group * headDim];
        var generic = new float[group * headDim];
        var scratch = new float[blockSize * headDim];
        fixed (float* q = query)
        fixed (ushort* k = keyBits)
        fixed (ushort* v = valueBits)
        fixed (float* s = scores)
        fixed (float* kv = scratch)
        fixed (float* o = dispatched)
        fixed (float* g = generic)
        {
            var keyLayer = type == KvCacheType.F16 ? new KvLayer((Half*)k, kvDim) : KvLayer.BFloat16(k, kvDim);
            var valueLayer = type == KvCacheType.F16 ? new KvLayer((Half*)v, kvDim) : KvLayer.BFloat16(v, kvDim);
            PagedAttention.Compute(q, group, headDim, keyLayer, valueLayer, kv, KvHead, table, blockSize, context, s, scoreStride, o);
            PagedAttention.Generic(q, group, headDim, keyLayer, valueLayer, kv, KvHead, table, blockSize, context, s, scoreStride, g);
        }

        AssertSameBits(expected, dispatched);
        AssertSameBits(expected, generic);
    }

    public static TheoryData<KvCacheType, int, int, int> TwoHeadCases()
    {
        var data = new TheoryData<KvCacheType, int, int, int>();
        foreach (var type in new[] { KvCacheType.F32, KvCacheType.F16, KvCacheType.BF16 })
        {
            foreach (var headDim in new[] { 16, 64, 80 })
            {
                foreach (var (context, blockSize) in new[] { (1, 16), (17, 4), (40, 16), (300, 16) })
                {
                    data.Add(type, headDim, context, blockSize);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TwoHeadCases))]
    public void Two_adjacent_heads_at_once_give_the_bits_of_one_at_a_time(KvCacheType type, int headDim, int context, int blockSize)
    {
        const int KvHeads = 4;
        const int FirstHead = 1; // heads 1 and 2 of each slot row
        var kvDim = KvHeads * headDim;
        var seed = (headDim * 100) + context + blockSize;
        var blocks = (context + blockSize - 1) / blockSize;
        var table = Enumerable.Range(0, 2 * blocks).ToArray();
        new Random(seed).Shuffle(table);
        table = table[..blocks];
        var keys = Random(2 * blocks * blockSize * kvDim, seed, -3f, 3f);
        var values = Random(2 * blocks * blockSize * kvDim, seed + 1);
        var keyBits = type == KvCacheType.F32 ? [] : Round(keys, type);
        var valueBits = type == KvCacheType.F32 ? [] : Round(values, type);
        var query = Random(2 * headDim, seed + 2, -2f, 2f);
        var scoreStride = context + 2;
        var scores = new float[2 * scoreStride];
        var expected = new float[2 * headDim];
        var actual = new float[2 * headDim];
        var scratch = new float[blockSize * headDim];
        fixed (float* q = query)
        fixed (float* kf = keys)
        fixed (float* vf = values)
        fixed (ushort* kb = keyBits)
        fixed (ushort* vb = valueBits)
        fixed (float* s = scores)
        fixed (float* kv = scratch)
        fixed (float* e = expected)
        fixed (float* a = actual)
        {
            var (keyLayer, valueLayer) = type switch
            {
                KvCacheType.F32 => (new KvLayer(kf, kvDim), new KvLayer(vf, kvDim)),
                KvCacheType.F16 => (new KvLayer((Half*)kb, kvDim), new KvLayer((Half*)vb, kvDim)),
                _ => (KvLayer.BFloat16(kb, kvDim), KvLayer.BFloat16(vb, kvDim)),
            };
            for (var j = 0; j < 2; j++)
            {
                PagedAttention.Compute(
                    q + (j * headDim), 1, headDim, keyLayer, valueLayer, kv, FirstHead + j, table, blockSize, context, s, scoreStride, e + (j * headDim));
            }

            PagedAttention.ComputeTwoHeads(q, headDim, keyLayer, valueLayer, kv, FirstHead, table, blockSize, context, s, scoreStride, a);
        }

        AssertSameBits(expected, actual);
        Assert.NotEqual(expected.AsSpan(0, headDim).ToArray(), expected.AsSpan(headDim, headDim).ToArray()); // two different heads
    }

    internal static ushort[] Round(float[] values, KvCacheType type) => type == KvCacheType.F16
        ? values.Select(x => BitConverter.HalfToUInt16Bits((Half)x)).ToArray()
        : values.Select(HalfConversion.SingleToBFloat16).ToArray();

    internal static float[] Widen(ushort[] bits, KvCacheType type) => type == KvCacheType.F16
        ? bits.Select(b => (float)BitConverter.UInt16BitsToHalf(b)).ToArray()
        : bits.Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)).ToArray();

    private static void AssertSameBits(float[] expected, float[] actual) =>
        Assert.Equal(
            expected.Select(BitConverter.SingleToInt32Bits).ToArray(), actual.Select(BitConverter.SingleToInt32Bits).ToArray());

    private static double[] Reference(
        float[] query, float[] keys, float[] values, int kvDim, int kvHead, int headDim, int context)
    {
        var group = query.Length / headDim;
        var output = new double[group * headDim];
        var weights = new double[context];
        for (var h = 0; h < group; h++)
        {
            var max = double.NegativeInfinity;
            for (var t = 0; t < context; t++)
            {
                double dot = 0;
                for (var i = 0; i < headDim; i++)
                {
                    dot += (double)query[(h * headDim) + i] * keys[(t * kvDim) + (kvHead * headDim) + i];
                }

                weights[t] = dot / Math.Sqrt(headDim);
                max = Math.Max(max, weights[t]);
            }

            double sum = 0;
            for (var t = 0; t < context; t++)
            {
                weights[t] = Math.Exp(weights[t] - max);
                sum += weights[t];
            }

            for (var t = 0; t < context; t++)
            {
                for (var i = 0; i < headDim; i++)
                {
                    output[(h * headDim) + i] += weights[t] / sum * values[(t * kvDim) + (kvHead * headDim) + i];
                }
            }
        }

        return output;
    }
}
