using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Matrix-vector rows for Q8_0 weights (llama.cpp's layout: per 32 columns an fp16 scale then 32 int8). As in
/// llama.cpp, x is quantized the same way (per 32-block int8 + float scale, once per product: see
/// <see cref="QuantizeActivations"/>) and each block contributes d_w·d_x·Σ q_w·q_x with an integer dot product:
/// VPDPBUSD (AVX-VNNI) where present, else the AVX2 maddubs/madd pair, else scalar. Both take unsigned × signed
/// bytes, so |q_w| is multiplied by q_x carrying q_w's sign (VPSIGNB); the 16-bit intermediate of maddubs cannot
/// saturate because |q| ≤ 127. The fp16 block scale is converted with a branch-free bit trick (exact for finite
/// halves) that runs on the integer ports beside the vector work. With AVX2 the rows go four at a time through
/// <see cref="ScaledRows"/>; <see cref="DotAvx2"/> is the one-row definition it matches bit for bit.
/// </summary>
internal static unsafe partial class MatVecQ8_0
{
    /// <summary>Elements per block.</summary>
    public const int BlockElements = 32;

    /// <summary>Bytes per block: fp16 scale + 32 int8.</summary>
    public const int BlockBytes = 34;

    /// <summary>
    /// True: <see cref="MatVec"/> sends the products to the engine's kernel for one X row (<see cref="GemmQ8_0"/>,
    /// the same quantized X, each block's exact integer dot folded into one float chain per output in block order)
    /// instead of this class's own (eight-lane partial sums over even and odd blocks), so <c>rawinfer generate</c>
    /// and an engine step of one sequence compute the same sums, as <see cref="MatVecF16.ViaGemm"/> does for F16.
    /// For Q8_0 this matters beyond the last bits: each layer quantizes its input again, and an activation that
    /// lands within an ulp of a rounding boundary in one path and across it in the other moves a whole step
    /// (on the 2-core EPYC VM of family 17h, Zen 1, 2026-12-06, a test model's logits at one position 0.06 apart,
    /// the positions before within 1e-6). Settable for benchmarks (different bits), between forward passes.
    /// </summary>
    internal static bool ViaGemm { get; set; } = true;

    /// <summary>True when products go through <see cref="ViaGemm"/>'s kernel (it runs here and is switched on).</summary>
    internal static bool TakesGemm => ViaGemm && GemmQ8_0.Supported;

    /// <summary>
    /// Quantizes activations per 32-block: scale = max|x|/127, q = round(x/scale) (halves away from zero).
    /// x: (n), n a multiple of 32; q: (n); scales: (n/32)
    /// </summary>
    public static void QuantizeActivations(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales)
    {
        Debug.Assert(x.Length % BlockElements == 0 && q.Length >= x.Length && scales.Length >= x.Length / BlockElements);
        fixed (float* px = &MemoryMarshal.GetReference(x))
        fixed (sbyte* pq = &MemoryMarshal.GetReference(q))
        fixed (float* ps = &MemoryMarshal.GetReference(scales))
        {
            if (Vector256.IsHardwareAccelerated)
            {
                QuantizeVector256(px, x.Length / BlockElements, pq, ps);
            }
            else
            {
                QuantizeActivationsScalar(x, q, scales);
            }
        }
    }

    /// <summary>The scalar definition of <see cref="QuantizeActivations"/>; the reference the vector path must match bit for bit.</summary>
    internal static void QuantizeActivationsScalar(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales)
    {
        for (int b = 0; b < x.Length / BlockElements; b++)
        {
            var block = x.Slice(b * BlockElements, BlockElements);
            float amax = 0;
            foreach (float v in block)
            {
                amax = MathF.Max(amax, MathF.Abs(v));
            }

            float d = amax / 127f;
            float id = d != 0 ? 1f / d : 0f;
            scales[b] = d;
            for (int i = 0; i < BlockElements; i++)
            {
                q[(b * BlockElements) + i] = (sbyte)MathF.Round(block[i] * id, MidpointRounding.AwayFromZero);
            }
        }
    }

    /// <summary>x: (blocks·32); q: (blocks·32); scales: (blocks)</summary>
    private static void QuantizeVector256(float* x, int blocks, sbyte* q, float* scales)
    {
        var signBit = Vector256.Create(-0f);
        var half = Vector256.Create(0.5f);
        for (int b = 0; b < blocks; b++)
        {
            var p = x + (b * BlockElements);
            var v0 = Vector256.Load(p);
            var v1 = Vector256.Load(p + 8);
            var v2 = Vector256.Load(p + 16);
            var v3 = Vector256.Load(p + 24);
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            var m4 = Vector128.Max(m.GetLower(), m.GetUpper());
            m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(2, 3, 0, 1)));
            m4 = Vector128.Max(m4, Vector128.Shuffle(m4, Vector128.Create(1, 0, 3, 2)));
            float d = m4.ToScalar() / 127f;
            float id = d != 0 ? 1f / d : 0f;
            scales[b] = d;
            var vid = Vector256.Create(id);
            var i0 = RoundAway(v0 * vid, signBit, half);
            var i1 = RoundAway(v1 * vid, signBit, half);
            var i2 = RoundAway(v2 * vid, signBit, half);
            var i3 = RoundAway(v3 * vid, signBit, half);

            // |q| ≤ 127, so narrowing (which truncates) is exact.
            Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q + (b * BlockElements));
        }
    }

    /// <summary>Round to nearest, halves away from zero (MathF.Round AwayFromZero), as int32. |v| ≤ 127.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RoundAway(Vector256<float> v, Vector256<float> signBit, Vector256<float> half)
    {
        // t = trunc(v) and v − t are exact; add ±1 where the dropped fraction is at least one half.
        var t = Vector256.Truncate(v);
        var fraction = Vector256.Abs(v - t);
        var step = (Vector256.Create(1f) | (v & signBit)) & Vector256.GreaterThanOrEqual(fraction, half);
        return Vector256.ConvertToInt32(t + step);
    }

    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd), quantizing x first. W: (rows, cols) Q8_0; x: (cols); y: (rows)</summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Cols % BlockElements == 0 && x.Length == w.Cols);
        var blocks = w.Cols / BlockElements;
        sbyte[]? rentedQ = w.Cols > 8192 ? ArrayPool<sbyte>.Shared.Rent(w.Cols) : null;
        float[]? rentedS = w.Cols > 8192 ? ArrayPool<float>.Shared.Rent(blocks) : null;
        Span<sbyte> q = rentedQ is null ? stackalloc sbyte[w.Cols] : rentedQ.AsSpan(0, w.Cols);
        Span<float> scales = rentedS is null ? stackalloc float[blocks] : rentedS.AsSpan(0, blocks);
        QuantizeActivations(x, q, scales);
        Rows(in w, q, scales, y, rowStart, rowEnd);
        if (rentedQ is not null)
        {
            ArrayPool<sbyte>.Shared.Return(rentedQ);
            ArrayPool<float>.Shared.Return(rentedS!);
        }
    }

    /// <summary>
    /// y[r] = W[r,:]·x for r in [rowStart, rowEnd) with x already quantized (once per product, shared by all
    /// threads). W: (rows, cols) Q8_0; qx: (cols); xScales: (cols/32); y: (rows)
    /// </summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<sbyte> qx, ReadOnlySpan<float> xScales, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Type == TensorType.Q8_0 && w.Cols % BlockElements == 0);
        Debug.Assert(qx.Length == w.Cols && xScales.Length == w.Cols / BlockElements && y.Length == w.Rows);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        fixed (sbyte* pq = &MemoryMarshal.GetReference(qx))
        fixed (float* ps = &MemoryMarshal.GetReference(xScales))
        fixed (float* py = &MemoryMarshal.GetReference(y))
        {
            RowsPrepared(in w, pq, ps, py, rowStart, rowEnd);
        }
    }

    /// <summary>As the span overload, on raw pointers. qx: (cols); xScales: (cols/32); y: (rows)</summary>
    public static void RowsPrepared(in WeightTensor w, sbyte* qx, float* xScales, float* y, int rowStart, int rowEnd)
    {
        CpuWeightLayout.ThrowIfRewritten(in w);
        int blocks = w.Cols / BlockElements;
        long rowBytes = (long)blocks * BlockBytes;
        if (ScaledRowsSupported(blocks))
        {
            ScaledRows(w.Data, rowBytes, blocks, UseDecodedScales ? w.DecodedScales : null, qx, xScales, y, rowStart, rowEnd);
            return;
        }

        for (int r = rowStart; r < rowEnd; r++)
        {
            byte* row = w.Data + (r * rowBytes);
            y[r] = Avx2.IsSupported && Fma.IsSupported ? DotAvx2(row, qx, xScales, blocks) : DotScalar(row, qx, xScales, blocks);
        }
    }

    /// <summary>
    /// Every block's fp16 scale of <paramref name="w"/> as float32, row-major (rows, cols/32): the table
    /// <see cref="WeightTensor.WithDecodedScales"/> takes. Each is <see cref="HalfConversion.FiniteHalfToSingle(uint)"/>
    /// of the block's half, exact, the value the kernels convert it to otherwise.
    /// </summary>
    /// <exception cref="ArgumentException">The tensor is not Q8_0, or <paramref name="scales"/> has the wrong length.</exception>
    public static void DecodeScales(in WeightTensor w, Span<float> scales)
    {
        if (w.Type != TensorType.Q8_0 || w.Cols % BlockElements != 0)
        {
            throw new ArgumentException($"tensor is {w.Type} with {w.Cols} columns, not Q8_0 in whole blocks", nameof(w));
        }

        var count = w.ElementCount / BlockElements;
        if (scales.Length != count)
        {
            throw new ArgumentException($"{count} block scales to decode, but the table holds {scales.Length}", nameof(scales));
        }

        if (w.InterleavedInPlace)
        {
            // the rows of whole groups hold their scales at the end of the group (GemmQ8_0.Interleave)
            var blocks = w.Cols / BlockElements;
            for (var r = 0; r < w.Rows; r++)
            {
                for (var b = 0; b < blocks; b++)
                {
                    scales[(r * blocks) + b] = HalfConversion.FiniteHalfToSingle(GemmQ8_0.RowScaleBits(in w, r, blocks, b));
                }
            }

            return;
        }

        for (var b = 0; b < scales.Length; b++)
        {
            scales[b] = HalfConversion.FiniteHalfToSingle(*(ushort*)(w.Data + ((long)b * BlockBytes)));
        }
    }

    /// <summary>dst = W[row, :] as float32. dst: (cols)</summary>
    public static void DequantizeRow(in WeightTensor w, int row, Span<float> dst)
    {
        Debug.Assert(w.Type == TensorType.Q8_0 && dst.Length == w.Cols && (uint)row < (uint)w.Rows);
        int blocks = w.Cols / BlockElements;
        if (w.InterleavedInPlace && row < (w.Rows & ~7))
        {
            // a row of a group rewritten in place (an embedding table the classifier shares): its quads four bytes
            // each, 32 apart, plus 128; its scale among the group's
            var group = w.Data + ((long)(row & ~7) * blocks * BlockBytes);
            var lane = row & 7;
            for (int b = 0; b < blocks; b++)
            {
                float d = HalfConversion.HalfToSingle(GemmQ8_0.RowScaleBits(in w, row, blocks, b));
                var quads = group + (b * 256L) + (lane * 4);
                for (int i = 0; i < BlockElements; i++)
                {
                    dst[(b * BlockElements) + i] = d * (sbyte)(quads[(i / 4 * 32) + (i % 4)] ^ 0x80);
                }
            }

            return;
        }

        byte* src = w.Data + ((long)row * blocks * BlockBytes);
        for (int b = 0; b < blocks; b++)
        {
            byte* block = src + (b * BlockBytes);
            float d = HalfConversion.HalfToSingle(*(ushort*)block);
            var q = (sbyte*)(block + 2);
            for (int i = 0; i < BlockElements; i++)
            {
                dst[(b * BlockElements) + i] = d * q[i];
            }
        }
    }

    /// <summary>Σ over blocks of d_w·d_x·Σ q_w·q_x. row: (blocks·34) bytes; qx: (blocks·32); xScales: (blocks)</summary>
    internal static float DotScalar(byte* row, sbyte* qx, float* xScales, int blocks)
    {
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            byte* block = row + (b * BlockBytes);
            var qw = (sbyte*)(block + 2);
            int isum = 0;
            for (int i = 0; i < BlockElements; i++)
            {
                isum += qw[i] * qx[(b * BlockElements) + i];
            }

            sum += HalfConversion.HalfToSingle(*(ushort*)block) * xScales[b] * isum;
        }

        return sum;
    }

    /// <summary>
    /// As <see cref="DotScalar"/>, one 256-bit integer dot product per block, one row. Also the previous kernel
    /// (with the library's Half conversion), kept as the benchmarks' baseline through <see cref="DotBaseline"/>.
    /// </summary>
    internal static float DotAvx2(byte* row, sbyte* qx, float* xScales, int blocks)
    {
        // Two accumulators so consecutive blocks' FMAs do not wait on each other. One row at a time, as in
        // llama.cpp; a four-row variant measured no faster in DRAM on the 2-core EPYC VM.
        Vector256<float> a0 = default, a1 = default;
        int b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            a0 = Block(row + (b * BlockBytes), Vector256.Load(qx + (b * BlockElements)), xScales[b], a0);
            a1 = Block(row + ((b + 1) * BlockBytes), Vector256.Load(qx + ((b + 1) * BlockElements)), xScales[b + 1], a1);
        }

        if (b < blocks)
        {
            a0 = Block(row + (b * BlockBytes), Vector256.Load(qx + (b * BlockElements)), xScales[b], a0);
        }

        return Vector256.Sum(a0 + a1);
    }

    /// <summary>The previous one-row kernel: library Half conversion per block. Baseline for the benchmarks.</summary>
    internal static float DotBaseline(byte* row, sbyte* qx, float* xScales, int blocks)
    {
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < blocks; b++)
        {
            byte* block = row + (b * BlockBytes);
            var dot = IntegerDot(Vector256.Load((sbyte*)(block + 2)), Vector256.Load(qx + (b * BlockElements)));
            float scale = HalfConversion.HalfToSingle(*(ushort*)block) * xScales[b];
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(dot), Vector256.Create(scale), acc);
        }

        return Vector256.Sum(acc);
    }

    /// <summary>acc + d_w·d_x·(per-lane partial sums of q_w·q_x) for one block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Block(byte* block, Vector256<sbyte> x, float dx, Vector256<float> acc)
    {
        var dot = IntegerDot(Vector256.Load((sbyte*)(block + 2)), x);
        var scale = HalfConversion.FiniteHalfToSingle(*(ushort*)block) * dx;
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single(dot), Vector256.Create(scale), acc);
    }

    /// <summary>
    /// Eight partial sums of w·x over 32 int8 pairs (|w|, |x| ≤ 127). Tried and dropped (EPYC VM, 2026-12-04):
    /// |q_x| computed once per call and q_w given q_x's sign, one sign operation per block instead of an absolute
    /// value and a sign, the same integer products; single-sequence Q8_0 decode took 1.05 and 0.99 of the time
    /// (step-ab, ABBA), the saved operation traded for a second load per block.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> IntegerDot(Vector256<sbyte> w, Vector256<sbyte> x)
    {
        var wAbs = Avx2.Abs(w);        // unsigned |q_w|
        var xSigned = Avx2.Sign(x, w); // q_x with q_w's sign (zero where q_w is zero)
        return AvxVnni.IsSupported
            ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, wAbs, xSigned)
            : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(wAbs, xSigned), Vector256.Create((short)1));
    }
}
