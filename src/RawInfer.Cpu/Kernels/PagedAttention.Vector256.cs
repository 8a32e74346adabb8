using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class PagedAttention
{
    /// <summary>
    /// False sends every row through <see cref="Generic"/> where <see cref="Vector256Path"/> would run (same bits);
    /// settable for <c>step-ab --switch attention-256</c>.
    /// </summary>
    internal static bool Vector256Enabled { get; set; } = true;

    /// <summary>
    /// True where <see cref="Vector256Path"/> stands in for <see cref="Generic"/>: no 512-bit vectors (so
    /// <see cref="Dot"/> and <see cref="Axpy"/> take their 256-bit paths), FMA, and a head width of whole 8-float chunks.
    /// </summary>
    internal static bool Narrow(int headDim) =>
        !Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated && Fma.IsSupported && headDim % Vector256<float>.Count == 0;

    /// <summary>
    /// <see cref="Generic"/> on AVX2 without a call, a span or a dispatch per score or value row: a score is one
    /// 8-lane accumulator over the head's chunks in order reduced by <see cref="Vector256.Sum{T}(Vector256{T})"/> and
    /// divided by sqrt(headDim) (<see cref="Dot"/>'s 256-bit path, which has no tail here), four positions' chains
    /// side by side; each output element takes one fused multiply-add per position in position order
    /// (<see cref="Axpy"/>'s), 32 elements held in registers across a block's positions. The same bits as
    /// <see cref="Generic"/>. A half cache's block is converted into the scratch first, as there. Arguments as the
    /// pointer overload of <c>Compute</c>. On the 2-core EPYC VM of family 17h (Zen 1, 2026-12-06), an engine step
    /// of 64 sequences with 128 tokens of context (Q8_0 110m, 2 threads) took 0.929 of <see cref="Generic"/>'s time,
    /// 16 sequences (F32) 0.944 (<c>step-ab --switch attention-256</c>, ABBA).
    /// </summary>
    internal static void Vector256Path(
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
        Debug.Assert(Narrow(headDim) && contextLength > 0 && contextLength <= scoreStride);
        Debug.Assert(blockTable.Length * blockSize >= contextLength);
        var sqrtHeadDim = MathF.Sqrt(headDim);
        var headOffset = kvHead * headDim;

        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var count = Math.Min(blockSize, contextLength - t);
            var key = keys.HeadRows((long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var keyStride);
            for (var h = 0; h < group; h++)
            {
                Scores(query + (h * headDim), headDim, key, keyStride, count, sqrtHeadDim, scores + ((long)h * scoreStride) + t);
            }

            t += count;
        }

        for (var h = 0; h < group; h++)
        {
            Softmax.InPlace(new Span<float>(scores + ((long)h * scoreStride), contextLength));
        }

        new Span<float>(output, group * headDim).Clear();
        for (int block = 0, t = 0; t < contextLength; block++)
        {
            var count = Math.Min(blockSize, contextLength - t);
            var value = values.HeadRows((long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var valueStride);
            for (var h = 0; h < group; h++)
            {
                Values(value, valueStride, scores + ((long)h * scoreStride) + t, count, output + (h * headDim), headDim);
            }

            t += count;
        }
    }

    /// <summary>s[i] = q·rows[i] / sqrtHeadDim for i in [0, count), each as <see cref="Dot"/> computes it on 256 bits.</summary>
    private static void Scores(float* q, int headDim, float* rows, int stride, int count, float sqrtHeadDim, float* s)
    {
        const int N = 8; // Vector256<float>.Count
        var i = 0;
        for (; i + 4 <= count; i += 4)
        {
            var k0 = rows + ((long)i * stride);
            var k1 = k0 + stride;
            var k2 = k1 + stride;
            var k3 = k2 + stride;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (var c = 0; c < headDim; c += N)
            {
                var x = Vector256.Load(q + c);
                a0 = Fma.MultiplyAdd(x, Vector256.Load(k0 + c), a0);
                a1 = Fma.MultiplyAdd(x, Vector256.Load(k1 + c), a1);
                a2 = Fma.MultiplyAdd(x, Vector256.Load(k2 + c), a2);
                a3 = Fma.MultiplyAdd(x, Vector256.Load(k3 + c), a3);
            }

            s[i] = Vector256.Sum(a0) / sqrtHeadDim;
            s[i + 1] = Vector256.Sum(a1) / sqrtHeadDim;
            s[i + 2] = Vector256.Sum(a2) / sqrtHeadDim;
            s[i + 3] = Vector256.Sum(a3) / sqrtHeadDim;
        }

        for (; i < count; i++)
        {
            var k = rows + ((long)i * stride);
            var a = Vector256<float>.Zero;
            for (var c = 0; c < headDim; c += N)
            {
                a = Fma.MultiplyAdd(Vector256.Load(q + c), Vector256.Load(k + c), a);
            }

            s[i] = Vector256.Sum(a) / sqrtHeadDim;
        }
    }

    /// <summary>output += Σ_i p[i] · rows[i] for i in [0, count): one fused multiply-add per element per row, in row order.</summary>
    internal static void Values(float* rows, int stride, float* p, int count, float* output, int width)
    {
        const int N = 8; // Vector256<float>.Count
        var c = 0;
        for (; c + (4 * N) <= width; c += 4 * N)
        {
            var o = output + c;
            var a0 = Vector256.Load(o);
            var a1 = Vector256.Load(o + N);
            var a2 = Vector256.Load(o + (2 * N));
            var a3 = Vector256.Load(o + (3 * N));
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                var w = Vector256.Create(p[i]);
                a0 = Fma.MultiplyAdd(w, Vector256.Load(row), a0);
                a1 = Fma.MultiplyAdd(w, Vector256.Load(row + N), a1);
                a2 = Fma.MultiplyAdd(w, Vector256.Load(row + (2 * N)), a2);
                a3 = Fma.MultiplyAdd(w, Vector256.Load(row + (3 * N)), a3);
            }

            a0.Store(o);
            a1.Store(o + N);
            a2.Store(o + (2 * N));
            a3.Store(o + (3 * N));
        }

        for (; c < width; c += N)
        {
            var acc = Vector256.Load(output + c);
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                acc = Fma.MultiplyAdd(Vector256.Create(p[i]), Vector256.Load(row), acc);
            }

            acc.Store(output + c);
        }
    }
}
