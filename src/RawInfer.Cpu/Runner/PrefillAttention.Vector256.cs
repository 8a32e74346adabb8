using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Cpu.Kernels;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// The run kernel on AVX2 alone. Without AVX-512 a decode row's attention takes <see cref="PagedAttention"/>'s
/// portable path: each score one <see cref="Dot"/> (one 8-lane accumulator over the head's chunks in order, then
/// <see cref="Vector256.Sum{T}(Vector256{T})"/>) divided by sqrt(headDim), each output element one fused
/// multiply-add per position through <see cref="Axpy"/>. These kernels do the same operations per score and per
/// element, for eight query vectors per key row and four per value row (one alone: <see cref="PagedAttention.Values"/>),
/// so a run's rows keep the decode kernel's bits. Before them a prefill on such a machine attended row by row, a
/// call per score and per value row: on the 2-core EPYC VM of family 17h (Zen 1, 2026-12-06) about a quarter of a
/// 512-token Q8_0 prefill's time (from 128- and 512-token prefills against the products alone, one thread). With
/// them, <c>perf/RawInfer.Benchmarks step-ab --switch prefill-runs --prompt 512 --threads 2</c>, ABBA: Q8_0 0.858 of
/// the time (261 → 304 tok/s), F32 0.974.
/// </summary>
internal static unsafe partial class PrefillAttention
{
    /// <summary>The 256-bit kernel: only where <see cref="PagedAttention"/> itself runs the 256-bit <see cref="Dot"/>.</summary>
    private static bool Narrow(int headDim) => PagedAttention.Narrow(headDim);

    /// <summary>As <see cref="Scores8"/> on 256 bits, each score reduced by <see cref="Vector256.Sum{T}(Vector256{T})"/> as <see cref="Dot"/> reduces it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scores8Narrow(
        float** queries, int count, int headDim, float* key, float sqrtHeadDim, float* scores, int scoreStride)
    {
        const int N = 8; // Vector256<float>.Count
        var q0 = queries[0];
        var q1 = count > 1 ? queries[1] : q0; // past count, the first query again (its score is not stored)
        var q2 = count > 2 ? queries[2] : q0;
        var q3 = count > 3 ? queries[3] : q0;
        var q4 = count > 4 ? queries[4] : q0;
        var q5 = count > 5 ? queries[5] : q0;
        var q6 = count > 6 ? queries[6] : q0;
        var q7 = count > 7 ? queries[7] : q0;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (var c = 0; c < headDim; c += N)
        {
            var k = Vector256.Load(key + c);
            a0 = Fma.MultiplyAdd(Vector256.Load(q0 + c), k, a0);
            a1 = Fma.MultiplyAdd(Vector256.Load(q1 + c), k, a1);
            a2 = Fma.MultiplyAdd(Vector256.Load(q2 + c), k, a2);
            a3 = Fma.MultiplyAdd(Vector256.Load(q3 + c), k, a3);
            a4 = Fma.MultiplyAdd(Vector256.Load(q4 + c), k, a4);
            a5 = Fma.MultiplyAdd(Vector256.Load(q5 + c), k, a5);
            a6 = Fma.MultiplyAdd(Vector256.Load(q6 + c), k, a6);
            a7 = Fma.MultiplyAdd(Vector256.Load(q7 + c), k, a7);
        }

        scores[0] = Vector256.Sum(a0) / sqrtHeadDim;
        if (count > 1)
        {
            scores[scoreStride] = Vector256.Sum(a1) / sqrtHeadDim;
        }

        if (count > 2)
        {
            scores[2L * scoreStride] = Vector256.Sum(a2) / sqrtHeadDim;
        }

        if (count > 3)
        {
            scores[3L * scoreStride] = Vector256.Sum(a3) / sqrtHeadDim;
        }

        if (count > 4)
        {
            scores[4L * scoreStride] = Vector256.Sum(a4) / sqrtHeadDim;
        }

        if (count > 5)
        {
            scores[5L * scoreStride] = Vector256.Sum(a5) / sqrtHeadDim;
        }

        if (count > 6)
        {
            scores[6L * scoreStride] = Vector256.Sum(a6) / sqrtHeadDim;
        }

        if (count > 7)
        {
            scores[7L * scoreStride] = Vector256.Sum(a7) / sqrtHeadDim;
        }
    }

    /// <summary>As <see cref="AccumulateValues4"/> on 256 bits: four vectors × 16 floats a pass, each element one chain in position order.</summary>
    private static void AccumulateValues4Narrow(float* rows, int stride, float* p, int pStride, int count, float** outputs, int width)
    {
        const int N = 8; // Vector256<float>.Count
        var p0 = p;
        var p1 = p0 + pStride;
        var p2 = p1 + pStride;
        var p3 = p2 + pStride;
        var c = 0;
        for (; c + (2 * N) <= width; c += 2 * N)
        {
            var o0 = outputs[0] + c;
            var o1 = outputs[1] + c;
            var o2 = outputs[2] + c;
            var o3 = outputs[3] + c;
            Vector256<float> a00 = Vector256.Load(o0), a01 = Vector256.Load(o0 + N);
            Vector256<float> a10 = Vector256.Load(o1), a11 = Vector256.Load(o1 + N);
            Vector256<float> a20 = Vector256.Load(o2), a21 = Vector256.Load(o2 + N);
            Vector256<float> a30 = Vector256.Load(o3), a31 = Vector256.Load(o3 + N);
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                var r0 = Vector256.Load(row);
                var r1 = Vector256.Load(row + N);
                var w = Vector256.Create(p0[i]);
                a00 = Fma.MultiplyAdd(w, r0, a00);
                a01 = Fma.MultiplyAdd(w, r1, a01);
                w = Vector256.Create(p1[i]);
                a10 = Fma.MultiplyAdd(w, r0, a10);
                a11 = Fma.MultiplyAdd(w, r1, a11);
                w = Vector256.Create(p2[i]);
                a20 = Fma.MultiplyAdd(w, r0, a20);
                a21 = Fma.MultiplyAdd(w, r1, a21);
                w = Vector256.Create(p3[i]);
                a30 = Fma.MultiplyAdd(w, r0, a30);
                a31 = Fma.MultiplyAdd(w, r1, a31);
            }

            a00.Store(o0);
            a01.Store(o0 + N);
            a10.Store(o1);
            a11.Store(o1 + N);
            a20.Store(o2);
            a21.Store(o2 + N);
            a30.Store(o3);
            a31.Store(o3 + N);
        }

        for (; c < width; c += N)
        {
            Vector256<float> a0 = Vector256.Load(outputs[0] + c), a1 = Vector256.Load(outputs[1] + c);
            Vector256<float> a2 = Vector256.Load(outputs[2] + c), a3 = Vector256.Load(outputs[3] + c);
            var row = rows + c;
            for (var i = 0; i < count; i++, row += stride)
            {
                var r = Vector256.Load(row);
                a0 = Fma.MultiplyAdd(Vector256.Create(p0[i]), r, a0);
                a1 = Fma.MultiplyAdd(Vector256.Create(p1[i]), r, a1);
                a2 = Fma.MultiplyAdd(Vector256.Create(p2[i]), r, a2);
                a3 = Fma.MultiplyAdd(Vector256.Create(p3[i]), r, a3);
            }

            a0.Store(outputs[0] + c);
            a1.Store(outputs[1] + c);
            a2.Store(outputs[2] + c);
            a3.Store(outputs[3] + c);
        }
    }
}
