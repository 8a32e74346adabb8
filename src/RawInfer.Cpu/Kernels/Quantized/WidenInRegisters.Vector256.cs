using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// The 256-bit twin of the in-register path, for F16 and BF16 weights on AVX2 machines (their Q8_0 products run
/// <see cref="GemmQ8_0"/>'s integers): 4-row W tiles as <see cref="GemmF32.Tiled256"/>'s, each 8-column chunk of a
/// W row widened exactly as <see cref="Widen"/> does and summed in <see cref="GemmF32.Vector256Kernel.Dot"/>'s order,
/// so a row's bits match the tile path that runs above <see cref="MaxNarrowXRows"/> X rows.
/// </summary>
internal static unsafe partial class WidenInRegisters
{
    private const int N256 = 8; // Vector256<float>.Count

    /// <summary>
    /// False sends the AVX2 machines' products of one to three X rows back to the tile path (widen 64 rows into
    /// L2, then the F32 GEMM). Only for benchmarks that compare both in one run (the same bits).
    /// </summary>
    internal static bool Narrow { get; set; } = true;

    /// <summary>
    /// True when <see cref="Rows"/> takes this shape on this machine's 256-bit path: the F32 GEMM runs
    /// <see cref="GemmF32.Tiled256"/> for it (no 512-bit path for these columns) and the weights are F16 or BF16.
    /// </summary>
    public static bool SupportsNarrow(TensorType type, int cols) =>
        Narrow && !Supports(type, cols) && GemmF32.UseTiled256 && Avx2.IsSupported && Vector256.IsHardwareAccelerated
        && cols >= N256 && !(Vector512.IsHardwareAccelerated && Avx512F.IsSupported && cols >= 16)
        && type is TensorType.F16 or TensorType.BF16;

    /// <summary>
    /// Y[i, o] = W[o, :]·X[i, :] for i in [0, xRows), o in [rowStart, rowEnd), xRows in 1..3, on 256 bits.
    /// W: (out, cols) F16/BF16; x: (xRows, cols); y: (xRows, yStride), only columns [rowStart, rowEnd) written.
    /// </summary>
    public static void RowsNarrow(in WeightTensor w, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        Debug.Assert(SupportsNarrow(w.Type, w.Cols) && xRows is >= 1 and <= MaxNarrowXRows);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows && w.Rows <= yStride);
        CpuWeightLayout.ThrowIfHalvesScaled(in w);
        if (w.Type == TensorType.BF16)
        {
            RowsNarrow<BF16Chunk256>(in w, x, xRows, y, yStride, rowStart, rowEnd);
        }
        else if (IHalfRebias.UseMultiply)
        {
            RowsNarrow<F16Chunk256<MultiplyRebias>>(in w, x, xRows, y, yStride, rowStart, rowEnd);
        }
        else
        {
            RowsNarrow<F16Chunk256<IntegerRebias>>(in w, x, xRows, y, yStride, rowStart, rowEnd);
        }
    }

    private static void RowsNarrow<TChunk>(in WeightTensor w, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
        where TChunk : struct, IChunk256
    {
        var cols = w.Cols;
        var rowBytes = TensorEncoding.RowBytes(w.Type, cols);
        var tileEnd = rowStart + ((rowEnd - rowStart) & ~3);
        for (var o = rowStart; o < tileEnd; o += 4)
        {
            var rows = w.Data + (o * rowBytes);
            switch (xRows)
            {
                case 1 when !DecodeRowGrouping.FourRows:
                    RowByRow256<TChunk>(rows, rowBytes, cols, x, y + o);
                    break;
                case 1:
                    Tile256<TChunk, One>(rows, rowBytes, cols, x, y + o, yStride);
                    break;
                case 2:
                    Tile256<TChunk, Two>(rows, rowBytes, cols, x, y + o, yStride);
                    break;
                default:
                    Tile256<TChunk, Three>(rows, rowBytes, cols, x, y + o, yStride);
                    break;
            }
        }

        if (tileEnd < rowEnd)
        {
            // fewer than 4 W rows left: widen them and run the F32 GEMM's edge rows (same order, same bits)
            EdgeRows(in w, x, xRows, y, yStride, tileEnd, rowEnd - tileEnd);
        }
    }

    /// <summary>
    /// A 4-row W tile against TRows X rows: 4·TRows accumulators, each W chunk widened once and used by every X
    /// row; every 32 columns the next tile's rows are prefetched at the same place (as the 512-bit tile does).
    /// </summary>
    private static void Tile256<TChunk, TRows>(byte* rows, long rowBytes, int cols, float* x, float* y, int yStride)
        where TChunk : struct, IChunk256
        where TRows : struct, IRowCount
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
        var x1 = x + cols;
        var x2 = x + (2L * cols);
        var kEnd = cols & ~(N256 - 1);
        var next = rows + (4 * rowBytes);
        for (var k = 0; k < kEnd; k += N256)
        {
            if ((k & 31) == 0 && GemmF32.PrefetchTiles)
            {
                for (var r = 0; r < 4; r++)
                {
                    Simd.Prefetch(next + (r * rowBytes) + TChunk.PrefetchOffset(k));
                }
            }

            var u = Vector256.Load(x + k);
            var v = TRows.Value >= 2 ? Vector256.Load(x1 + k) : default;
            var s = TRows.Value >= 3 ? Vector256.Load(x2 + k) : default;
            Step256<TRows>(TChunk.Load(rows, k), u, v, s, ref a0, ref b0, ref c0);
            Step256<TRows>(TChunk.Load(rows + rowBytes, k), u, v, s, ref a1, ref b1, ref c1);
            Step256<TRows>(TChunk.Load(rows + (2 * rowBytes), k), u, v, s, ref a2, ref b2, ref c2);
            Step256<TRows>(TChunk.Load(rows + (3 * rowBytes), k), u, v, s, ref a3, ref b3, ref c3);
        }

        Finish256<TChunk>(a0, a1, a2, a3, rows, rowBytes, x, cols, kEnd, y);
        if (TRows.Value >= 2)
        {
            Finish256<TChunk>(b0, b1, b2, b3, rows, rowBytes, x1, cols, kEnd, y + yStride);
        }

        if (TRows.Value >= 3)
        {
            Finish256<TChunk>(c0, c1, c2, c3, rows, rowBytes, x2, cols, kEnd, y + (2L * yStride));
        }
    }

    /// <summary>
    /// The 4-row tile against one X row, one W row after another (<see cref="DecodeRowGrouping"/>), the stream
    /// prefetched ahead as <see cref="MatVecF16.PrefetchStream"/> says: each row's accumulator, sum and leftover
    /// columns as in <see cref="Tile256{TChunk, TRows}"/>, so the same bits.
    /// </summary>
    private static void RowByRow256<TChunk>(byte* rows, long rowBytes, int cols, float* x, float* y)
        where TChunk : struct, IChunk256
    {
        var kEnd = cols & ~(N256 - 1);
        for (var r = 0; r < 4; r++)
        {
            var row = rows + (r * rowBytes);
            var a = Vector256<float>.Zero;
            for (var k = 0; k < kEnd; k += N256)
            {
                if ((k & 31) == 0 && MatVecF16.PrefetchStream)
                {
                    // 4 KiB ahead in the stream (past the row's end that is the next row), as the F16 row kernel does
                    Simd.Prefetch(row + TChunk.PrefetchOffset(k + MatVecF16.PrefetchHalves));
                }

                a = Simd.MulAdd(TChunk.Load(row, k), Vector256.Load(x + k), a);
            }

            y[r] = Tail256<TChunk>(row, x, kEnd, cols, Vector256.Sum(a));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step256<TRows>(
        Vector256<float> w, Vector256<float> u, Vector256<float> v, Vector256<float> s,
        ref Vector256<float> a, ref Vector256<float> b, ref Vector256<float> c)
        where TRows : struct, IRowCount
    {
        a = Simd.MulAdd(w, u, a);
        if (TRows.Value >= 2)
        {
            b = Simd.MulAdd(w, v, b);
        }

        if (TRows.Value >= 3)
        {
            c = Simd.MulAdd(w, s, c);
        }
    }

    /// <summary>y[r] = Sum(c_r) plus the leftover columns of W row r against x, in ascending order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish256<TChunk>(
        Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3,
        byte* rows, long rowBytes, float* x, int cols, int kEnd, float* y)
        where TChunk : struct, IChunk256
    {
        y[0] = Tail256<TChunk>(rows, x, kEnd, cols, Vector256.Sum(c0));
        y[1] = Tail256<TChunk>(rows + rowBytes, x, kEnd, cols, Vector256.Sum(c1));
        y[2] = Tail256<TChunk>(rows + (2 * rowBytes), x, kEnd, cols, Vector256.Sum(c2));
        y[3] = Tail256<TChunk>(rows + (3 * rowBytes), x, kEnd, cols, Vector256.Sum(c3));
    }

    /// <summary>sum + Σ w[j]·x[j] for j in [start, cols), as <see cref="GemmF32.Tail"/> adds them.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail256<TChunk>(byte* row, float* x, int start, int cols, float sum)
        where TChunk : struct, IChunk256
    {
        for (var j = start; j < cols; j++)
        {
            sum += TChunk.Element(row, j) * x[j];
        }

        return sum;
    }

    /// <summary>How one weight format yields widened float32 values, eight at a time.</summary>
    private interface IChunk256
    {
        /// <summary>Columns [k, k + 8) of a row, as <see cref="Widen"/> writes them. k: a multiple of 8.</summary>
        static abstract Vector256<float> Load(byte* row, int k);

        /// <summary>Column j of a row, as <see cref="Widen"/> writes it.</summary>
        static abstract float Element(byte* row, int j);

        /// <summary>A byte of a row on the line that holds columns [k, k + 32). k: a multiple of 32.</summary>
        static abstract long PrefetchOffset(int k);
    }

    private readonly struct F16Chunk256<TRebias> : IChunk256
        where TRebias : struct, IHalfRebias
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(byte* row, int k) =>
            TRebias.SignExtended(Avx2.ConvertToVector256Int32((short*)row + k)); // VPMOVSXWD from memory

        public static float Element(byte* row, int j) => HalfConversion.HalfToSingle(((ushort*)row)[j]);

        public static long PrefetchOffset(int k) => 2L * k;
    }

    private readonly struct BF16Chunk256 : IChunk256
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<float> Load(byte* row, int k) =>
            (Avx2.ConvertToVector256Int32((ushort*)row + k).AsUInt32() << 16).AsSingle(); // VPMOVZXWD

        public static float Element(byte* row, int j) => HalfConversion.BFloat16ToSingle(((ushort*)row)[j]);

        public static long PrefetchOffset(int k) => 2L * k;
    }
}
