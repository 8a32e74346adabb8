using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Y = X·Wᵀ for Q8_0 weights with integer products, for any number of X rows (prefill, batched decode and the
/// engine's single-sequence steps alike). Each X row is quantized per 32-block as llama.cpp quantizes activations
/// (<see cref="MatVecQ8_0.QuantizeActivations"/>), and every output is defined as
/// <c>acc = fma((float)dot_b, d_w[b]·d_x[b], acc)</c> over the blocks b in ascending order from 0, where dot_b is
/// the exact int32 sum of the block's 32 products (<see cref="DotReference"/>). The sum being exact and the
/// float chain running per output, the result of a pair never depends on the tiling, on how many X rows share
/// the call or on which core runs it: a sequence's output does not depend on what else is in its batch.
/// <para>
/// .NET 10 has no AVX-512 VNNI (VPDPBUSD on 512 bits; its <c>AvxVnni</c> class is the 256-bit VEX form that Zen 4
/// lacks), so the products run through VPMADDWD on int16: a tile of 32 W rows is sign-extended once per call and
/// transposed so that one 512-bit register holds the same two columns of 16 rows; each multiply then meets a
/// broadcast pair of X columns and yields 16 rows' partial sums, 32 multiply-adds per instruction where the
/// float32 FMA does 16. On the 2-core EPYC (Zen 4) VM an idealised loop of these ran 65–73 G multiply-adds/s per
/// core against 49–56 G for float32 FMAs. With one to three X rows the packing costs more than it saves, so those
/// products read W unpacked (<see cref="Direct"/>), with the same bits.
/// </para>
/// <para>
/// Against the widening path (<c>perf/RawInfer.Benchmarks step-ab --switch int8 --part gemm --sequences N</c>: the
/// products of one 110m step, random weights, one thread, ABBA; EPYC VM, 2026-12-04), time on / off: 1 X row
/// 0.62–0.68, 2 rows 0.91–1.03, 3 rows 0.88–1.33, 4 rows 0.83–0.97, 16 rows 0.83–0.89, 64 rows 0.76–0.78, 512 rows
/// 0.84, with a register tile of 4 X rows; with 6 (32 W rows × 6 X rows: 12 integer and 12 float accumulators, no
/// spill) 64 rows 0.80–0.85 against 0.86–0.89 for 4 in the same minutes, 512 rows 0.73–0.79 against 0.74–0.76.
/// In the engine (<c>step-ab --switch int8 --model m110-q8_0.gguf</c>, 2 threads, 4-row tile): prefill of 512
/// tokens 0.82–0.89, 64 sequences 0.90–0.91, 16 sequences 1.00, 4 sequences 0.97–1.09, 1 sequence 0.83–0.90.
/// Then the unpacked path's X rows ran their block chains one after another, each waiting four cycles a block on
/// its own FMAs; side by side (<see cref="RowByRow{TRows}"/>), products alone 1 / 2 / 3 X rows 0.65 / 0.91 / 1.17 (from
/// 0.70 / 0.95 / 1.55 in the same minutes), engine steps of 1 / 2 / 3 / 4 sequences 0.69 / 0.82 / 1.06 / 0.87.
/// Tried and dropped: for one X row, two W rows side by side to overlap their chains the same way: 1.76 of the
/// widening path's time instead of 0.65 (two DRAM streams in lockstep, which these AMD cores serve badly, as
/// <see cref="DecodeRowGrouping"/> found); and slicing a packed tile's blocks so each slice stays in L1, the
/// output chains carried through y between slices (same bits): 64 rows 0.90 and 512 rows 1.01 of the widening
/// path's time, X then streaming from L2 once per slice.
/// </para>
/// </summary>
[SkipLocalsInit]
internal static unsafe partial class GemmQ8_0
{
    /// <summary>W rows per packed tile: two 16-lane registers.</summary>
    public const int TileRows = 32;

    private const int Half = 16;               // W rows in one register
    private const int Pairs = 16;              // column pairs per 32-column block
    private const int XStep = 6;               // X rows per register tile
    internal const int MaxDirectRows = 3;      // up to this many X rows, no packing (Direct)
    private const int GroupRows = 8;           // W rows whose chains run side by side in the unpacked path (RowGroup)
    private const int Block = MatVecQ8_0.BlockElements;

    [ThreadStatic]
    private static int[]? t_packed;            // (blocks, 16 pairs, 32 rows) int16 pairs of the current W tile

    [ThreadStatic]
    private static short[]? t_widened;         // (32, cols) the current W tile's rows widened to int16

    [ThreadStatic]
    private static float[]? t_tileScales;      // (blocks, 32 rows) the tile's block scales

    [ThreadStatic]
    private static short[]? t_x;               // (xRows, cols) quantized X widened to int16, for the packed path

    [ThreadStatic]
    private static float[]? t_xScales;         // (xRows, blocks)

    [ThreadStatic]
    private static float[]? t_folds;           // (2, xRows ≤ 3, 8, blocks) a row group's block sums and scales (RowGroup)

    [ThreadStatic]
    private static sbyte[]? t_q;               // (xRows ≤ 3, cols) quantized X for the unpacked path, else (cols)

    /// <summary>
    /// False routes Q8_0 products through the float32 widening path instead (<see cref="Gemm"/>), for benchmarks
    /// that compare both in one process. The two give different bits (this one quantizes X), so a process must not
    /// switch while it serves requests.
    /// </summary>
    internal static bool Enabled { get; set; } = true;

    /// <summary>
    /// False runs each W row's chain alone in the unpacked path (<see cref="RowByRow{TRows}"/>) instead of eight
    /// rows' side by side (<see cref="RowGroup{TRows}"/>); the same bits. For <c>step-ab --switch q8-fold-rows</c>.
    /// One row's chain is a serial FMA a block (four to five cycles each), which bounds a fast core's decode of a
    /// 110m step near 1.7M blocks × 4 cycles a thread. On the Zen 1 VM, whose integer work is slower than the chain,
    /// side by side measured 0.97–1.00 of the time (2026-12-06, 2 threads, ABBA: <c>--part decode</c> 1.004,
    /// <c>--sequences 1</c> 0.974, <c>--sequences 3</c> 0.965), and 1.07–1.09 before its transpose lost the
    /// cross-lane permutes. Not yet measured on a faster core, where the chain is expected to matter.
    /// </summary>
    internal static bool FoldAcrossRows { get; set; } = true;

    /// <summary>
    /// The unpacked path's software prefetch of the weight stream, <see cref="PrefetchBytes"/> ahead into L1 (rows
    /// are contiguous, so past a row's end that is the next row); same bits, settable for
    /// <c>step-ab --switch q8-prefetch</c>. On the 2-core EPYC VM of family 17h (Zen 1, 2026-12-06) the hardware
    /// prefetchers alone left the integer work and the DRAM stream taking turns: one X row's products of a 110m step
    /// on one thread in 0.72 of the time without (17.1 → 12.3 ms, <c>--part gemm --sequences 1</c>), single-sequence
    /// decode on two threads 0.81 (89 → 110 tok/s, <c>--part decode --model m110-q8_0.gguf</c>); 2 KiB ahead
    /// measured within noise of 4 KiB, 1 KiB and 8 KiB slower (1.10, 1.15). Not measured on other cores: it follows
    /// <see cref="MatVecF16.PrefetchStream"/>, whose prefetch of the F16 stream cost on Zen 4 and paid on Zen 1,
    /// Zen 5 and Intel (where this path runs only under <c>RAWINFER_DECODE_ROWS=1</c>).
    /// </summary>
    internal static bool PrefetchRows { get; set; } =
        DecodeRowGrouping.Processor != DecodeRowGrouping.ProcessorKind.AmdBeforeZen5 || !Vector512.IsHardwareAccelerated;

    /// <summary>How far ahead of its loads the unpacked path prefetches W.</summary>
    internal const int PrefetchBytes = 4096;

    /// <summary>
    /// True where the packed tiles run on 512 bits (AVX-512 BW), false on AVX2 alone (<see cref="Packed256"/>: the
    /// same bits). Settable for tests, which compare the two on a machine that has both.
    /// </summary>
    internal static bool Wide { get; set; } = Avx512BW.IsSupported && Vector512.IsHardwareAccelerated;

    /// <summary>
    /// True: the unpacked path's block dots take AVX-VNNI's VPDPBUSD (one instruction) where the machine has it,
    /// instead of the maddubs/madd pair (<see cref="IBlockDots"/>, chosen once per call). Both sum the same four byte
    /// products into each int32 lane, exactly, so the same bits; settable for <c>step-ab --switch
    /// q8-vnni</c> and for tests. On the 2-core EPYC VM of family 1Ah (Zen 5, 2026-12-06, 2 threads, ABBA) within
    /// noise: single-sequence decode 1.010 and 1.005 (one thread) of the time, engine steps of one sequence 1.003, of
    /// three 0.983 and 0.986. (A first version tested the switch in every block's dot; its baseline paid for that test,
    /// and it measured 0.85–0.89.) Two more variants with the same sums measured no better once chosen per call and were
    /// dropped: q_w + 128 against q_x less 128·Σ q_x per block (one operation a block fewer; 0.991–1.005), and the lanes
    /// reduced on 512 bits by in-lane unpacks instead of horizontal adds (three sequences 1.06–1.21, decode 1.01–1.02).
    /// </summary>
    internal static bool Vnni { get; set; } = true;

    private static bool VnniDots => AvxVnni.IsSupported && Vnni;

    /// <summary>True when this machine runs the kernel (AVX2 and FMA; AVX-512 BW for the wide tiles) and it is switched on.</summary>
    public static bool Supported => Enabled && Avx2.IsSupported && Fma.IsSupported && Vector256.IsHardwareAccelerated;

    /// <summary>
    /// Y[i, o] = W[o, :]·X[i, :] for i in [0, xRows), o in [rowStart, rowEnd).
    /// W: (out, cols) Q8_0; x: (xRows, cols); y: (xRows, yStride), only columns [rowStart, rowEnd) written.
    /// </summary>
    public static void Rows(in WeightTensor w, float* x, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Type == TensorType.Q8_0 && w.Cols % Block == 0 && Supported);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows && w.Rows <= yStride);
        if (xRows <= 0 || rowStart == rowEnd)
        {
            return;
        }

        var cols = w.Cols;
        var blocks = cols / Block;
        var direct = xRows <= MaxDirectRows || ReadsInterleaved(in w, xRows);
        var pX = LineAligned.Start(LineAligned.Scratch(ref t_x, direct ? 0 : xRows * cols));
        var pXScales = LineAligned.Start(LineAligned.Scratch(ref t_xScales, xRows * blocks));
        var pQ = LineAligned.Start(LineAligned.Scratch(ref t_q, (direct ? xRows : 1) * cols)); // all rows for the unpacked path, else one at a time
        if (direct)
        {
            QuantizeRows(x, xRows, cols, pQ, pXScales);
            Direct(in w, pQ, pXScales, xRows, y, yStride, rowStart, rowEnd);
            return;
        }

        for (var t = 0; t < xRows; t++)
        {
            QuantizeRows(x + ((long)t * cols), 1, cols, pQ, pXScales + ((long)t * blocks));
            Widen16(pQ, cols, pX + ((long)t * cols));
        }

        Packed(in w, pX, pXScales, xRows, y, yStride, rowStart, rowEnd);
    }

    /// <summary>
    /// X quantized per block, as <see cref="Rows"/> quantizes it: for a caller that shares one quantization among
    /// several products and workers (<c>GemmJob</c>). x: (xRows, cols); q: (xRows, cols); xScales: (xRows, cols/32)
    /// </summary>
    public static void Quantize(float* x, int xRows, int cols, sbyte* q, float* xScales) => QuantizeRows(x, xRows, cols, q, xScales);

    /// <summary>
    /// As <see cref="Rows"/> with X already quantized by <see cref="Quantize"/>: the same bits.
    /// q: (xRows, cols); xScales: (xRows, cols/32); y: (xRows, yStride), only columns [rowStart, rowEnd) written.
    /// </summary>
    public static void RowsQuantized(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        Debug.Assert(w.Type == TensorType.Q8_0 && w.Cols % Block == 0 && Supported);
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows && w.Rows <= yStride);
        if (xRows <= 0 || rowStart == rowEnd)
        {
            return;
        }

        if (xRows <= MaxDirectRows || ReadsInterleaved(in w, xRows))
        {
            Direct(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
            return;
        }

        var pX = LineAligned.Start(LineAligned.Scratch(ref t_x, xRows * w.Cols));
        Widen16(q, (long)xRows * w.Cols, pX);
        Packed(in w, pX, xScales, xRows, y, yStride, rowStart, rowEnd);
    }

    /// <summary>More than <see cref="MaxDirectRows"/> X rows: W packed tile by tile. qx: X quantized and widened to int16.</summary>
    private static void Packed(in WeightTensor w, short* pX, float* pXScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        if (!Wide)
        {
            Packed256(in w, pX, pXScales, xRows, y, yStride, rowStart, rowEnd);
            return;
        }

        var cols = w.Cols;
        var blocks = cols / Block;
        var pPacked = LineAligned.Start(LineAligned.Scratch(ref t_packed, blocks * Pairs * TileRows));
        var pScales = LineAligned.Start(LineAligned.Scratch(ref t_tileScales, blocks * TileRows));
        var pWidened = LineAligned.Start(LineAligned.Scratch(ref t_widened, TileRows * cols));
        var rowBytes = (long)blocks * MatVecQ8_0.BlockBytes;
        var groups = PacksGroups(in w, rowStart); // every tile starts 32 rows after the last
        var source = groups ? w.Interleaved : w.Data; // a group of the copy sits where its rows sit in the file
        for (var r0 = rowStart; r0 < rowEnd; r0 += TileRows)
        {
            var rows = Math.Min(TileRows, rowEnd - r0);
            if (groups)
            {
                PackGroups(in w, r0, rows, blocks, pPacked);
            }
            else
            {
                Pack(w.Data + (r0 * rowBytes), rowBytes, rows, blocks, pPacked, pWidened);
            }

            TileScales(in w, r0, rows, blocks, pScales, groups);

            // while this tile multiplies, DRAM streams the next tile's rows into L2 for their packing, the
            // range shared out among this tile's register tiles
            var ahead = new PrefetchAhead(source + ((r0 + rows) * rowBytes), Math.Min(TileRows, rowEnd - r0 - rows) * rowBytes);
            var calls = (xRows + XStep - 1) / XStep;
            var t = 0;
            for (; t + XStep <= xRows; t += XStep)
            {
                Tile<Six>(pPacked, pScales, blocks, pX + ((long)t * cols), pXScales + ((long)t * blocks), cols, y + ((long)t * yStride) + r0, yStride, rows, ahead.Part(t / XStep, calls));
            }

            var py = y + ((long)t * yStride) + r0;
            var px = pX + ((long)t * cols);
            var ps = pXScales + ((long)t * blocks);
            var last = ahead.Part(calls - 1, calls);
            switch (xRows - t)
            {
                case 5:
                    Tile<Five>(pPacked, pScales, blocks, px, ps, cols, py, yStride, rows, last);
                    break;
                case 4:
                    Tile<Four>(pPacked, pScales, blocks, px, ps, cols, py, yStride, rows, last);
                    break;
                case 3:
                    Tile<Three>(pPacked, pScales, blocks, px, ps, cols, py, yStride, rows, last);
                    break;
                case 2:
                    Tile<Two>(pPacked, pScales, blocks, px, ps, cols, py, yStride, rows, last);
                    break;
                case 1:
                    Tile<One>(pPacked, pScales, blocks, px, ps, cols, py, yStride, rows, last);
                    break;
            }
        }
    }

    /// <summary>
    /// The definition every output follows: Σ over blocks in order of fma((float)dot_b, d_w·d_x, acc), dot_b the
    /// exact integer sum of the block's products. row: (blocks·34) Q8_0 bytes; qx: (blocks·32); xScales: (blocks)
    /// </summary>
    internal static float DotReference(byte* row, sbyte* qx, float* xScales, int blocks)
    {
        var acc = 0f;
        for (var b = 0; b < blocks; b++)
        {
            var block = row + (b * MatVecQ8_0.BlockBytes);
            var qw = (sbyte*)(block + 2);
            var dot = 0;
            for (var i = 0; i < Block; i++)
            {
                dot += qw[i] * qx[(b * Block) + i];
            }

            var scale = HalfConversion.FiniteHalfToSingle(*(ushort*)block) * xScales[b];
            acc = MathF.FusedMultiplyAdd(dot, scale, acc);
        }

        return acc;
    }

    /// <summary>Each X row quantized per block. x: (xRows, cols); q: (xRows, cols); xScales: (xRows, cols/32)</summary>
    private static void QuantizeRows(float* x, int xRows, int cols, sbyte* q, float* xScales)
    {
        var blocks = cols / Block;
        for (var t = 0; t < xRows; t++)
        {
            MatVecQ8_0.QuantizeActivations(
                new ReadOnlySpan<float>(x + ((long)t * cols), cols),
                new Span<sbyte>(q + ((long)t * cols), cols),
                new Span<float>(xScales + ((long)t * blocks), blocks));
        }
    }

    /// <summary>dst[i] = q[i] as int16. q, dst: (count), count a multiple of 32</summary>
    private static void Widen16(sbyte* q, long count, short* dst)
    {
        if (!Wide)
        {
            for (long k = 0; k < count; k += 16)
            {
                Avx2.ConvertToVector256Int16(Vector128.Load(q + k)).Store(dst + k);
            }

            return;
        }

        for (long k = 0; k < count; k += Block)
        {
            Avx512BW.ConvertToVector512Int16(Vector256.Load(q + k)).Store(dst + k);
        }
    }

    /// <summary>
    /// The tile's block scales: scales[b·32 + j] = d_w of row j's block b (0 for rows past <paramref name="rows"/>),
    /// gathered from the decoded table when the tensor carries one, else converted from the
    /// halves (the same values); eight rows per gather, or per load from a group of the interleaved rows when the
    /// tile is packed from them (<paramref name="groups"/>).
    /// </summary>
    private static void TileScales(in WeightTensor w, int r0, int rows, int blocks, float* scales, bool groups)
    {
        var rowBytes = blocks * MatVecQ8_0.BlockBytes;
        var decoded = MatVecQ8_0.UseDecodedScales ? w.DecodedScales : null;
        var lanes = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        for (var group = 0; group < TileRows / 8; group++)
        {
            var first = r0 + (group * 8);
            if (rows <= group * 8)
            {
                for (var b = 0; b < blocks; b++)
                {
                    Vector256<float>.Zero.Store(scales + (b * TileRows) + (group * 8)); // no row of the tensor here
                }

                continue;
            }

            var valid = Vector256.LessThan(lanes, Vector256.Create(rows - (group * 8)));
            if (groups && decoded is null && first < (w.Rows & ~7))
            {
                if ((first & 7) == 0 && first + 8 <= (w.Rows & ~7))
                {
                    // a whole group of the interleaved rows: its eight scales side by side
                    for (var b = 0; b < blocks; b++)
                    {
                        (GroupScales(in w, r0, group, blocks, b) & valid.AsSingle()).Store(scales + (b * TileRows) + (group * 8));
                    }

                    continue;
                }

                // rows of two groups (a range starting inside one), or of a group and the rows past the last: one by one
                var count = Math.Min(8, rows - (group * 8));
                for (var b = 0; b < blocks; b++)
                {
                    var dst = scales + (b * TileRows) + (group * 8);
                    for (var j = 0; j < 8; j++)
                    {
                        dst[j] = j < count ? RowScale(in w, first + j, blocks, b) : 0;
                    }
                }

                continue;
            }

            var safe = lanes & valid; // rows past the tile read the group's first row, then are zeroed
            for (var b = 0; b < blocks; b++)
            {
                var d = decoded is not null
                    ? Avx2.GatherVector256(decoded + ((long)first * blocks) + b, safe * blocks, 4)
                    : HalfConversion.FiniteHalfToSingle(
                        Avx2.GatherVector256((int*)(w.Data + ((long)first * rowBytes) + (b * MatVecQ8_0.BlockBytes)), safe * rowBytes, 1).AsUInt32());
                (d & valid.AsSingle()).Store(scales + (b * TileRows) + (group * 8));
            }
        }
    }

    /// <summary>
    /// One to <see cref="MaxDirectRows"/> X rows, without packing W: eight W rows at a time, each block's integer dot
    /// of every row by AVX2 maddubs/madd or AVX-VNNI (<see cref="Vnni"/>; |q_w| times q_x carrying q_w's sign), the eight rows' partial sums reduced
    /// to their exact block sums in one register, then converted and scaled as the definition says. The packing's
    /// transpose costs more than a product with so few rows (one X row: 2.7x the widening path's time, packed).
    /// Rows past the last group of eight take <see cref="DotReference"/>. A tensor with an interleaved copy
    /// (<see cref="WeightTensor.Interleaved"/>) is read there instead, by <see cref="FromInterleaved"/>.
    /// q: (xRows, cols); xScales: (xRows, blocks); y: (xRows, yStride)
    /// </summary>
    private static void Direct(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        if (ReadsInterleaved(in w, xRows))
        {
            FromInterleaved(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
            return;
        }

        InFileLayout(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
    }

    /// <summary><see cref="Direct"/> on the file's layout. q: (xRows, cols); xScales: (xRows, blocks); y: (xRows, yStride)</summary>
    private static void InFileLayout(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        var blocks = w.Cols / Block;
        if (!DecodeRowGrouping.FourRowsQ8_0 && blocks % 8 == 0)
        {
            // the block dots are chosen here, once, as a type argument: the kernels then test no switch per block
            if (VnniDots)
            {
                Unpacked<SignedVnniDots>(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
            }
            else
            {
                Unpacked<MaddubsDots>(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
            }

            return;
        }

        if (VnniDots)
        {
            Lockstep<SignedVnniDots>(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
        }
        else
        {
            Lockstep<MaddubsDots>(in w, q, xScales, xRows, y, yStride, rowStart, rowEnd);
        }
    }

    /// <summary>
    /// <see cref="Direct"/>'s path where rows go eight in lockstep (<see cref="DecodeRowGrouping.FourRowsQ8_0"/>) or
    /// a row's blocks are not whole groups of eight: each block's dot by <typeparamref name="TDots"/>, rows past the
    /// last group of eight by <see cref="DotReference"/>. q: (xRows, cols); xScales: (xRows, blocks); y: (xRows, yStride)
    /// </summary>
    private static void Lockstep<TDots>(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
        where TDots : IBlockDots
    {
        var blocks = w.Cols / Block;
        var rowBytes = blocks * MatVecQ8_0.BlockBytes;
        var decoded = MatVecQ8_0.UseDecodedScales ? w.DecodedScales : null;
        var offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var r = rowStart;
        for (; r + 8 <= rowEnd; r += 8)
        {
            var rows = w.Data + ((long)r * rowBytes);
            for (var t = 0; t < xRows; t++)
            {
                var qx = q + ((long)t * w.Cols);
                var dx = xScales + ((long)t * blocks);
                var acc = Vector256<float>.Zero;
                for (var b = 0; b < blocks; b++)
                {
                    var block = rows + (b * MatVecQ8_0.BlockBytes);
                    var x = Vector256.Load(qx + (b * Block));
                    var d0 = TDots.Dot(block, x);
                    var d1 = TDots.Dot(block + rowBytes, x);
                    var d2 = TDots.Dot(block + (2 * rowBytes), x);
                    var d3 = TDots.Dot(block + (3 * rowBytes), x);
                    var d4 = TDots.Dot(block + (4 * rowBytes), x);
                    var d5 = TDots.Dot(block + (5 * rowBytes), x);
                    var d6 = TDots.Dot(block + (6 * rowBytes), x);
                    var d7 = TDots.Dot(block + (7 * rowBytes), x);

                    var sums = EightSums(d0, d1, d2, d3, d4, d5, d6, d7);

                    var dw = decoded is not null
                        ? Avx2.GatherVector256(decoded + ((long)r * blocks) + b, offsets * blocks, 4)
                        : HalfConversion.FiniteHalfToSingle(Avx2.GatherVector256((int*)block, offsets * rowBytes, 1).AsUInt32());
                    acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(sums), dw * Vector256.Create(dx[b]), acc);
                }

                acc.Store(y + ((long)t * yStride) + r);
            }
        }

        for (; r < rowEnd; r++)
        {
            for (var t = 0; t < xRows; t++)
            {
                y[((long)t * yStride) + r] = DotReference(w.Data + ((long)r * rowBytes), q + ((long)t * w.Cols), xScales + ((long)t * blocks), blocks);
            }
        }
    }

    /// <summary>
    /// <see cref="Direct"/>'s path for rows of whole groups of eight blocks, each block's dot by
    /// <typeparamref name="TDots"/>. q: (xRows, cols); xScales: (xRows, blocks); y: (xRows, yStride)
    /// </summary>
    private static void Unpacked<TDots>(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
        where TDots : IBlockDots
    {
        var blocks = w.Cols / Block;
        var rowBytes = blocks * MatVecQ8_0.BlockBytes;
        var decoded = MatVecQ8_0.UseDecodedScales ? w.DecodedScales : null;
        var table = MatVecQ8_0.ScaleLookup ? HalfConversion.FiniteTable : null;
        var r = rowStart;
        if (FoldAcrossRows)
        {
            var pFolds = LineAligned.Start(LineAligned.Scratch(ref t_folds, 2 * GroupRows * xRows * blocks));
            for (; r + GroupRows <= rowEnd; r += GroupRows)
            {
                var rowsDecoded = decoded is not null ? decoded + ((long)r * blocks) : null;
                var first = w.Data + ((long)r * rowBytes);
                switch (xRows)
                {
                    case 1:
                        RowGroup<One, TDots>(first, rowBytes, rowsDecoded, table, blocks, q, w.Cols, xScales, y + r, yStride, pFolds);
                        break;
                    case 2:
                        RowGroup<Two, TDots>(first, rowBytes, rowsDecoded, table, blocks, q, w.Cols, xScales, y + r, yStride, pFolds);
                        break;
                    default:
                        RowGroup<Three, TDots>(first, rowBytes, rowsDecoded, table, blocks, q, w.Cols, xScales, y + r, yStride, pFolds);
                        break;
                }
            }
        }

        for (; r < rowEnd; r++)
        {
            var rowDecoded = decoded is not null ? decoded + ((long)r * blocks) : null;
            switch (xRows)
            {
                case 1:
                    RowByRow<One, TDots>(w.Data + ((long)r * rowBytes), rowDecoded, table, blocks, q, w.Cols, xScales, y + r, yStride);
                    break;
                case 2:
                    RowByRow<Two, TDots>(w.Data + ((long)r * rowBytes), rowDecoded, table, blocks, q, w.Cols, xScales, y + r, yStride);
                    break;
                default:
                    RowByRow<Three, TDots>(w.Data + ((long)r * rowBytes), rowDecoded, table, blocks, q, w.Cols, xScales, y + r, yStride);
                    break;
            }
        }
    }

    /// <summary>
    /// One W row against every X row, its blocks eight at a time: their integer dots reduced to eight exact block
    /// sums in one register (lane = block), scaled there, then folded into the output's accumulator block by block
    /// in order (the definition's chain). One row at a time keeps DRAM on one stream, which AMD's cores want
    /// (<see cref="DecodeRowGrouping"/>). TRows X rows (1 to 3). row: (blocks·34) bytes; decoded: (blocks) or null;
    /// q: (TRows, cols); xScales: (TRows, blocks); y: this row's output in X row 0, the others yStride apart
    /// </summary>
    private static void RowByRow<TRows, TDots>(byte* row, float* decoded, float* table, int blocks, sbyte* q, int cols, float* xScales, float* y, int yStride)
        where TRows : IRowCount
        where TDots : IBlockDots
    {
        var n = TRows.Value;
        var offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * MatVecQ8_0.BlockBytes;
        var q1 = q + (n > 1 ? cols : 0);
        var q2 = q + (n > 2 ? 2 * cols : 0);
        var s1 = xScales + (n > 1 ? blocks : 0);
        var s2 = xScales + (n > 2 ? 2 * blocks : 0);
        Vector128<float> acc0 = default, acc1 = default, acc2 = default;
        var prefetch = PrefetchRows;
        for (var b = 0; b < blocks; b += 8)
        {
            var block = row + (b * MatVecQ8_0.BlockBytes);
            var dw = EightScales(block, prefetch, table, decoded, b, offsets);

            // every X row's eight block sums and scales first, then their chains side by side, so that one chain's
            // latency (four cycles a block) hides behind the others
            var (sum0, scale0) = EightBlocks<TDots>(block, q + (b * Block), dw, xScales + b);
            var (sum1, scale1) = n > 1 ? EightBlocks<TDots>(block, q1 + (b * Block), dw, s1 + b) : default;
            var (sum2, scale2) = n > 2 ? EightBlocks<TDots>(block, q2 + (b * Block), dw, s2 + b) : default;
            acc0 = Fold(sum0, scale0, acc0);
            if (n > 1)
            {
                acc1 = Fold(sum1, scale1, acc1);
            }

            if (n > 2)
            {
                acc2 = Fold(sum2, scale2, acc2);
            }
        }

        y[0] = acc0.ToScalar();
        if (n > 1)
        {
            y[yStride] = acc1.ToScalar();
        }

        if (n > 2)
        {
            y[2L * yStride] = acc2.ToScalar();
        }
    }

    /// <summary>
    /// Eight W rows against every X row, the same bits as <see cref="RowByRow{TRows}"/> on each: the rows are read
    /// one after another (one DRAM stream), each row's eight-block sums and scales are stored as
    /// <see cref="RowByRow{TRows}"/> computes them, and then the eight rows' chains run side by side, one lane each,
    /// block by block in order: one FMA a block for eight outputs, where one row alone waits the FMA's latency on
    /// every block. rows: the first row's bytes, the others rowBytes apart; decoded: (8, blocks) or null;
    /// q: (TRows, cols); xScales: (TRows, blocks); y: the first row's output in X row 0, the other X rows yStride
    /// apart; folds: (2, TRows, 8, blocks) scratch
    /// </summary>
    private static void RowGroup<TRows, TDots>(
        byte* rows, long rowBytes, float* decoded, float* table, int blocks, sbyte* q, int cols, float* xScales, float* y, int yStride, float* folds)
        where TRows : IRowCount
        where TDots : IBlockDots
    {
        var n = TRows.Value;
        var offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * MatVecQ8_0.BlockBytes;
        var plane = GroupRows * blocks;       // one X row's sums (or scales) of the eight rows
        var scalesAt = n * plane;             // the scales after all the sums
        var prefetch = PrefetchRows;
        for (var j = 0; j < GroupRows; j++)
        {
            var row = rows + (j * rowBytes);
            for (var b = 0; b < blocks; b += 8)
            {
                var block = row + (b * MatVecQ8_0.BlockBytes);
                var dw = EightScales(block, prefetch, table, decoded, ((long)j * blocks) + b, offsets);
                for (var t = 0; t < n; t++)
                {
                    var (sums, scales) = EightBlocks<TDots>(block, q + ((long)t * cols) + (b * Block), dw, xScales + ((long)t * blocks) + b);
                    var at = (t * plane) + (j * blocks) + b;
                    sums.Store(folds + at);
                    scales.Store(folds + scalesAt + at);
                }
            }
        }

        var s = stackalloc Vector256<float>[8];
        var c = stackalloc Vector256<float>[8];
        for (var t = 0; t < n; t++)
        {
            var sums = folds + (t * plane);
            var scales = sums + scalesAt;
            var acc = Vector256<float>.Zero;
            for (var b = 0; b < blocks; b += 8)
            {
                Transpose8x8((byte*)(sums + b), blocks * sizeof(float), s);
                Transpose8x8((byte*)(scales + b), blocks * sizeof(float), c);
                for (var k = 0; k < 8; k++)
                {
                    acc = Fma.MultiplyAdd(s[k], c[k], acc);
                }
            }

            acc.Store(y + ((long)t * yStride));
        }
    }

    /// <summary>
    /// The W scales of eight consecutive blocks of one row (looked up, read from the decoded table at
    /// decoded[index], or converted), after asking for the blocks <see cref="PrefetchBytes"/> ahead when
    /// <paramref name="prefetch"/>. offsets: the eight blocks' byte offsets
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> EightScales(byte* block, bool prefetch, float* table, float* decoded, long index, Vector256<int> offsets)
    {
        if (prefetch)
        {
            PrefetchEightBlocks(block + PrefetchBytes);
        }

        return table is not null
            ? LookUp8(block, table)
            : decoded is not null
            ? Vector256.Load(decoded + index)
            : HalfConversion.FiniteHalfToSingle(Avx2.GatherVector256((int*)block, offsets, 1).AsUInt32());
    }

    /// <summary>
    /// Asks for the cache lines of eight blocks (272 bytes) from <paramref name="at"/> on: five lines, whatever the
    /// alignment. The interleaved copy's block of eight rows is as long.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchEightBlocks(byte* at)
    {
        Sse.Prefetch0(at);
        Sse.Prefetch0(at + 64);
        Sse.Prefetch0(at + 128);
        Sse.Prefetch0(at + 192);
        Sse.Prefetch0(at + 256);
    }

    /// <summary>
    /// An 8×8 transpose of 32-bit elements: dst[k][j] = element k of the eight at <c>src + j·strideBytes</c>. Each
    /// register is loaded as two halves, rows j and j + 4, so two unpack levels finish it without a cross-lane permute
    /// (eight micro-ops each on Zen 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(byte* src, long strideBytes, Vector256<float>* dst)
    {
        for (var half = 0; half < 2; half++)
        {
            var at = src + (half * 16);    // elements 4·half .. 4·half + 3
            var r0 = Vector256.Create(Vector128.Load((float*)at), Vector128.Load((float*)(at + (4 * strideBytes))));
            var r1 = Vector256.Create(Vector128.Load((float*)(at + strideBytes)), Vector128.Load((float*)(at + (5 * strideBytes))));
            var r2 = Vector256.Create(Vector128.Load((float*)(at + (2 * strideBytes))), Vector128.Load((float*)(at + (6 * strideBytes))));
            var r3 = Vector256.Create(Vector128.Load((float*)(at + (3 * strideBytes))), Vector128.Load((float*)(at + (7 * strideBytes))));
            var t0 = Avx.UnpackLow(r0, r1);  // rows 0, 1 of elements 0, 1 | rows 4, 5
            var t1 = Avx.UnpackHigh(r0, r1); // of elements 2, 3
            var t2 = Avx.UnpackLow(r2, r3);  // rows 2, 3 of elements 0, 1 | rows 6, 7
            var t3 = Avx.UnpackHigh(r2, r3);
            dst[4 * half] = Avx.UnpackLow(t0.AsDouble(), t2.AsDouble()).AsSingle();
            dst[(4 * half) + 1] = Avx.UnpackHigh(t0.AsDouble(), t2.AsDouble()).AsSingle();
            dst[(4 * half) + 2] = Avx.UnpackLow(t1.AsDouble(), t3.AsDouble()).AsSingle();
            dst[(4 * half) + 3] = Avx.UnpackHigh(t1.AsDouble(), t3.AsDouble()).AsSingle();
        }
    }

    /// <summary>The scales of eight consecutive blocks, each looked up by its half's bits. block: the first block; table: (65,536)</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> LookUp8(byte* block, float* table) => Vector256.Create(
        table[*(ushort*)block],
        table[*(ushort*)(block + MatVecQ8_0.BlockBytes)],
        table[*(ushort*)(block + (2 * MatVecQ8_0.BlockBytes))],
        table[*(ushort*)(block + (3 * MatVecQ8_0.BlockBytes))],
        table[*(ushort*)(block + (4 * MatVecQ8_0.BlockBytes))],
        table[*(ushort*)(block + (5 * MatVecQ8_0.BlockBytes))],
        table[*(ushort*)(block + (6 * MatVecQ8_0.BlockBytes))],
        table[*(ushort*)(block + (7 * MatVecQ8_0.BlockBytes))]);

    /// <summary>
    /// Eight consecutive blocks of one W row against one X row: their exact integer sums as floats (lane = block)
    /// and their scales d_w·d_x. block: the first block's bytes; x: its 256 quants; dw, dx: (8) scales
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Sums, Vector256<float> Scales) EightBlocks<TDots>(byte* block, sbyte* x, Vector256<float> dw, float* dx)
        where TDots : IBlockDots
    {
        var d0 = TDots.Dot(block, Vector256.Load(x));
        var d1 = TDots.Dot(block + MatVecQ8_0.BlockBytes, Vector256.Load(x + Block));
        var d2 = TDots.Dot(block + (2 * MatVecQ8_0.BlockBytes), Vector256.Load(x + (2 * Block)));
        var d3 = TDots.Dot(block + (3 * MatVecQ8_0.BlockBytes), Vector256.Load(x + (3 * Block)));
        var d4 = TDots.Dot(block + (4 * MatVecQ8_0.BlockBytes), Vector256.Load(x + (4 * Block)));
        var d5 = TDots.Dot(block + (5 * MatVecQ8_0.BlockBytes), Vector256.Load(x + (5 * Block)));
        var d6 = TDots.Dot(block + (6 * MatVecQ8_0.BlockBytes), Vector256.Load(x + (6 * Block)));
        var d7 = TDots.Dot(block + (7 * MatVecQ8_0.BlockBytes), Vector256.Load(x + (7 * Block)));
        return (Avx.ConvertToVector256Single(EightSums(d0, d1, d2, d3, d4, d5, d6, d7)), dw * Vector256.Load(dx));
    }

    /// <summary>acc = fma(sums[k], scales[k], acc) for k = 0..7 in order: eight steps of the definition's chain.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fold(Vector256<float> sums, Vector256<float> scales, Vector128<float> acc)
    {
        var lo = sums.GetLower();
        var hi = sums.GetUpper();
        var slo = scales.GetLower();
        var shi = scales.GetUpper();
        acc = Fma.MultiplyAddScalar(lo, slo, acc);
        acc = Fma.MultiplyAddScalar(Sse.Shuffle(lo, lo, 1), Sse.Shuffle(slo, slo, 1), acc);
        acc = Fma.MultiplyAddScalar(Sse.Shuffle(lo, lo, 2), Sse.Shuffle(slo, slo, 2), acc);
        acc = Fma.MultiplyAddScalar(Sse.Shuffle(lo, lo, 3), Sse.Shuffle(slo, slo, 3), acc);
        acc = Fma.MultiplyAddScalar(hi, shi, acc);
        acc = Fma.MultiplyAddScalar(Sse.Shuffle(hi, hi, 1), Sse.Shuffle(shi, shi, 1), acc);
        acc = Fma.MultiplyAddScalar(Sse.Shuffle(hi, hi, 2), Sse.Shuffle(shi, shi, 2), acc);
        return Fma.MultiplyAddScalar(Sse.Shuffle(hi, hi, 3), Sse.Shuffle(shi, shi, 3), acc);
    }

    /// <summary>Lane i = the sum of all eight lanes of d_i (exact integer sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> EightSums(
        Vector256<int> d0, Vector256<int> d1, Vector256<int> d2, Vector256<int> d3,
        Vector256<int> d4, Vector256<int> d5, Vector256<int> d6, Vector256<int> d7)
    {
        // per 128-bit half: g0 = sums of d0..d3, g1 = of d4..d7 (over that half's four lanes); the halves are then
        // added by extracts and an insert rather than two cross-lane permutes, eight micro-ops each on Zen 1
        // (single-sequence Q8_0 decode there in 0.98 of the time, step-ab ABBA, 2026-12-06)
        var g0 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(d0, d1), Avx2.HorizontalAdd(d2, d3));
        var g1 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(d4, d5), Avx2.HorizontalAdd(d6, d7));
        return Vector256.Create(g0.GetLower() + g0.GetUpper(), g1.GetLower() + g1.GetUpper());
    }

    /// <summary>
    /// Packs up to 32 W rows: packed[((b·16 + p)·32) + j] holds row j's columns 32b + 2p and 32b + 2p + 1 as two
    /// int16 (low, high), zero for rows past <paramref name="count"/>. A whole tile is read block by block, 16 rows
    /// at a time, straight into the transpose: its bytes are in L2 by then (<see cref="Rows"/> prefetches the next
    /// tile while one multiplies; 16 X rows 0.73–0.83 of the widening path's time this way, 0.90 staged). A partial
    /// tile (the last of a range) is first read in memory order and widened into <paramref name="widened"/>, then
    /// transposed from there. (Before the prefetch, with one X row, reading 32 rows in lockstep made the product
    /// 2.9x slower than the widening path: DRAM then served 32 streams.) rows: W bytes from the tile's first row;
    /// packed: (blocks, 16, 32) int32; widened: (32, blocks·32) int16
    /// </summary>
    private static void Pack(byte* rows, long rowBytes, int count, int blocks, int* packed, short* widened)
    {
        var a = stackalloc Vector512<int>[Half];
        if (count == TileRows)
        {
            // a whole tile, which the previous tile's prefetch has brought into L2: straight from W, no staging
            for (var half = 0; half < 2; half++)
            {
                var first = rows + (half * Half * rowBytes) + 2;
                for (var b = 0; b < blocks; b++)
                {
                    var src = first + (b * MatVecQ8_0.BlockBytes);
                    for (var j = 0; j < Half; j++)
                    {
                        a[j] = Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(src + (j * rowBytes)))).AsInt32();
                    }

                    TransposeRows(a, packed + (b * Pairs * TileRows) + (half * Half));
                }
            }

            return;
        }

        var cols = blocks * Block;
        for (var j = 0; j < TileRows; j++)
        {
            var dst = widened + (j * cols);
            if (j >= count)
            {
                new Span<short>(dst, cols).Clear();
                continue;
            }

            var row = rows + (j * rowBytes) + 2;
            for (var b = 0; b < blocks; b++)
            {
                Avx512BW.ConvertToVector512Int16(Vector256.Load((sbyte*)(row + (b * MatVecQ8_0.BlockBytes)))).Store(dst + (b * Block));
            }
        }

        for (var half = 0; half < 2; half++)
        {
            var first = widened + (half * Half * cols);
            for (var b = 0; b < blocks; b++)
            {
                Transpose((int*)(first + (b * Block)), cols / 2, packed + (b * Pairs * TileRows) + (half * Half), a);
            }
        }
    }

    /// <summary>
    /// A 16×16 int32 transpose: dst[p·32 + j] = src[j·stride + p] (dst rows 32 ints apart, the packed layout's pair
    /// stride). Unpacks within 128-bit lanes, then a 4×4 transpose of the lanes. a: 16 vectors of scratch
    /// </summary>
    private static void Transpose(int* src, int stride, int* dst, Vector512<int>* a)
    {
        for (var j = 0; j < Half; j++)
        {
            a[j] = Vector512.Load(src + (j * stride));
        }

        TransposeRows(a, dst);
    }

    /// <summary>The transpose of 16 rows already loaded: dst[p·32 + j] = a[j][p]. a: (16) rows, overwritten</summary>
    private static void TransposeRows(Vector512<int>* a, int* dst)
    {
        for (var g = 0; g < 4; g++)
        {
            // rows 4g..4g+3 → per 128-bit lane L, column 4L + m of those four rows, in a[4g + m]
            var a0 = a[4 * g];
            var a1 = a[(4 * g) + 1];
            var a2 = a[(4 * g) + 2];
            var a3 = a[(4 * g) + 3];
            var b0 = Avx512F.UnpackLow(a0, a1);
            var b1 = Avx512F.UnpackHigh(a0, a1);
            var b2 = Avx512F.UnpackLow(a2, a3);
            var b3 = Avx512F.UnpackHigh(a2, a3);
            a[4 * g] = Avx512F.UnpackLow(b0.AsInt64(), b2.AsInt64()).AsInt32();
            a[(4 * g) + 1] = Avx512F.UnpackHigh(b0.AsInt64(), b2.AsInt64()).AsInt32();
            a[(4 * g) + 2] = Avx512F.UnpackLow(b1.AsInt64(), b3.AsInt64()).AsInt32();
            a[(4 * g) + 3] = Avx512F.UnpackHigh(b1.AsInt64(), b3.AsInt64()).AsInt32();
        }

        for (var m = 0; m < 4; m++)
        {
            // lane L of a[m], a[4+m], a[8+m], a[12+m] together make column 4L + m
            var d0 = Avx512F.Shuffle4x128(a[m], a[4 + m], 0x44);
            var d1 = Avx512F.Shuffle4x128(a[m], a[4 + m], 0xEE);
            var d2 = Avx512F.Shuffle4x128(a[8 + m], a[12 + m], 0x44);
            var d3 = Avx512F.Shuffle4x128(a[8 + m], a[12 + m], 0xEE);
            Avx512F.Shuffle4x128(d0, d2, 0x88).Store(dst + (m * TileRows));
            Avx512F.Shuffle4x128(d0, d2, 0xDD).Store(dst + ((4 + m) * TileRows));
            Avx512F.Shuffle4x128(d1, d3, 0x88).Store(dst + ((8 + m) * TileRows));
            Avx512F.Shuffle4x128(d1, d3, 0xDD).Store(dst + ((12 + m) * TileRows));
        }
    }

    /// <summary>
    /// One register tile: the packed 32 W rows against <typeparamref name="TRows"/> X rows, every block's 16 pairs
    /// into int32 accumulators, then each block's sums converted and scaled into the float accumulators.
    /// packed: (blocks, 16, 32); scales: (blocks, 32); qx: TRows rows of (cols) int16; xScales: TRows rows of
    /// (blocks); y: TRows rows of yStride, columns [0, rows) written; ahead: bytes to ask into L2 meanwhile, spread over the blocks.
    /// </summary>
    private static void Tile<TRows>(
        int* packed, float* scales, int blocks, short* qx, float* xScales, int cols, float* y, int yStride, int rows, PrefetchAhead ahead)
        where TRows : IRowCount
    {
        var line = ahead.Start;
        var linesPerBlock = (int)((ahead.Bytes + ((long)blocks * PrefetchAhead.LineBytes) - 1) / ((long)blocks * PrefetchAhead.LineBytes));
        var n = TRows.Value;
        var x0 = (int*)qx;
        var x1 = (int*)(qx + (n > 1 ? 1 * cols : 0));
        var x2 = (int*)(qx + (n > 2 ? 2 * cols : 0));
        var x3 = (int*)(qx + (n > 3 ? 3 * cols : 0));
        var x4 = (int*)(qx + (n > 4 ? 4 * cols : 0));
        var x5 = (int*)(qx + (n > 5 ? 5 * cols : 0));
        var s1 = xScales + (n > 1 ? 1 * blocks : 0);
        var s2 = xScales + (n > 2 ? 2 * blocks : 0);
        var s3 = xScales + (n > 3 ? 3 * blocks : 0);
        var s4 = xScales + (n > 4 ? 4 * blocks : 0);
        var s5 = xScales + (n > 5 ? 5 * blocks : 0);
        Vector512<float> f00 = default, f01 = default, f10 = default, f11 = default, f20 = default, f21 = default;
        Vector512<float> f30 = default, f31 = default, f40 = default, f41 = default, f50 = default, f51 = default;
        for (var b = 0; b < blocks; b++)
        {
            Vector512<int> i00 = default, i01 = default, i10 = default, i11 = default, i20 = default, i21 = default;
            Vector512<int> i30 = default, i31 = default, i40 = default, i41 = default, i50 = default, i51 = default;
            var pw = packed + (b * Pairs * TileRows);
            var c = b * Pairs; // the block's first pair, in int32 units of an X row
            for (var i = 0; i < linesPerBlock && line < ahead.End; i++, line += PrefetchAhead.LineBytes)
            {
                Simd.PrefetchL2(line);
            }

            for (var p = 0; p < Pairs; p++)
            {
                var w0 = Vector512.Load(pw + (p * TileRows)).AsInt16();
                var w1 = Vector512.Load(pw + (p * TileRows) + Half).AsInt16();
                var v = Vector512.Create(x0[c + p]).AsInt16();
                i00 += Avx512BW.MultiplyAddAdjacent(w0, v);
                i01 += Avx512BW.MultiplyAddAdjacent(w1, v);
                if (n > 1)
                {
                    v = Vector512.Create(x1[c + p]).AsInt16();
                    i10 += Avx512BW.MultiplyAddAdjacent(w0, v);
                    i11 += Avx512BW.MultiplyAddAdjacent(w1, v);
                }

                if (n > 2)
                {
                    v = Vector512.Create(x2[c + p]).AsInt16();
                    i20 += Avx512BW.MultiplyAddAdjacent(w0, v);
                    i21 += Avx512BW.MultiplyAddAdjacent(w1, v);
                }

                if (n > 3)
                {
                    v = Vector512.Create(x3[c + p]).AsInt16();
                    i30 += Avx512BW.MultiplyAddAdjacent(w0, v);
                    i31 += Avx512BW.MultiplyAddAdjacent(w1, v);
                }

                if (n > 4)
                {
                    v = Vector512.Create(x4[c + p]).AsInt16();
                    i40 += Avx512BW.MultiplyAddAdjacent(w0, v);
                    i41 += Avx512BW.MultiplyAddAdjacent(w1, v);
                }

                if (n > 5)
                {
                    v = Vector512.Create(x5[c + p]).AsInt16();
                    i50 += Avx512BW.MultiplyAddAdjacent(w0, v);
                    i51 += Avx512BW.MultiplyAddAdjacent(w1, v);
                }
            }

            var d0 = Vector512.Load(scales + (b * TileRows));
            var d1 = Vector512.Load(scales + (b * TileRows) + Half);
            f00 = Scale(i00, d0, xScales[b], f00);
            f01 = Scale(i01, d1, xScales[b], f01);
            if (n > 1)
            {
                f10 = Scale(i10, d0, s1[b], f10);
                f11 = Scale(i11, d1, s1[b], f11);
            }

            if (n > 2)
            {
                f20 = Scale(i20, d0, s2[b], f20);
                f21 = Scale(i21, d1, s2[b], f21);
            }

            if (n > 3)
            {
                f30 = Scale(i30, d0, s3[b], f30);
                f31 = Scale(i31, d1, s3[b], f31);
            }

            if (n > 4)
            {
                f40 = Scale(i40, d0, s4[b], f40);
                f41 = Scale(i41, d1, s4[b], f41);
            }

            if (n > 5)
            {
                f50 = Scale(i50, d0, s5[b], f50);
                f51 = Scale(i51, d1, s5[b], f51);
            }
        }

        StoreRow(f00, f01, y, rows);
        if (n > 1)
        {
            StoreRow(f10, f11, y + (1 * yStride), rows);
        }

        if (n > 2)
        {
            StoreRow(f20, f21, y + (2 * yStride), rows);
        }

        if (n > 3)
        {
            StoreRow(f30, f31, y + (3 * yStride), rows);
        }

        if (n > 4)
        {
            StoreRow(f40, f41, y + (4 * yStride), rows);
        }

        if (n > 5)
        {
            StoreRow(f50, f51, y + (5 * yStride), rows);
        }
    }

    /// <summary>acc + (float)dot · (d_w·d_x), lane by lane: the definition's step for one block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Scale(Vector512<int> dot, Vector512<float> dw, float dx, Vector512<float> acc) =>
        Avx512F.FusedMultiplyAdd(Avx512F.ConvertToVector512Single(dot), dw * Vector512.Create(dx), acc);

    /// <summary>y[0, rows) from the two 16-row halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(Vector512<float> low, Vector512<float> high, float* y, int rows)
    {
        if (rows == TileRows)
        {
            low.Store(y);
            high.Store(y + Half);
            return;
        }

        var all = stackalloc float[TileRows];
        low.Store(all);
        high.Store(all + Half);
        for (var j = 0; j < rows; j++)
        {
            y[j] = all[j];
        }
    }

}

/// <summary>
/// How <see cref="GemmQ8_0"/>'s unpacked path computes one block's eight int32 partial sums: each lane the sum of four
/// adjacent products |q_w|·(q_x carrying q_w's sign), the same exact integers either way. A type argument, so that the
/// kernels test no switch per block.
/// </summary>
internal unsafe interface IBlockDots
{
    /// <summary>The eight partial sums. block: the block's 34 bytes (scale, then quants); x: its 32 X quants</summary>
    static abstract Vector256<int> Dot(byte* block, Vector256<sbyte> x);
}

/// <summary>AVX2: maddubs, then pairs added by madd (|q_w| ≤ 128 and |q_x| ≤ 127 keep maddubs from saturating: 2·128·127 &lt; 2^15).</summary>
internal readonly unsafe struct MaddubsDots : IBlockDots
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(byte* block, Vector256<sbyte> x)
    {
        var w = Vector256.Load((sbyte*)(block + 2));
        return Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w)), Vector256.Create((short)1));
    }
}

/// <summary>AVX-VNNI: one VPDPBUSD.</summary>
internal readonly unsafe struct SignedVnniDots : IBlockDots
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<int> Dot(byte* block, Vector256<sbyte> x)
    {
        var w = Vector256.Load((sbyte*)(block + 2));
        return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Avx2.Abs(w), Avx2.Sign(x, w));
    }
}
