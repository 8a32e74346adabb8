using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// Causal attention for a run of consecutive rows of one sequence (part of a prefill chunk) and one KV head:
/// every query head of the KV head's group, for every row of the run, against each cached key and value row
/// loaded once. Scores are taken eight query vectors at a time and their eight sums reduced together
/// (<see cref="GemmF32.Reduce8"/>) instead of one horizontal sum per score.
/// <para>
/// The arithmetic per (row, head) is exactly <see cref="PagedAttention"/>'s 512-bit path: a score is one
/// accumulator over the head's 16-float chunks in order with its lanes summed in Vector512.Sum's tree, divided
/// by sqrt(headDim); a max-shifted <see cref="Softmax"/> over the row's own context; each output element one
/// fused multiply-add per position in position order. So a row's output has the same bits whether it is
/// attended here, alone in a decode step, or in a chunk split elsewhere. A half cache's blocks are converted
/// exactly to float32 one head slice at a time (<see cref="KvLayer"/>), so the same holds on it.
/// With AVX-512, headDim a multiple of 16; on AVX2 alone (<c>PrefillAttention.Vector256.cs</c>) the same structure
/// on 256 bits matches the decode kernel's portable path there, headDim a multiple of 8.
/// </para>
/// </summary>
internal static unsafe partial class PrefillAttention
{
    /// <summary>Rows a run takes at most: with one query head per KV head, one 8-vector score tile.</summary>
    public const int MaxRows = 8;

    /// <summary>
    /// False sends every row through <see cref="PagedAttention"/> alone, as a machine without this kernel does: the
    /// same bits. Settable for <c>step-ab --switch prefill-runs</c>.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>True when the machine and head width suit <see cref="Compute"/>.</summary>
    public static bool Supports(int headDim) => Wide(headDim) || Narrow(headDim);

    /// <summary>The 512-bit kernel, whose bits are <see cref="PagedAttention"/>'s 512-bit path's.</summary>
    private static bool Wide(int headDim) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && headDim % Vector512<float>.Count == 0;

    /// <summary>
    /// output[r, h] = Σ_t softmax_t(q[r, h]·k_t / sqrt(headDim)) · v_t over t in [0, firstContext + r).
    /// </summary>
    /// <param name="q">Row r's group at q + r·rowStride: (group, headDim) rotated query heads of this KV head.</param>
    /// <param name="output">Same layout as <paramref name="q"/>.</param>
    /// <param name="rowStride">Floats between rows of q and output (the model dim).</param>
    /// <param name="rows">Rows of the run, at consecutive positions, 1 ≤ rows ≤ <see cref="MaxRows"/>.</param>
    /// <param name="group">Query heads per KV head.</param>
    /// <param name="headDim">Head width, a multiple of 16.</param>
    /// <param name="keys">(slots, kvDim) one layer's keys.</param>
    /// <param name="values">(slots, kvDim) one layer's values.</param>
    /// <param name="kvScratch">(blockSize, headDim) floats for a half cache's converted rows; unused for float32.</param>
    /// <param name="kvHead">Which KV head of a slot row to read.</param>
    /// <param name="blockTable">Logical → physical block of the sequence.</param>
    /// <param name="blockSize">Slots per block.</param>
    /// <param name="firstContext">Positions the first row attends (its position + 1).</param>
    /// <param name="scores">(rows·group, scoreStride) scratch, scoreStride ≥ firstContext + rows − 1.</param>
    /// <param name="scoreStride">Row stride of <paramref name="scores"/>.</param>
    public static void Compute(
        float* q, float* output, int rowStride, int rows, int group, int headDim,
        KvLayer keys, KvLayer values, float* kvScratch, int kvHead, ReadOnlySpan<int> blockTable, int blockSize,
        int firstContext, float* scores, int scoreStride)
    {
        Debug.Assert(Supports(headDim) && rows >= 1 && rows <= MaxRows && firstContext >= 1);
        var vectors = rows * group;
        var contextEnd = firstContext + rows - 1;
        Debug.Assert(contextEnd <= scoreStride && blockTable.Length * blockSize >= contextEnd);
        var headOffset = kvHead * headDim;
        var sqrtHeadDim = Vector256.Create(MathF.Sqrt(headDim));
        var wide = Wide(headDim);

        // vector v = r·group + h: its row, its query and its output, worked out once here rather than per key
        // (the division by a run-time group size cost more than the key's multiply-adds)
        var rowOf = stackalloc int[vectors];
        var queries = stackalloc float*[vectors];
        var outputs = stackalloc float*[vectors];
        for (var v = 0; v < vectors; v++)
        {
            var r = v / group;
            var offset = ((long)r * rowStride) + ((v - (r * group)) * headDim);
            rowOf[v] = r;
            queries[v] = q + offset;
            outputs[v] = output + offset;
        }

        // scores[v, t] = q_v · k_t / sqrt(headDim) for every vector v = r·group + h, up to the last row's context
        // (a row's positions past its own context are computed but never read)
        for (int block = 0, t = 0; t < contextEnd; block++)
        {
            var count = Math.Min(blockSize, contextEnd - t);
            var key = keys.HeadRows((long)blockTable[block] * blockSize, count, headOffset, headDim, kvScratch, out var keyStride);
            for (var end = t + count; t < end; t++, key += keyStride)
            {
                for (var v0 = 0; v0 < vectors; v0 += 8)
                {
                    if (wide)
                    {
                        Scores8(queries + v0, Math.Min(8, vectors - v0), headDim, key, sqrtHeadDim, scores + ((long)v0 * scoreStride) + t, scoreStride);
                    }
                    else
                    {
                        Scores8Narrow(queries + v0, Math.Min(8, vectors - v0), headDim, key, sqrtHeadDim.ToScalar(), scores + ((long)v0 * scoreStride) + t, scoreStride);
                    }
                }
            }
        }

        // softmax per vector over its row's own context
        for (var v = 0; v < vectors; v++)
        {
            Softmax.InPlace(new Span<float>(scores + ((long)v * scoreStride), firstContext + rowOf[v]));
        }

        // output_v = Σ_t p[v, t] · v_t in position order; each block of value rows is loaded once for the run
        for (var r = 0; r < rows; r++)
        {
            new Span<float>(output + ((long)r * rowStride), group * headDim).Clear();
        }

        for (int block = 0, t0 = 0; t0 < contextEnd; block++, t0 += blockSize)
        {
            var blockValues = values.HeadRows(
                (long)blockTable[block] * blockSize, Math.Min(blockSize, contextEnd - t0), headOffset, headDim, kvScratch, out var valueStride);
            var v = 0;
            if (GroupedValues)
            {
                for (; v + 4 <= vectors; v += 4)
                {
                    // the four vectors' positions in this block: counts never fall from one vector to the next, so
                    // the first vector's are common to all four; each takes the rest of its own alone, in order
                    var common = Math.Max(0, Math.Min(blockSize, firstContext + rowOf[v] - t0));
                    if (common > 0 && wide)
                    {
                        AccumulateValues4(blockValues, valueStride, scores + ((long)v * scoreStride) + t0, scoreStride, common, outputs + v, headDim);
                    }
                    else if (common > 0)
                    {
                        AccumulateValues4Narrow(blockValues, valueStride, scores + ((long)v * scoreStride) + t0, scoreStride, common, outputs + v, headDim);
                    }

                    for (var k = v; k < v + 4; k++)
                    {
                        var count = Math.Min(blockSize, firstContext + rowOf[k] - t0);
                        if (count > common)
                        {
                            Accumulate(
                                wide, blockValues + ((long)common * valueStride), valueStride, scores + ((long)k * scoreStride) + t0 + common,
                                count - common, outputs[k], headDim);
                        }
                    }
                }
            }

            for (; v < vectors; v++)
            {
                var count = Math.Min(blockSize, firstContext + rowOf[v] - t0);
                if (count > 0)
                {
                    Accumulate(wide, blockValues, valueStride, scores + ((long)v * scoreStride) + t0, count, outputs[v], headDim);
                }
            }
        }
    }

    /// <summary>
    /// False sends every vector through the value pass alone (four FMA chains, each waiting on its own last
    /// multiply-add), as before <see cref="AccumulateValues4"/>: for benchmarks that compare both in one run. The
    /// same bits either way. One layer's attention of a 512-token prefill, grouped and not
    /// (<c>perf/RawInfer.Benchmarks step-ab --switch values --prompt 512 --part attention</c>, one thread, the
    /// 2-core Xeon VM, four ABBA runs): 0.93–0.96 of the time. The scores, about half of that time, are bound by
    /// the per-score reduction tree that keeps them bit-equal to the decode kernel's.
    /// </summary>
    internal static bool GroupedValues { get; set; } = true;

    /// <summary>
    /// scores[i·stride] = queries[i]·key / sqrt(headDim) for i &lt; count (≤ 8); scores points at the first vector's
    /// column t.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scores8(
        float** queries, int count, int headDim, float* key, Vector256<float> sqrtHeadDim, float* scores, int scoreStride)
    {
        const int N = 16; // Vector512<float>.Count
        var q0 = queries[0];
        var q1 = count > 1 ? queries[1] : q0; // past count, the first query again (its score is not stored)
        var q2 = count > 2 ? queries[2] : q0;
        var q3 = count > 3 ? queries[3] : q0;
        var q4 = count > 4 ? queries[4] : q0;
        var q5 = count > 5 ? queries[5] : q0;
        var q6 = count > 6 ? queries[6] : q0;
        var q7 = count > 7 ? queries[7] : q0;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (var c = 0; c < headDim; c += N)
        {
            var k = Vector512.Load(key + c);
            a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(q0 + c), k, a0);
            a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(q1 + c), k, a1);
            a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(q2 + c), k, a2);
            a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(q3 + c), k, a3);
            a4 = Avx512F.FusedMultiplyAdd(Vector512.Load(q4 + c), k, a4);
            a5 = Avx512F.FusedMultiplyAdd(Vector512.Load(q5 + c), k, a5);
            a6 = Avx512F.FusedMultiplyAdd(Vector512.Load(q6 + c), k, a6);
            a7 = Avx512F.FusedMultiplyAdd(Vector512.Load(q7 + c), k, a7);
        }

        // IEEE division is correctly rounded lane by lane, so this is the scalar Sum / sqrt of the 512-bit path
        var s = GemmF32.Reduce8(a0, a1, a2, a3, a4, a5, a6, a7) / sqrtHeadDim;
        var row = scores;
        for (var i = 0; i < count; i++, row += scoreStride)
        {
            *row = s.GetElement(i);
        }
    }

    /// <summary>
    /// <see cref="AccumulateValues"/> for four vectors over the same positions: output_k += Σ_i p_k[i] · rows[i] for
    /// i in [0, count), p_k = p + k·pStride. Each element is still one chain of multiply-adds in position order (the
    /// same bits); the four vectors' sixteen chains run side by side and share each value row's loads, where a
    /// vector alone has four chains and waits on the multiply-add latency.
    /// </summary>
    private static void AccumulateValues4(float* rows, int stride, float* p, int pStride, int count, float** outputs, int width)
    {
        const int N = 16; // Vector512<float>.Count
        var p0 = p;
        var p1 = p0 + pStride;
        var p2 = p1 + pStride;
        var p3 = p2 + pStride;
        var c = 0;
        for (; c + (4 * N) <= width; c += 4 * N)
        {
            var o0 = outputs[0] + c;
            var o1 = outputs[1] + c;
            var o2 = outputs[2] + c;
            var o3 = outputs[3] + c;
            Vector512<float> a00 = Vector512.Load(o0), a01 = Vector512.Load(o0 + N), a02 = Vector512.Load(o0 + (2 * N)), a03 = Vector512.Load(o0 + (3 * N));
            Vector512<float> a10 = Vector512.Load(o1), a11 = Vector512.Load(o1 + N), a12 = Vector512.Load(o1 + (2 * N)), a13 = Vector512.Load(o1 + (3 * N));
            Vector512<float> a20 = Vector512.Load(o2), a21 = Vector512.Load(o2 + N), a22 = Vector512.Load(o2 + (2 * N)), a23 = Vector512.Load(o2 + (3 * N));
            Vector512<float> a30 = Vector512.Load(o3), a31 = Vector512.Load(o3 + N), a32 = Vector512.Load(o3 + (2 * N)), a33 = Vector512.Load(o3 + (3 * N));
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                var r0 = Vector512.Load(row);
                var r1 = Vector512.Load(row + N);
                var r2 = Vector512.Load(row + (2 * N));
                var r3 = Vector512.Load(row + (3 * N));
                var w = Vector512.Create(p0[i]);
                a00 = Avx512F.FusedMultiplyAdd(w, r0, a00);
                a01 = Avx512F.FusedMultiplyAdd(w, r1, a01);
                a02 = Avx512F.FusedMultiplyAdd(w, r2, a02);
                a03 = Avx512F.FusedMultiplyAdd(w, r3, a03);
                w = Vector512.Create(p1[i]);
                a10 = Avx512F.FusedMultiplyAdd(w, r0, a10);
                a11 = Avx512F.FusedMultiplyAdd(w, r1, a11);
                a12 = Avx512F.FusedMultiplyAdd(w, r2, a12);
                a13 = Avx512F.FusedMultiplyAdd(w, r3, a13);
                w = Vector512.Create(p2[i]);
                a20 = Avx512F.FusedMultiplyAdd(w, r0, a20);
                a21 = Avx512F.FusedMultiplyAdd(w, r1, a21);
                a22 = Avx512F.FusedMultiplyAdd(w, r2, a22);
                a23 = Avx512F.FusedMultiplyAdd(w, r3, a23);
                w = Vector512.Create(p3[i]);
                a30 = Avx512F.FusedMultiplyAdd(w, r0, a30);
                a31 = Avx512F.FusedMultiplyAdd(w, r1, a31);
                a32 = Avx512F.FusedMultiplyAdd(w, r2, a32);
                a33 = Avx512F.FusedMultiplyAdd(w, r3, a33);
            }

            a00.Store(o0);
            a01.Store(o0 + N);
            a02.Store(o0 + (2 * N));
            a03.Store(o0 + (3 * N));
            a10.Store(o1);
            a11.Store(o1 + N);
            a12.Store(o1 + (2 * N));
            a13.Store(o1 + (3 * N));
            a20.Store(o2);
            a21.Store(o2 + N);
            a22.Store(o2 + (2 * N));
            a23.Store(o2 + (3 * N));
            a30.Store(o3);
            a31.Store(o3 + N);
            a32.Store(o3 + (2 * N));
            a33.Store(o3 + (3 * N));
        }

        for (; c < width; c += N)
        {
            Vector512<float> a0 = Vector512.Load(outputs[0] + c), a1 = Vector512.Load(outputs[1] + c);
            Vector512<float> a2 = Vector512.Load(outputs[2] + c), a3 = Vector512.Load(outputs[3] + c);
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                var r = Vector512.Load(row);
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Create(p0[i]), r, a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Create(p1[i]), r, a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Create(p2[i]), r, a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Create(p3[i]), r, a3);
            }

            a0.Store(outputs[0] + c);
            a1.Store(outputs[1] + c);
            a2.Store(outputs[2] + c);
            a3.Store(outputs[3] + c);
        }
    }

    /// <summary><see cref="AccumulateValues"/> or its 256-bit twin, as <paramref name="wide"/> says.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(bool wide, float* rows, int stride, float* p, int count, float* output, int width)
    {
        if (wide)
        {
            AccumulateValues(rows, stride, p, count, output, width);
        }
        else
        {
            PagedAttention.Values(rows, stride, p, count, output, width); // the decode kernel's own, on 256 bits
        }
    }

    /// <summary>out += Σ_i p[i] · rows[i] for i in [0, count): one fused multiply-add per element per row, in row order.</summary>
    private static void AccumulateValues(float* rows, int stride, float* p, int count, float* output, int width)
    {
        const int N = 16; // Vector512<float>.Count
        var c = 0;
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
                a0 = Avx512F.FusedMultiplyAdd(weight, Vector512.Load(row), a0);
                a1 = Avx512F.FusedMultiplyAdd(weight, Vector512.Load(row + N), a1);
                a2 = Avx512F.FusedMultiplyAdd(weight, Vector512.Load(row + (2 * N)), a2);
                a3 = Avx512F.FusedMultiplyAdd(weight, Vector512.Load(row + (3 * N)), a3);
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
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(p[i]), Vector512.Load(row), acc);
            }

            acc.Store(output + c);
        }
    }
}
