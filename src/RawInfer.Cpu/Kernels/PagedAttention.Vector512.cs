using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class PagedAttention
{
    /// <summary>
    /// <see cref="Generic"/> for head widths that are a multiple of 16, without a call, a span or a dispatch per
    /// score: the same operations in the same order, so the same bits. A score is one accumulator over the head's
    /// 16-float chunks reduced with Vector512.Sum (<see cref="Dot"/>'s 512-bit order, which has no tail here), and
    /// each output element takes one fused multiply-add per position in position order (<see cref="Axpy"/>'s).
    /// Arguments as <see cref="Compute"/>.
    /// </summary>
    internal static void Vector512Path(
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
        const int N = 16; // Vector512<float>.Count
        var group = query.Length / headDim;
        Debug.Assert(headDim % N == 0 && group * headDim == query.Length && output.Length == query.Length);
        Debug.Assert(contextLength > 0 && contextLength <= scoreStride && scores.Length >= group * scoreStride);
        Debug.Assert(blockTable.Length * blockSize >= contextLength);
        var sqrtHeadDim = MathF.Sqrt(headDim);
        var headOffset = kvHead * headDim;

        fixed (float* q = &MemoryMarshal.GetReference(query))
        fixed (float* k = &MemoryMarshal.GetReference(keys))
        fixed (float* v = &MemoryMarshal.GetReference(values))
        fixed (float* s = &MemoryMarshal.GetReference(scores))
        fixed (float* o = &MemoryMarshal.GetReference(output))
        {
            // scores[h, t] = q_h · k_t / sqrt(headDim); the key row stays in L1 for the whole group
            for (int block = 0, t = 0; t < contextLength; block++)
            {
                var slot = (long)blockTable[block] * blockSize;
                var end = Math.Min(t + blockSize, contextLength);
                for (; t < end; t++, slot++)
                {
                    var key = k + (slot * kvDim) + headOffset;
                    for (var h = 0; h < group; h++)
                    {
                        var qh = q + (h * headDim);
                        var acc = Vector512<float>.Zero;
                        for (var c = 0; c < headDim; c += N)
                        {
                            acc = Simd.MulAdd(Vector512.Load(qh + c), Vector512.Load(key + c), acc);
                        }

                        s[(h * scoreStride) + t] = Vector512.Sum(acc) / sqrtHeadDim;
                    }
                }
            }

            // softmax over positions 0 .. contextLength-1, per head
            for (var h = 0; h < group; h++)
            {
                Softmax.InPlace(scores.Slice(h * scoreStride, contextLength));
            }

            // output_h = Σ_t p[h, t] · v_t, in position order. Block by block: a block's value rows come from memory
            // once and stay in L1 while every head of the group passes them; within a block a head keeps its output
            // in registers (storing and reloading between blocks changes no bits).
            output.Clear();
            for (int block = 0, t0 = 0; t0 < contextLength; block++, t0 += blockSize)
            {
                var blockValues = v + ((long)blockTable[block] * blockSize * kvDim) + headOffset;
                var count = Math.Min(blockSize, contextLength - t0);
                for (var h = 0; h < group; h++)
                {
                    AccumulateValues(blockValues, kvDim, s + (h * scoreStride) + t0, count, o + (h * headDim), headDim);
                }
            }
        }
    }

    /// <summary>
    /// out += Σ_i p[i] · rows[i] for i in [0, count), one fused multiply-add per element per row in row order.
    /// rows: count rows of stride <paramref name="stride"/>; p: (count); out: (width), width a multiple of 16.
    /// </summary>
    private static void AccumulateValues(float* rows, int stride, float* p, int count, float* output, int width)
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
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                var weight = Vector512.Create(p[i]);
                a0 = Simd.MulAdd(weight, Vector512.Load(row), a0);
                a1 = Simd.MulAdd(weight, Vector512.Load(row + N), a1);
                a2 = Simd.MulAdd(weight, Vector512.Load(row + (2 * N)), a2);
                a3 = Simd.MulAdd(weight, Vector512.Load(row + (3 * N)), a3);
            }

            a0.Store(o);
            a1.Store(o + N);
            a2.Store(o + (2 * N));
            a3.Store(o + (3 * N));
        }

        for (; c < width; c += N)
        {
            var acc = Vector512.Load(output + c);
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                acc = Simd.MulAdd(Vector512.Create(p[i]), Vector512.Load(row), acc);
            }

            acc.Store(output + c);
        }
    }
}
