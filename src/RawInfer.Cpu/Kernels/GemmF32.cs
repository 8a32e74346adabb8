using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Float32 matrix-matrix product Y = X·Wᵀ for a weight matrix stored (out, in), computed for a range of W rows
/// (output columns of Y) so the worker pool can split one product across cores.
/// <para>
/// Determinism: every (x row, w row) dot product is summed in one fixed order whatever the tile it falls in or
/// the number of X rows: one accumulator of the widest vector over k in ascending chunks, its lanes reduced with
/// VectorN.Sum, then the leftover columns added one by one in ascending order. That is the order of
/// <see cref="Dot"/> too. A row's result therefore depends only on its own input, never on the batch around it.
/// The width is chosen from <c>cols</c> alone, so the same matrix always takes the same path.
/// </para>
/// <para>
/// Blocking: with AVX-512 the product runs <see cref="Tiled512"/> (a 3×8 register tile, X blocked for L2, the
/// eight sums of a tile reduced together), with AVX2 <see cref="Tiled256"/> (the same loop nest, a 3×4 tile).
/// The narrower widths, and the earlier kernels kept as baselines for the benchmarks, use
/// <see cref="Blocked{TKernel}"/>: the W rows of a share are walked in blocks that fit in L2
/// (<see cref="BlockRows"/>); within a block a tile of four X rows stays in L1 while every four-row W tile of the
/// block passes it (a 4×4 register tile of accumulators, 16 FMA per 8 loads), and the X rows left over pass the
/// block one at a time.
/// </para>
/// </summary>
internal static unsafe partial class GemmF32
{
    /// <summary>Bytes of W one block aims to keep in L2 while every X tile passes it.</summary>
    private const int BlockBytes = 256 * 1024;

    /// <summary>
    /// Y[i, o] = W[o, :]·X[i, :] for i in [0, xRows), o in [rowStart, rowEnd).
    /// w: (out, cols) row-major; x: (xRows, cols) row-major; y: (xRows, yStride), only columns [rowStart, rowEnd) written.
    /// </summary>
    /// <param name="ahead">
    /// Null when W is the weights as they lie in memory (the tiled paths then prefetch each next W tile);
    /// otherwise W is a copy already in cache and this is the range the caller reads next, prefetched into L2
    /// while the product computes.
    /// </param>
    public static void Rows(
        float* w, int cols, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd, PrefetchAhead? ahead = null)
    {
        Debug.Assert(cols > 0 && xRows >= 0 && rowStart >= 0 && rowStart <= rowEnd && rowEnd <= yStride);
        if (Vector512.IsHardwareAccelerated && Avx512F.IsSupported && cols >= Vector512<float>.Count)
        {
            if (UseTiled512)
            {
                Tiled512(w, cols, x, xRows, y, yStride, rowStart, rowEnd, ahead);
            }
            else
            {
                Blocked<Vector512Kernel>(w, cols, x, xRows, y, yStride, rowStart, rowEnd);
            }
        }
        else if (Vector256.IsHardwareAccelerated && cols >= Vector256<float>.Count)
        {
            if (UseTiled256)
            {
                Tiled256(w, cols, x, xRows, y, yStride, rowStart, rowEnd, inMemory: ahead is null);
            }
            else
            {
                Blocked<Vector256Kernel>(w, cols, x, xRows, y, yStride, rowStart, rowEnd);
            }
        }
        else if (Vector128.IsHardwareAccelerated && cols >= Vector128<float>.Count)
        {
            Blocked<Vector128Kernel>(w, cols, x, xRows, y, yStride, rowStart, rowEnd);
        }
        else
        {
            Blocked<ScalarKernel>(w, cols, x, xRows, y, yStride, rowStart, rowEnd);
        }
    }

    /// <summary>
    /// False routes the 512-bit path to the earlier 4×4 kernel. Only for benchmarks that compare old and new in
    /// one run (both sum every pair in the same order, so the bits do not change); never set while products run.
    /// </summary>
    internal static bool UseTiled512 { get; set; } = true;

    /// <summary>W rows per L2 block: a multiple of 4, at least 4.</summary>
    internal static int BlockRows(int cols) => Math.Max(4, (BlockBytes / (cols * sizeof(float))) & ~3);

    /// <summary>The cache-blocked loop nest, shared by every width (the kernel type is a JIT-time constant).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)] // a long-running loop nest: keep it out of callers so it is compiled alone
    internal static void Blocked<TKernel>(
        float* w, int cols, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
        where TKernel : struct, IGemmKernel
    {
        var blockRows = BlockRows(cols);
        for (var blockStart = rowStart; blockStart < rowEnd; blockStart += blockRows)
        {
            var blockEnd = Math.Min(blockStart + blockRows, rowEnd);
            var i = 0;

            // four X rows at a time against every W tile of the block
            for (; i + 4 <= xRows; i += 4)
            {
                var xi = x + ((long)i * cols);
                var yi = y + ((long)i * yStride);
                var o = blockStart;
                for (; o + 4 <= blockEnd; o += 4)
                {
                    TKernel.Tile4x4(w + ((long)o * cols), xi, cols, yi + o, yStride);
                }

                for (; o < blockEnd; o++)
                {
                    var row = w + ((long)o * cols);
                    for (var k = 0; k < 4; k++)
                    {
                        yi[((long)k * yStride) + o] = TKernel.Dot(row, xi + ((long)k * cols), cols);
                    }
                }
            }

            // the X rows left over: matrix-vector products, four W rows at a time
            for (; i < xRows; i++)
            {
                var xi = x + ((long)i * cols);
                var yi = y + ((long)i * yStride);
                var o = blockStart;
                for (; o + 4 <= blockEnd; o += 4)
                {
                    TKernel.Tile4x1(w + ((long)o * cols), xi, cols, yi + o);
                }

                for (; o < blockEnd; o++)
                {
                    yi[o] = TKernel.Dot(w + ((long)o * cols), xi, cols);
                }
            }
        }
    }

    /// <summary>sum + Σ w[j]·x[j] for j in [start, cols): the columns left over after the vector loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Tail(float* w, float* x, int start, int cols, float sum)
    {
        for (var j = start; j < cols; j++)
        {
            sum += w[j] * x[j];
        }

        return sum;
    }

    /// <summary>
    /// Register tiles of one vector width. All three compute each dot product in the same order (see the class
    /// remarks), so which tile a pair lands in never changes its bits.
    /// </summary>
    internal interface IGemmKernel
    {
        /// <summary>y[i·yStride + r] = w_r·x_i for r, i in 0..3. w: 4 rows, x: 4 rows, both of stride cols.</summary>
        static abstract void Tile4x4(float* w, float* x, int cols, float* y, int yStride);

        /// <summary>y[r] = w_r·x for r in 0..3. w: 4 rows of stride cols; x: (cols)</summary>
        static abstract void Tile4x1(float* w, float* x, int cols, float* y);

        /// <summary>w·x. w, x: (cols)</summary>
        static abstract float Dot(float* w, float* x, int cols);
    }

    /// <summary>Plain loops, for widths below one vector (and machines without SIMD).</summary>
    internal readonly struct ScalarKernel : IGemmKernel
    {
        public static void Tile4x4(float* w, float* x, int cols, float* y, int yStride)
        {
            for (var i = 0; i < 4; i++)
            {
                Tile4x1(w, x + ((long)i * cols), cols, y + ((long)i * yStride));
            }
        }

        public static void Tile4x1(float* w, float* x, int cols, float* y)
        {
            for (var r = 0; r < 4; r++)
            {
                y[r] = Dot(w + ((long)r * cols), x, cols);
            }
        }

        public static float Dot(float* w, float* x, int cols) => Tail(w, x, 0, cols, 0f);
    }

    /// <summary>128-bit vectors; only reached for 4..7 columns on wider machines, or where 128 bits is all there is.</summary>
    internal readonly struct Vector128Kernel : IGemmKernel
    {
        public static void Tile4x4(float* w, float* x, int cols, float* y, int yStride)
        {
            for (var i = 0; i < 4; i++)
            {
                Tile4x1(w, x + ((long)i * cols), cols, y + ((long)i * yStride));
            }
        }

        public static void Tile4x1(float* w, float* x, int cols, float* y)
        {
            for (var r = 0; r < 4; r++)
            {
                y[r] = Dot(w + ((long)r * cols), x, cols);
            }
        }

        public static float Dot(float* w, float* x, int cols)
        {
            const int N = 4; // Vector128<float>.Count
            var acc = Vector128<float>.Zero;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                acc = Simd.MulAdd(Vector128.Load(w + j), Vector128.Load(x + j), acc);
            }

            return Tail(w, x, j, cols, Vector128.Sum(acc));
        }
    }
}
