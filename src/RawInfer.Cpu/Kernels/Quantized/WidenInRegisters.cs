using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// The product of F16, BF16 or Q8_0 weights with a few X rows (decode steps of a few sequences: <see cref="MaxRows"/>), widened
/// in registers: each 16-column chunk of a W row is converted to float32 exactly as <see cref="Widen"/> converts
/// it and multiplied into the accumulators at once, instead of being written to a float32 tile and read back.
/// With few X rows that tile round trip costs more than the product itself; with many it is paid once for all
/// of them, so <see cref="Gemm"/> switches to the tile path above <see cref="MaxXRows"/>. More than three X rows
/// meet each W tile three at a time.
/// Every (x row, w row) pair is summed in <see cref="GemmF32"/>'s order (one 16-lane accumulator over k in
/// ascending chunks, Vector512.Sum's reduction tree, then the leftover columns one by one), from the same widened
/// values, so a row gets the same bits here as on the tile path: a sequence's output never depends on how many
/// others share its step.
/// </summary>
internal static unsafe partial class WidenInRegisters
{
    /// <summary>X rows of one register tile (3 × 8 W rows, as the F32 GEMM's).</summary>
    public const int TileXRows = 3;

    /// <summary>
    /// Largest X row count the 512-bit path takes: more than one register tile of X rows meet each 8-row W tile in
    /// turn, the W tile read from memory once and from L1 for the later ones, widened again each time. Against the
    /// tile path (<c>step-ab --switch widen-rows --model m110-f16.gguf</c>, 2 threads, Zen 5 VM, 2026-12-07), with
    /// the tile path's 192 KiB tiles: 4 sequences 0.77–0.83 of the time, 5 0.86–0.88, 6 1.04, 8 1.38, 16 1.52; with
    /// its L1-sized tiles (<see cref="Gemm.WidenedTileBytes"/>): 4 sequences 0.88–0.90, 5 1.005–1.20. The widening,
    /// paid per register tile here and once on the tile path, outweighs the tile's round trip from 5 X rows on.
    /// </summary>
    public const int WideXRows = 4;

    /// <summary>
    /// The largest X row count the 512-bit path takes for BF16, whose widening is one shift, so widening again for
    /// every register tile costs little: against the tile path (<c>step-ab --switch widen-rows --model
    /// m110-bf16.gguf</c>, the same VM and day) 4 sequences 0.51 of the time, 5 0.51, 6 0.56, 8 0.58, 12 0.69,
    /// 16 0.85, 24 0.87, 32 0.93, 64 1.37, prefill of 512 tokens 1.49.
    /// </summary>
    public const int WideBF16XRows = 32;

    /// <summary>The X rows up to which <see cref="Gemm"/> sends F16 (and Q8_0) products here on 512 bits: <see cref="WideXRows"/>, settable for benchmarks.</summary>
    public static int MaxXRows { get; set; } = WideXRows;

    /// <summary>The same for BF16: <see cref="WideBF16XRows"/>, settable for benchmarks.</summary>
    public static int MaxBF16XRows { get; set; } = WideBF16XRows;

    /// <summary>The X rows up to which <see cref="Gemm"/> sends products of <paramref name="type"/> here on 512 bits.</summary>
    public static int MaxRows(TensorType type) => type == TensorType.BF16 ? MaxBF16XRows : MaxXRows;

    /// <summary>Largest X row count the 256-bit path takes (<see cref="RowsNarrow"/>): one register tile.</summary>
    public const int MaxNarrowXRows = TileXRows;

    private const int N = 16; // Vector512<float>.Count

    /// <summary>True when this machine and shape take the in-register path (the F32 GEMM's 512-bit condition).</summary>
    public static bool Supports(TensorType type, int cols) =>
        Vector512.IsHardwareAccelerated && Avx512F.IsSupported && Avx512BW.IsSupported && GemmF32.UseTiled512
        && cols >= N && Widen.Supports(type);

    /// <summary>
    /// Y[i, o] = W[o, :]·X[i, :] for i in [0, xRows), o in [rowStart, rowEnd), xRows ≥ 1.
    /// W: (out, cols) F16/BF16/Q8_0; x: (xRows, cols); y: (xRows, yStride), only columns [rowStart, rowEnd) written.
    /// </summary>
    public static void Rows(in WeightTensor w, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        Debug.Assert(Supports(w.Type, w.Cols) && xRows >= 1);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows && w.Rows <= yStride);
        switch (w.Type)
        {
            case TensorType.F16 when w.HalvesScaled:
                ScaledHalfRows(in w, x, xRows, y, yStride, rowStart, rowEnd);
                break;
            case TensorType.F16 when IHalfRebias.UseMultiply:
                Rows<F16Chunk<MultiplyRebias>>(in w, x, xRows, y, yStride, rowStart, rowEnd);
                break;
            case TensorType.F16:
                Rows<F16Chunk<IntegerRebias>>(in w, x, xRows, y, yStride, rowStart, rowEnd);
                break;
            case TensorType.BF16:
                Rows<BF16Chunk>(in w, x, xRows, y, yStride, rowStart, rowEnd);
                break;
            default:
                if (w.DecodedScales is not null && MatVecQ8_0.UseDecodedScales && w.Cols / MatVecQ8_0.BlockElements <= MaxTileScaleBlocks)
                {
                    Rows<Q8_0DecodedChunk>(in w, x, xRows, y, yStride, rowStart, rowEnd);
                }
                else
                {
                    Rows<Q8_0Chunk>(in w, x, xRows, y, yStride, rowStart, rowEnd);
                }

                break;
        }
    }

    /// <summary>y[o] = W[o, :]·x for o in [rowStart, rowEnd): <see cref="Rows"/> with one X row, from spans (a matrix-vector product).</summary>
    public static void OneRow(in WeightTensor w, ReadOnlySpan<float> x, Span<float> y, int rowStart, int rowEnd)
    {
        Debug.Assert(x.Length == w.Cols && y.Length == w.Rows);
        fixed (float* px = x)
        fixed (float* py = y)
        {
            Rows(in w, px, 1, py, w.Rows, rowStart, rowEnd);
        }
    }

    /// <summary>Q8_0 blocks per row up to which a tile's decoded scales fit the stack buffer (8 rows × 4 bytes each).</summary>
    private const int MaxTileScaleBlocks = 1024;

    private static void Rows<TChunk>(in WeightTensor w, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
        where TChunk : struct, IChunk
    {
        var cols = w.Cols;
        var rowBytes = TensorEncoding.RowBytes(w.Type, cols);
        var tileEnd = rowStart + ((rowEnd - rowStart) & ~7);
        var blocks = cols / MatVecQ8_0.BlockElements;
        var tileScales = stackalloc float[typeof(TChunk) == typeof(Q8_0DecodedChunk) ? 8 * blocks : 0];
        for (var o = rowStart; o < tileEnd; o += 8)
        {
            var rows = w.Data + (o * rowBytes);
            if (typeof(TChunk) == typeof(Q8_0DecodedChunk))
            {
                InterleaveScales(w.DecodedScales + ((long)o * blocks), blocks, tileScales);
            }

            if (xRows == 1 && !DecodeRowGrouping.FourRows)
            {
                RowByRow<TChunk>(rows, rowBytes, tileScales, cols, x, y + o);
                continue;
            }

            // the X rows three at a time against this W tile: from memory for the first, from L1 for the others
            for (var t = 0; t < xRows; t += TileXRows)
            {
                var xt = x + ((long)t * cols);
                var yt = y + ((long)t * yStride) + o;
                switch (xRows - t)
                {
                    case 1:
                        Tile<TChunk, One>(rows, rowBytes, tileScales, cols, xt, yt, yStride);
                        break;
                    case 2:
                        Tile<TChunk, Two>(rows, rowBytes, tileScales, cols, xt, yt, yStride);
                        break;
                    default:
                        Tile<TChunk, Three>(rows, rowBytes, tileScales, cols, xt, yt, yStride);
                        break;
                }
            }
        }

        if (tileEnd < rowEnd)
        {
            // fewer than 8 W rows left: widen them and run the F32 GEMM's edge tile (same order, same bits)
            EdgeRows(in w, x, xRows, y, yStride, tileEnd, rowEnd - tileEnd);
        }
    }

    /// <summary>
    /// x · 2^(112 − 10): what <see cref="ScaledF16Chunk"/>'s weights, each its half scaled by 2^10 read as a float (the
    /// weight times 2^-102), are multiplied by; their product is the weight times x exactly, so every fused
    /// multiply-add rounds as it does on the widened weights.
    /// </summary>
    private const float ScaledHalfInput = 5.0706024e30f; // 2^102

    /// <summary>The fewest columns the in-register kernels take (<see cref="Supports"/>).</summary>
    internal const int MinScaledHalfCols = N;

    /// <summary>
    /// Inputs at or above this magnitude (2^25) are not scaled (<see cref="ScaledHalfInput"/> would take them past
    /// float32's range, which ends at 2^128): their products take the widening path instead.
    /// </summary>
    private const float ScaledHalfInputLimit = 33554432f;

    /// <summary>
    /// <see cref="Rows"/> for F16 tensors whose halves the CPU backend scaled by 2^10 in place
    /// (<see cref="WeightTensor.HalvesScaled"/>): no half is subnormal, so its bits moved into float position are a normal
    /// float, the weight times 2^-102; the X rows are scaled by 2^102 into this thread's scratch, and each chunk takes
    /// three operations (sign-extend, shift, mask) instead of the exact conversion's eight. The products are the same,
    /// so are the bits. An input of 2^25 or more in magnitude (or not finite) sends the product to the widening path.
    /// </summary>
    private static void ScaledHalfRows(in WeightTensor w, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        var cols = w.Cols;
        var count = xRows * cols;
        var scaled = LineAligned.Start(LineAligned.Scratch(ref t_scaledInput, count)); // grown once per thread and width
        if (!ScaleInput(x, count, scaled))
        {
            for (var o = rowStart; o < rowEnd; o += 7)
            {
                EdgeRows(in w, x, xRows, y, yStride, o, Math.Min(7, rowEnd - o));
            }

            return;
        }

        var tileEnd = rowStart + ((rowEnd - rowStart) & ~7);
        Rows<ScaledF16Chunk>(in w, scaled, xRows, y, yStride, rowStart, tileEnd);
        if (tileEnd < rowEnd)
        {
            EdgeRows(in w, x, xRows, y, yStride, tileEnd, rowEnd - tileEnd);
        }
    }

    /// <summary>scaled = x · <see cref="ScaledHalfInput"/>; false where some |x| is not below <see cref="ScaledHalfInputLimit"/>.</summary>
    internal static bool ScaleInput(float* x, int count, float* scaled)
    {
        var limit = Vector512.Create(ScaledHalfInputLimit);
        var outside = Vector512<uint>.Zero; // lanes where some |x| was not below the limit (NaN included)
        var i = 0;
        for (; i + N <= count; i += N)
        {
            var v = Vector512.Load(x + i);
            outside |= ~Vector512.LessThan(Vector512.Abs(v), limit).AsUInt32();
            (v * ScaledHalfInput).Store(scaled + i);
        }

        var ok = outside == Vector512<uint>.Zero;
        for (; i < count; i++)
        {
            ok &= MathF.Abs(x[i]) < ScaledHalfInputLimit;
            scaled[i] = x[i] * ScaledHalfInput;
        }

        return ok;
    }

    [ThreadStatic]
    private static float[]? t_scaledInput; // (xRows, cols) inputs scaled for ScaledHalfRows, of this thread

    /// <summary>The last &lt; 8 rows through <see cref="Widen"/> and the F32 GEMM, on this thread's scratch.</summary>
    private static void EdgeRows(in WeightTensor w, float* x, int xRows, float* y, int yStride, int first, int count)
    {
        var cols = w.Cols;
        var tile = LineAligned.Start(LineAligned.Scratch(ref t_edge, 7 * cols)); // grown once per thread and width
        Widen.Rows(in w, first, count, tile);
        GemmF32.Rows(tile, cols, x, xRows, y + first, yStride, 0, count);
    }

    [ThreadStatic]
    private static float[]? t_edge; // (≤ 7, cols) widened edge rows of this thread

    /// <summary>
    /// The 8 rows' decoded scales of one tile, block-major: tile[b·8 + r] = decoded[r·blocks + b], so the tile
    /// loop finds row r's scale of block b at one base pointer plus a constant. decoded: (8, blocks); tile: (blocks, 8)
    /// </summary>
    private static void InterleaveScales(float* decoded, int blocks, float* tile)
    {
        for (var r = 0; r < 8; r++)
        {
            var source = decoded + ((long)r * blocks);
            for (var b = 0; b < blocks; b++)
            {
                tile[(b * 8) + r] = source[b];
            }
        }
    }

    /// <summary>
    /// An 8-row W tile against TRows X rows: 8·TRows accumulators, each W chunk widened once and used by every
    /// X row. rows: 8 W rows of rowBytes each; tileScales: the rows' decoded Q8_0 scales, block-major (read by
    /// <see cref="Q8_0DecodedChunk"/> only); x: (TRows, cols); y: (TRows, yStride), columns 0..7 written.
    /// </summary>
    private static void Tile<TChunk, TRows>(byte* rows, long rowBytes, float* tileScales, int cols, float* x, float* y, int yStride)
        where TChunk : struct, IChunk
        where TRows : struct, IRowCount
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        var x1 = x + cols;
        var x2 = x + (2L * cols);
        var kEnd = cols & ~(N - 1);
        var lead = PrefetchLead(rowBytes);
        for (var k = 0; k < kEnd; k += N)
        {
            if ((k & 31) == 0 && GemmF32.PrefetchTiles)
            {
                // each row's line `lead` bytes past the one holding columns [k, k + 32): see PrefetchTile
                PrefetchTile(rows, rowBytes, PrefetchOffset(rowBytes, TChunk.PrefetchOffset(k) + lead));
            }

            var u = Vector512.Load(x + k);
            var v = TRows.Value >= 2 ? Vector512.Load(x1 + k) : default;
            var s = TRows.Value >= 3 ? Vector512.Load(x2 + k) : default;
            Step<TChunk, TRows>(TChunk.Load(rows, tileScales, k), u, v, s, ref a0, ref b0, ref c0);
            Step<TChunk, TRows>(TChunk.Load(rows + rowBytes, tileScales + 1, k), u, v, s, ref a1, ref b1, ref c1);
            Step<TChunk, TRows>(TChunk.Load(rows + (2 * rowBytes), tileScales + 2, k), u, v, s, ref a2, ref b2, ref c2);
            Step<TChunk, TRows>(TChunk.Load(rows + (3 * rowBytes), tileScales + 3, k), u, v, s, ref a3, ref b3, ref c3);
            Step<TChunk, TRows>(TChunk.Load(rows + (4 * rowBytes), tileScales + 4, k), u, v, s, ref a4, ref b4, ref c4);
            Step<TChunk, TRows>(TChunk.Load(rows + (5 * rowBytes), tileScales + 5, k), u, v, s, ref a5, ref b5, ref c5);
            Step<TChunk, TRows>(TChunk.Load(rows + (6 * rowBytes), tileScales + 6, k), u, v, s, ref a6, ref b6, ref c6);
            Step<TChunk, TRows>(TChunk.Load(rows + (7 * rowBytes), tileScales + 7, k), u, v, s, ref a7, ref b7, ref c7);
        }

        Finish<TChunk>(GemmF32.Reduce8(a0, a1, a2, a3, a4, a5, a6, a7), rows, rowBytes, x, cols, kEnd, y);
        if (TRows.Value >= 2)
        {
            Finish<TChunk>(GemmF32.Reduce8(b0, b1, b2, b3, b4, b5, b6, b7), rows, rowBytes, x1, cols, kEnd, y + yStride);
        }

        if (TRows.Value >= 3)
        {
            Finish<TChunk>(GemmF32.Reduce8(c0, c1, c2, c3, c4, c5, c6, c7), rows, rowBytes, x2, cols, kEnd, y + (2L * yStride));
        }
    }

    /// <summary>
    /// The 8-row tile against one X row, one W row after another (one weight stream at a time, which AMD's
    /// prefetchers follow better than eight: see <see cref="DecodeRowGrouping"/>). Each row's accumulator, its
    /// Vector512.Sum and its leftover columns are those of <see cref="Tile{TChunk, TRows}"/>, so the same bits.
    /// </summary>
    private static void RowByRow<TChunk>(byte* rows, long rowBytes, float* tileScales, int cols, float* x, float* y)
        where TChunk : struct, IChunk
    {
        var kEnd = cols & ~(N - 1);
        for (var r = 0; r < 8; r++)
        {
            var row = rows + (r * rowBytes);
            var a = Vector512<float>.Zero;
            for (var k = 0; k < kEnd; k += N)
            {
                a = Avx512F.FusedMultiplyAdd(TChunk.Load(row, tileScales + r, k), Vector512.Load(x + k), a);
            }

            var sum = Vector512.Sum(a);
            for (var j = kEnd; j < cols; j++)
            {
                sum += TChunk.Element(row, j) * x[j];
            }

            y[r] = sum;
        }
    }

    /// <summary>One widened W chunk into the accumulators of each X row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Step<TChunk, TRows>(
        Vector512<float> w, Vector512<float> u, Vector512<float> v, Vector512<float> s,
        ref Vector512<float> a, ref Vector512<float> b, ref Vector512<float> c)
        where TChunk : struct, IChunk
        where TRows : struct, IRowCount
    {
        a = Avx512F.FusedMultiplyAdd(w, u, a);
        if (TRows.Value >= 2)
        {
            b = Avx512F.FusedMultiplyAdd(w, v, b);
        }

        if (TRows.Value >= 3)
        {
            c = Avx512F.FusedMultiplyAdd(w, s, c);
        }
    }

    /// <summary>y[r] = sums[r] plus the leftover columns of W row r against x, in ascending order (GemmF32.Tail's order).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish<TChunk>(Vector256<float> sums, byte* rows, long rowBytes, float* x, int cols, int kEnd, float* y)
        where TChunk : struct, IChunk
    {
        sums.Store(y);
        if (kEnd != cols)
        {
            for (var r = 0; r < 8; r++)
            {
                var sum = y[r];
                for (var j = kEnd; j < cols; j++)
                {
                    sum += TChunk.Element(rows + (r * rowBytes), j) * x[j];
                }

                y[r] = sum;
            }
        }
    }

    /// <summary>
    /// How far ahead of its loads each of a tile's eight rows is prefetched, in bytes (<see cref="PrefetchTile"/>):
    /// a whole row, which puts the prefetch at the same place in the next tile's rows, except where rows are a
    /// multiple of 4 KiB long (<see cref="AliasedRowLead"/>). Settable for benchmarks: false, a whole row always.
    /// </summary>
    internal static bool ShortLeadForAliasedRows { get; set; } = true;

    /// <summary>
    /// The lead for rows whose length is a multiple of 4 KiB. An L1 data cache of 32 or 48 KiB has 64 sets of lines,
    /// so addresses 4 KiB apart share a set: the eight rows of a tile at one place fill eight ways of one set, and the
    /// next tile's eight at the same place, asked for a whole tile early, make sixteen, more than the set holds (12
    /// ways on AMD Zen, 8 or 12 on Intel), so the prefetches push out lines the tile is still to read. A kilobyte
    /// ahead within each row, a set 16 lines on, keeps eight lines per set. F16 rows of 2,048 columns are the common
    /// case: every product of a model of width 2,048 (TinyLlama 1.1B's shape), every one of width 4,096 (Llama 7B),
    /// the down projection of the 110m shape. On the Zen 5 VM (2026-12-07, 2 threads, single-sequence decode through
    /// <c>CpuTransformer</c>, <c>step-ab --switch prefetch-lead --part decode</c>): the 1b shape in F16 in 0.76–0.81
    /// of the time (a lead of 512 to 3,072 bytes alike); in the 110m shape the down projection's reads went from
    /// 44–47 to 52–54 GB/s, level with the other products'. A kilobyte for rows that do not alias (the other products
    /// of the 110m shape, 1,536-byte rows) was 4–6% slower than the next tile.
    /// </summary>
    internal const int AliasedRowLead = 1024;

    /// <summary>The prefetch lead for rows of <paramref name="rowBytes"/> bytes (see <see cref="AliasedRowLead"/>).</summary>
    internal static long PrefetchLead(long rowBytes) =>
        ShortLeadForAliasedRows && rowBytes % 4096 == 0 ? AliasedRowLead : rowBytes;

    /// <summary>
    /// Where row 0's prefetch lands, from the tile's start, for a place <paramref name="ahead"/> bytes into a row:
    /// there in the row itself, or past its end that far (less a row) into row 0 of the next tile, 8 rows on. Row r's
    /// lands r rows further.
    /// </summary>
    internal static long PrefetchOffset(long rowBytes, long ahead) => ahead < rowBytes ? ahead : (7 * rowBytes) + ahead;

    /// <summary>
    /// Prefetches, in each of the 8 rows at <paramref name="rows"/>, the line holding byte <paramref name="offset"/>:
    /// in a tile's loop, each row's line <see cref="PrefetchLead"/> bytes past the one holding columns [k, k + 32)
    /// (<see cref="IChunk.PrefetchOffset"/>), in the row itself or, past its end, in the same row of the next tile
    /// (so with a whole row's lead, the next tile at the same place), while this one is
    /// summed. Engine decode of one sequence on the 2-core Xeon VM: F16, alternating builds, 49 → 56–68 tok/s; Q8_0,
    /// with and without in one process (<c>perf/RawInfer.Benchmarks step-ab --switch prefetch --sequences 1</c>,
    /// ABBA medians), 0.76 and 0.87 of the time (an earlier comparison of two builds had lost it in the VM's
    /// noise). Past the last tile the addresses lie beyond the tensor, which a prefetch tolerates. Off with
    /// <see cref="GemmF32.PrefetchTiles"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchTile(byte* rows, long rowBytes, long offset)
    {
        for (var r = 0; r < 8; r++)
        {
            Simd.Prefetch(rows + (r * rowBytes) + offset);
        }
    }

    /// <summary>How one weight format yields widened float32 values.</summary>
    private interface IChunk
    {
        /// <summary>
        /// Columns [k, k + 16) of a row, as <see cref="Widen"/> writes them. k: a multiple of 16. scales: the row's
        /// first scale in the tile's block-major table (stride 8), for the formats that read one.
        /// </summary>
        static abstract Vector512<float> Load(byte* row, float* scales, int k);

        /// <summary>Column j of a row, as <see cref="Widen"/> writes it.</summary>
        static abstract float Element(byte* row, int j);

        /// <summary>A byte of a row on the line that holds columns [k, k + 32) (for the last of them, where they straddle two). k: a multiple of 32.</summary>
        static abstract long PrefetchOffset(int k);
    }

    private readonly struct F16Chunk<TRebias> : IChunk
        where TRebias : struct, IHalfRebias
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, float* scales, int k) =>
            TRebias.SignExtended(Avx512F.ConvertToVector512Int32(Vector256.Load((short*)row + k)));

        public static float Element(byte* row, int j) => HalfConversion.HalfToSingle(((ushort*)row)[j]);

        public static long PrefetchOffset(int k) => 2L * k;
    }

    /// <summary>
    /// An F16 tensor's halves scaled by 2^10 (<see cref="WeightTensor.HalvesScaled"/>), against inputs scaled by 2^102
    /// (<see cref="ScaledHalfRows"/>): the half's bits in float position, sign in bit 31 (VPMOVSXWD copies it up, the
    /// mask clears the copies in bits 28–30), read as the weight times 2^-102, a normal float or zero.
    /// </summary>
    private readonly struct ScaledF16Chunk : IChunk
    {
        /// <summary>Bits 28..30: the sign's copies above a half's exponent once shifted into float position.</summary>
        private const int ClearAboveExponent = unchecked((int)0x8FFFFFFF);

        /// <summary>2^-112: a scaled half's value times this is its bits' float (the weight times 2^-102).</summary>
        private const float Unbias = 1.92592994e-34f;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, float* scales, int k) =>
            ((Avx512F.ConvertToVector512Int32(Vector256.Load((short*)row + k)) << 13) & Vector512.Create(ClearAboveExponent)).AsSingle();

        public static float Element(byte* row, int j) => HalfConversion.HalfToSingle(((ushort*)row)[j]) * Unbias;

        public static long PrefetchOffset(int k) => 2L * k;
    }

    private readonly struct BF16Chunk : IChunk
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, float* scales, int k) =>
            (Avx512F.ConvertToVector512UInt32(Vector256.Load((ushort*)row + k)) << 16).AsSingle();

        public static float Element(byte* row, int j) => HalfConversion.BFloat16ToSingle(((ushort*)row)[j]);

        public static long PrefetchOffset(int k) => 2L * k;
    }

    private readonly struct Q8_0Chunk : IChunk
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, float* scales, int k)
        {
            // block k/32: fp16 scale, then 32 int8; this chunk is its first or second half
            var block = row + ((k >> 5) * MatVecQ8_0.BlockBytes);
            var scale = HalfConversion.FiniteHalfToSingle(*(ushort*)block);
            var quants = Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)block + 2 + (k & 16)));
            return Avx512F.ConvertToVector512Single(quants) * scale;
        }

        public static float Element(byte* row, int j)
        {
            var block = row + ((j >> 5) * MatVecQ8_0.BlockBytes);
            return HalfConversion.FiniteHalfToSingle(*(ushort*)block) * ((sbyte*)block)[2 + (j & 31)];
        }

        // the block's last byte: 34-byte blocks leave no line between two consecutive blocks' last bytes untouched
        public static long PrefetchOffset(int k) => ((k >> 5) * (long)MatVecQ8_0.BlockBytes) + MatVecQ8_0.BlockBytes - 1;
    }

    /// <summary>
    /// Q8_0 with the scales decoded once (<see cref="WeightTensor.DecodedScales"/>): a chunk's scale is one load from
    /// the tile's block-major table (<see cref="InterleaveScales"/>) where <see cref="Q8_0Chunk"/> converts the
    /// block's half in general registers and moves it across (three moves and a broadcast on the vector ports per
    /// chunk). The table holds that conversion's exact value, so the widened floats are the same.
    /// </summary>
    private readonly struct Q8_0DecodedChunk : IChunk
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* row, float* scales, int k)
        {
            var block = row + ((k >> 5) * MatVecQ8_0.BlockBytes);
            var quants = Avx512F.ConvertToVector512Int32(Vector128.Load((sbyte*)block + 2 + (k & 16)));
            return Avx512F.ConvertToVector512Single(quants) * scales[(k >> 5) * 8];
        }

        public static float Element(byte* row, int j) => Q8_0Chunk.Element(row, j);

        public static long PrefetchOffset(int k) => Q8_0Chunk.PrefetchOffset(k);
    }
}
