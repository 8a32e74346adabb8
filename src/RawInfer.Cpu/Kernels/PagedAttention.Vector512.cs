using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.KvCache;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class PagedAttention
{
    /// <summary>
    /// <see cref="Generic"/> for head widths that are a multiple of 16, without a call, a span or a dispatch per
    /// score: the same operations in the same order, so the same bits. A score is one accumulator over the head's
    /// 16-float chunks reduced in Vector512.Sum's tree (<see cref="Dot"/>'s 512-bit order, which has no tail here),
    /// and each output element takes one fused multiply-add per position in position order (<see cref="Axpy"/>'s).
    /// A half or bfloat16 cache is converted in registers as it is loaded when one query head reads each row
    /// (every element converted once, never stored); with a larger group a block is converted once into the
    /// scratch and every head reads it there. Arguments as the pointer overload of <c>Compute</c>.
    /// </summary>
    internal static void Vector512Path(
        float* q,
        int group,
        int headDim,
        KvLayer keys,
        KvLayer values,
        float* kvScratch,
        int kvHead,
        ReadOnlySpan<int> blockTable,
        int blockSize,
        int contextLength,
        float* s,
        int scoreStride,
        float* o)
    {
        Debug.Assert(headDim % Vector512<float>.Count == 0 && contextLength > 0 && contextLength <= scoreStride);
        Debug.Assert(blockTable.Length * blockSize >= contextLength);
        if (group > 1 || keys.Type == KvCacheType.F32 || !Avx512F.IsSupported)
        {
            Blocks<F32Rows>(q, group, headDim, keys, values, kvScratch, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
        else if (keys.Type == KvCacheType.F16)
        {
            Blocks<F16Rows>(q, group, headDim, keys, values, null, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
        else
        {
            Blocks<BF16Rows>(q, group, headDim, keys, values, null, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
    }

    /// <summary>
    /// Two adjacent KV heads (kvHead, kvHead + 1) of a row whose group is one query head each, together: query,
    /// output (2, headDim) and scores (2, scoreStride). Each head's arithmetic is <see cref="Vector512Path"/>'s, so
    /// the same bits; the value sums of both heads run side by side, eight independent FMA chains instead of four,
    /// which is what bounds a single head's value pass (each element sums the positions one after another).
    /// </summary>
    internal static void Vector512TwoHeads(
        float* q, int headDim, KvLayer keys, KvLayer values, int kvHead, ReadOnlySpan<int> blockTable, int blockSize,
        int contextLength, float* s, int scoreStride, float* o)
    {
        Debug.Assert(headDim % Vector512<float>.Count == 0 && contextLength > 0 && contextLength <= scoreStride);
        if (keys.Type == KvCacheType.F32 || !Avx512F.IsSupported)
        {
            TwoHeads<F32Rows>(q, headDim, keys, values, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
        else if (keys.Type == KvCacheType.F16)
        {
            TwoHeads<F16Rows>(q, headDim, keys, values, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
        else
        {
            TwoHeads<BF16Rows>(q, headDim, keys, values, kvHead, blockTable, blockSize, contextLength, s, scoreStride, o);
        }
    }

    private static void TwoHeads<TRows>(
        float* q, int headDim, KvLayer keys, KvLayer values, int kvHead, ReadOnlySpan<int> blockTable, int blockSize,
        int contextLength, float* s, int scoreStride, float* o)
        where TRows : struct, IKvRows
    {
        Debug.Assert(typeof(TRows) != typeof(F32Rows) || keys.Type == KvCacheType.F32);
        var sqrtHeadDim = MathF.Sqrt(headDim);
        var headOffset = kvHead * headDim;
        var headBytes = (long)headDim * TRows.ElementBytes;

        // scores[j, t] = q_j · k_t / sqrt(headDim) for both heads j, eight keys at a time (as Blocks)
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var count = Math.Min(blockSize, contextLength - t);
            var keyRows = Rows<TRows>(keys, (long)blockTable[block] * blockSize, count, headOffset, headDim, null, out var keyStride);
            for (var j = 0; j < 2; j++)
            {
                ScoreBlock<TRows>(q + (j * headDim), keyRows + (j * headBytes), keyStride, count, headDim, sqrtHeadDim, s + ((long)j * scoreStride) + t);
            }

            t += count;
        }

        Softmax.InPlace(new Span<float>(s, contextLength));
        Softmax.InPlace(new Span<float>(s + scoreStride, contextLength));

        // output_j = Σ_t p[j, t] · v_t in position order, both heads' sums side by side
        new Span<float>(o, 2 * headDim).Clear();
        for (int block = 0, t0 = 0; t0 < contextLength; block++, t0 += blockSize)
        {
            var count = Math.Min(blockSize, contextLength - t0);
            var valueRows = Rows<TRows>(values, (long)blockTable[block] * blockSize, count, headOffset, headDim, null, out var valueStride);
            AccumulateValuesTwoHeads<TRows>(valueRows, valueStride, s + t0, s + scoreStride + t0, count, o, headDim);
        }
    }

    /// <summary>
    /// out[0..headDim) += Σ_i p0[i] · rows[i][0..headDim) and out[headDim..2·headDim) += Σ_i p1[i] · rows[i][headDim..):
    /// <see cref="AccumulateValues{TRows}"/> for two heads whose columns are adjacent, each element's chain the same.
    /// </summary>
    private static void AccumulateValuesTwoHeads<TRows>(byte* rows, long stride, float* p0, float* p1, int count, float* output, int headDim)
        where TRows : struct, IKvRows
    {
        const int N = 16; // Vector512<float>.Count
        var c = 0;
        var o0 = output;
        var o1 = output + headDim;
        for (; c + (4 * N) <= headDim; c += 4 * N)
        {
            var a0 = Vector512.Load(o0 + c);
            var a1 = Vector512.Load(o0 + c + N);
            var a2 = Vector512.Load(o0 + c + (2 * N));
            var a3 = Vector512.Load(o0 + c + (3 * N));
            var b0 = Vector512.Load(o1 + c);
            var b1 = Vector512.Load(o1 + c + N);
            var b2 = Vector512.Load(o1 + c + (2 * N));
            var b3 = Vector512.Load(o1 + c + (3 * N));
            var d = headDim + c;
            var row = rows;
            for (var i = 0; i < count; i++, row += stride)
            {
                var w0 = Vector512.Create(p0[i]);
                var w1 = Vector512.Create(p1[i]);
                a0 = Simd.MulAdd(w0, TRows.Load16(row, c), a0);
                a1 = Simd.MulAdd(w0, TRows.Load16(row, c + N), a1);
                a2 = Simd.MulAdd(w0, TRows.Load16(row, c + (2 * N)), a2);
                a3 = Simd.MulAdd(w0, TRows.Load16(row, c + (3 * N)), a3);
                b0 = Simd.MulAdd(w1, TRows.Load16(row, d), b0);
                b1 = Simd.MulAdd(w1, TRows.Load16(row, d + N), b1);
                b2 = Simd.MulAdd(w1, TRows.Load16(row, d + (2 * N)), b2);
                b3 = Simd.MulAdd(w1, TRows.Load16(row, d + (3 * N)), b3);
            }

            a0.Store(o0 + c);
            a1.Store(o0 + c + N);
            a2.Store(o0 + c + (2 * N));
            a3.Store(o0 + c + (3 * N));
            b0.Store(o1 + c);
            b1.Store(o1 + c + N);
            b2.Store(o1 + c + (2 * N));
            b3.Store(o1 + c + (3 * N));
        }

        for (; c < headDim; c += N)
        {
            var a = Vector512.Load(o0 + c);
            var b = Vector512.Load(o1 + c);
            var row = rows;
            for (var i = 0; i < count; i++, row += stride)
            {
                a = Simd.MulAdd(Vector512.Create(p0[i]), TRows.Load16(row, c), a);
                b = Simd.MulAdd(Vector512.Create(p1[i]), TRows.Load16(row, headDim + c), b);
            }

            a.Store(o0 + c);
            b.Store(o1 + c);
        }
    }

    /// <summary>
    /// The kernel, block by block. TRows reads 16 elements of a row as float32: <see cref="F32Rows"/> for a float32
    /// cache or for rows already converted into <paramref name="kvScratch"/> (non-null for a 16-bit cache then);
    /// <see cref="F16Rows"/> / <see cref="BF16Rows"/> convert in registers, straight from the cache.
    /// </summary>
    private static void Blocks<TRows>(
        float* q, int group, int headDim, KvLayer keys, KvLayer values, float* kvScratch, int kvHead,
        ReadOnlySpan<int> blockTable, int blockSize, int contextLength, float* s, int scoreStride, float* o)
        where TRows : struct, IKvRows
    {
        var sqrtHeadDim = MathF.Sqrt(headDim);
        var headOffset = kvHead * headDim;

        // scores[h, t] = q_h · k_t / sqrt(headDim), eight keys of a block at a time (their eight sums reduced
        // together); the block's key rows stay in L1 for the whole group
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var count = Math.Min(blockSize, contextLength - t);
            var keyRows = Rows<TRows>(keys, (long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var keyStride);
            for (var h = 0; h < group; h++)
            {
                ScoreBlock<TRows>(q + (h * headDim), keyRows, keyStride, count, headDim, sqrtHeadDim, s + ((long)h * scoreStride) + t);
            }

            t += count;
        }

        // softmax over positions 0 .. contextLength-1, per head
        for (var h = 0; h < group; h++)
        {
            Softmax.InPlace(new Span<float>(s + ((long)h * scoreStride), contextLength));
        }

        // output_h = Σ_t p[h, t] · v_t, in position order. Block by block: a block's value rows come from memory
        // once and stay in L1 while every head of the group passes them; within a block a head keeps its output
        // in registers (storing and reloading between blocks changes no bits).
        new Span<float>(o, group * headDim).Clear();
        for (int block = 0, t0 = 0; t0 < contextLength; block++, t0 += blockSize)
        {
            var count = Math.Min(blockSize, contextLength - t0);
            var valueRows = Rows<TRows>(values, (long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var valueStride);
            for (var h = 0; h < group; h++)
            {
                AccumulateValues<TRows>(valueRows, valueStride, s + ((long)h * scoreStride) + t0, count, o + (h * headDim), headDim);
            }
        }
    }

    /// <summary>The block's rows of the head as TRows reads them: (byte pointer, byte stride).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static byte* Rows<TRows>(KvLayer layer, long slot, int count, int headOffset, int headDim, float* scratch, out long strideBytes)
        where TRows : struct, IKvRows
    {
        if (typeof(TRows) == typeof(F32Rows))
        {
            var rows = layer.HeadRows(slot, count, headOffset, headDim, scratch, out var stride);
            strideBytes = (long)stride * sizeof(float);
            return (byte*)rows;
        }

        return layer.RawRows(slot, headOffset, out strideBytes);
    }

    /// <summary>
    /// scores[i] = q·key_i / sqrt(headDim) for the count key rows of a block (byte stride keyStride): eight at a time
    /// through <see cref="Scores8Keys{TRows}"/>, the rest one by one, the same bits either way.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScoreBlock<TRows>(float* q, byte* keyRows, long keyStride, int count, int headDim, float sqrtHeadDim, float* scores)
        where TRows : struct, IKvRows
    {
        var i = 0;
        for (; i + 8 <= count; i += 8)
        {
            Scores8Keys<TRows>(q, keyRows + (i * keyStride), keyStride, headDim, Vector256.Create(sqrtHeadDim), scores + i);
        }

        for (; i < count; i++)
        {
            scores[i] = Score<TRows>(q, keyRows + (i * keyStride), headDim) / sqrtHeadDim;
        }
    }

    /// <summary>q·key over the head's chunks, one accumulator, reduced in Vector512.Sum's tree.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Score<TRows>(float* q, byte* key, int headDim)
        where TRows : struct, IKvRows
    {
        const int N = 16; // Vector512<float>.Count
        var acc = Vector512<float>.Zero;
        for (var c = 0; c < headDim; c += N)
        {
            acc = Simd.MulAdd(Vector512.Load(q + c), TRows.Load16(key, c), acc);
        }

        return Vector512.Sum(acc);
    }

    /// <summary>
    /// scores[i] = q·key_i / sqrt(headDim) for eight key rows (byte stride keyStride): one accumulator per key over
    /// the head's 16-float chunks in order, the eight reduced together by <see cref="GemmF32.Reduce8"/> (each in
    /// Vector512.Sum's tree), then divided lane by lane: the bits of <see cref="Score{TRows}"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scores8Keys<TRows>(float* q, byte* key, long keyStride, int headDim, Vector256<float> sqrtHeadDim, float* scores)
        where TRows : struct, IKvRows
    {
        const int N = 16; // Vector512<float>.Count
        var k0 = key;
        var k1 = k0 + keyStride;
        var k2 = k1 + keyStride;
        var k3 = k2 + keyStride;
        var k4 = k3 + keyStride;
        var k5 = k4 + keyStride;
        var k6 = k5 + keyStride;
        var k7 = k6 + keyStride;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (var c = 0; c < headDim; c += N)
        {
            var qc = Vector512.Load(q + c);
            a0 = Simd.MulAdd(qc, TRows.Load16(k0, c), a0);
            a1 = Simd.MulAdd(qc, TRows.Load16(k1, c), a1);
            a2 = Simd.MulAdd(qc, TRows.Load16(k2, c), a2);
            a3 = Simd.MulAdd(qc, TRows.Load16(k3, c), a3);
            a4 = Simd.MulAdd(qc, TRows.Load16(k4, c), a4);
            a5 = Simd.MulAdd(qc, TRows.Load16(k5, c), a5);
            a6 = Simd.MulAdd(qc, TRows.Load16(k6, c), a6);
            a7 = Simd.MulAdd(qc, TRows.Load16(k7, c), a7);
        }

        (GemmF32.Reduce8(a0, a1, a2, a3, a4, a5, a6, a7) / sqrtHeadDim).Store(scores);
    }

    /// <summary>
    /// out += Σ_i p[i] · rows[i] for i in [0, count), one fused multiply-add per element per row in row order.
    /// rows: count rows of byte stride <paramref name="stride"/>; p: (count); out: (width), width a multiple of 16.
    /// </summary>
    private static void AccumulateValues<TRows>(byte* rows, long stride, float* p, int count, float* output, int width)
        where TRows : struct, IKvRows
    {
        const int N = 16; // Vector512<float>.Count
        var c = 0;

        // four independent chains (64 floats) at a time hide the FMA latency
        for (; c + (4 * N) <= width; c += 4 * N)
        {
            var o = output + c;
            var a0 = Vector512.Load(o);
            var a1 = Vector512.Load(o + N);
            var a2 = Vector512.Load(o + (2 * N));
            var a3 = Vector512.Load(o + (3 * N));
            var row = rows;
            for (var i = 0; i < count; i++, row += stride)
            {
                var weight = Vector512.Create(p[i]);
                a0 = Simd.MulAdd(weight, TRows.Load16(row, c), a0);
                a1 = Simd.MulAdd(weight, TRows.Load16(row, c + N), a1);
                a2 = Simd.MulAdd(weight, TRows.Load16(row, c + (2 * N)), a2);
                a3 = Simd.MulAdd(weight, TRows.Load16(row, c + (3 * N)), a3);
            }

            a0.Store(o);
            a1.Store(o + N);
            a2.Store(o + (2 * N));
            a3.Store(o + (3 * N));
        }

        for (; c < width; c += N)
        {
            var acc = Vector512.Load(output + c);
            var row = rows;
            for (var i = 0; i < count; i++, row += stride)
            {
                acc = Simd.MulAdd(Vector512.Create(p[i]), TRows.Load16(row, c), acc);
            }

            acc.Store(output + c);
        }
    }

    /// <summary>Reads 16 elements of a K or V row, from element <c>column</c>, as float32 (a JIT-time constant type).</summary>
    private interface IKvRows
    {
        static abstract int ElementBytes { get; }

        static abstract Vector512<float> Load16(byte* row, int column);
    }

    /// <summary>float32 rows (the cache's own, or a 16-bit block converted into scratch).</summary>
    private readonly struct F32Rows : IKvRows
    {
        public static int ElementBytes => sizeof(float);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int column) => Vector512.Load((float*)row + column);
    }

    /// <summary>IEEE half rows: VPMOVSXWD, then the exact conversion (Inf/NaN included).</summary>
    private readonly struct F16Rows : IKvRows
    {
        public static int ElementBytes => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int column) =>
            HalfConversion.SignExtendedHalfToSingle(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)row + column)));
    }

    /// <summary>bfloat16 rows: VPMOVZXWD and a shift.</summary>
    private readonly struct BF16Rows : IKvRows
    {
        public static int ElementBytes => 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load16(byte* row, int column) =>
            (Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + column)) << 16).AsSingle();
    }
}
