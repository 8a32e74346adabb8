using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Matrix-vector rows for Q8_0 weights (llama.cpp's layout: per 32 columns an fp16 scale then 32 int8). As in
/// llama.cpp, x is quantized the same way (per 32-block int8 + float scale) and each block contributes
/// d_w·d_x·Σ q_w·q_x with an integer dot product: VPDPBUSD (AVX-VNNI) where present, else the AVX2
/// maddubs/madd pair, else scalar. Both take unsigned × signed bytes, so |q_w| is multiplied by q_x carrying
/// q_w's sign (VPSIGNB); the 16-bit intermediate of maddubs cannot saturate because |q| ≤ 127.
/// </summary>
internal static unsafe class MatVecQ8_0
{
    /// <summary>Elements per block.</summary>
    public const int BlockElements = 32;

    /// <summary>Bytes per block: fp16 scale + 32 int8.</summary>
    public const int BlockBytes = 34;

    /// <summary>
    /// Quantizes activations per 32-block: scale = max|x|/127, q = round(x/scale) (halves away from zero).
    /// x: (n), n a multiple of 32; q: (n); scales: (n/32)
    /// </summary>
    public static void QuantizeActivations(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> scales)
    {
        Debug.Assert(x.Length % BlockElements == 0 && q.Length >= x.Length && scales.Length >= x.Length / BlockElements);
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

    /// <summary>y[r] = W[r,:]·x for r in [rowStart, rowEnd), quantizing x first. W: (rows, cols) Q8_0; x: (cols); y: (rows)</summary>
    public static void Rows(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Cols % BlockElements == 0 && x.Length == w.Cols);
        var q = ArrayPool<sbyte>.Shared.Rent(w.Cols);
        var scales = ArrayPool<float>.Shared.Rent(w.Cols / BlockElements);
        QuantizeActivations(x, q, scales);
        Rows(in w, q.AsSpan(0, w.Cols), scales.AsSpan(0, w.Cols / BlockElements), y, rowStart, rowEnd);
        ArrayPool<float>.Shared.Return(scales);
        ArrayPool<sbyte>.Shared.Return(q);
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
        int blocks = w.Cols / BlockElements;
        fixed (sbyte* pq = &MemoryMarshal.GetReference(qx))
        fixed (float* ps = &MemoryMarshal.GetReference(xScales))
        {
            for (int r = rowStart; r < rowEnd; r++)
            {
                byte* row = w.Data + ((long)r * blocks * BlockBytes);
                y[r] = Avx2.IsSupported ? DotAvx2(row, pq, ps, blocks) : DotScalar(row, pq, ps, blocks);
            }
        }
    }

    /// <summary>dst = W[row, :] as float32. dst: (cols)</summary>
    public static void DequantizeRow(in WeightTensor w, int row, Span<float> dst)
    {
        Debug.Assert(w.Type == TensorType.Q8_0 && dst.Length == w.Cols && (uint)row < (uint)w.Rows);
        int blocks = w.Cols / BlockElements;
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

    /// <summary>As <see cref="DotScalar"/>, one 256-bit integer dot product per block.</summary>
    internal static float DotAvx2(byte* row, sbyte* qx, float* xScales, int blocks)
    {
        var acc = Vector256<float>.Zero;
        var ones = Vector256.Create((short)1);
        for (int b = 0; b < blocks; b++)
        {
            byte* block = row + (b * BlockBytes);
            var w = Vector256.Load((sbyte*)(block + 2));
            var x = Vector256.Load(qx + (b * BlockElements));
            var wAbs = Avx2.Abs(w);                 // unsigned |q_w|
            var xSigned = Avx2.Sign(x, w);          // q_x with q_w's sign (zero where q_w is zero)
            Vector256<int> isum = AvxVnni.IsSupported
                ? AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, wAbs, xSigned)
                : Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(wAbs, xSigned), ones);
            float scale = HalfConversion.HalfToSingle(*(ushort*)block) * xScales[b];
            acc = Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(isum), Vector256.Create(scale), acc);
        }

        return Vector256.Sum(acc);
    }
}
