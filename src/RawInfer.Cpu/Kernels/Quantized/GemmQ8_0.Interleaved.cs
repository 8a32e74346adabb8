using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// The products of up to <see cref="InterleavedRows"/> X rows (decode steps of up to that many sequences) on a copy
/// of W whose rows are interleaved in groups of eight (<see cref="Interleave"/>), so that one VPDPBUSD adds four
/// columns of eight rows at once and a
/// block's eight exact sums land one per lane with no horizontal reduction. In the file's layout each block's dot
/// fills a register with partial sums of one row, which then takes an absolute value, a sign and a tree of
/// horizontal adds to become one lane; here the whole block costs eight multiply-adds for eight rows.
/// <para>
/// A group of eight rows is <c>blocks·256</c> bytes of quants, then <c>blocks·16</c> bytes of fp16 scales: for block
/// b, column quad k (columns 4k to 4k + 3 of the block) and row j, the four bytes at <c>b·256 + k·32 + j·4</c> are
/// the row's four quants plus 128 (unsigned, as VPDPBUSD's first operand wants them), and row j's scale is at
/// <c>blocks·256 + b·16 + j·2</c>. A group takes exactly the bytes of its eight rows in the file (272 per block),
/// so a line-aligned copy keeps every group and every 32-byte load on cache lines, and the layout can also replace
/// the file's in place (<see cref="CpuWeightLayout"/>, <see cref="WeightTensor.InterleavedInPlace"/>). Rows past the
/// last whole group are not interleaved: they are read in the file's layout (at their file offsets when rewritten in
/// place). A range that starts or ends inside a group computes the whole group and keeps its rows.
/// </para>
/// <para>
/// The unsigned quants add 128·Σq_x to each block's sum, which the lane starts from the negation of: the sum is the
/// same exact integer, and every output the same chain <c>acc = fma((float)dot_b, d_w[b]·d_x[b], acc)</c> over the
/// blocks in order, so the bits are those of every other path. Without AVX-VNNI the unsigned trick does not hold
/// (VPMADDUBSW saturates at 16 bits), so no copy is made.
/// </para>
/// </summary>
internal static unsafe partial class GemmQ8_0
{
    /// <summary>Bytes of one interleaved group per 32-column block: eight rows' 34-byte blocks.</summary>
    internal const int InterleavedBlockBytes = 8 * MatVecQ8_0.BlockBytes;

    private const int QuadBytes = 32;          // one column quad of eight rows
    private const int GroupQuantBytes = 256;   // one block's quants of eight rows

    [ThreadStatic]
    private static int[]? t_offsets;           // (xRows, blocks) −128·Σq_x of each X block

    [ThreadStatic]
    private static float[]? t_groupScales;     // (blocks, 8) the current group's scales, for more than one X-row tile

    [ThreadStatic]
    private static float[]? t_partOfGroup;     // (xRows, 8) a cut group's outputs (PartOfGroup)

    /// <summary>
    /// True: products of up to <see cref="MaxInterleavedRows"/> X rows read <see cref="WeightTensor.Interleaved"/>
    /// where a tensor has it (settable for benchmarks: the same bits either way, between products). A tensor
    /// rewritten in place has no other layout to read, so its products read the groups whatever this says.
    /// </summary>
    internal static bool UseInterleaved { get; set; } = true;

    /// <summary>
    /// Up to this many X rows a product reads the interleaved copy where the tensor has one (three at a time, each
    /// group of eight W rows read from memory once for all of them); past it, the packed tiles. Engine steps of the
    /// 110m Q8_0 model, interleaved against packed (<c>step-ab --switch q8-interleaved-rows</c>, 2 threads, Zen 5 VM,
    /// 2026-12-07): 4 sequences 0.59 of the time, 8 0.60, 12 0.73, 16 0.82–0.87, 24 0.94, 32 1.00, 64 1.09, prefill
    /// of 512 tokens 1.15; with each group's scales converted once for all X-row tiles, against the copy read up to
    /// 24 X rows: 28 sequences 0.91–0.96, 32 0.91–0.95, 48 0.94–0.95, 64 1.10–1.12, prefill of 128 tokens 1.05–1.06,
    /// of 512 1.08–1.11.
    /// </summary>
    internal const int InterleavedRows = 48;

    /// <summary>The X rows up to which products read the interleaved copy: <see cref="InterleavedRows"/>, settable for benchmarks.</summary>
    internal static int MaxInterleavedRows { get; set; } = InterleavedRows;

    /// <summary>True when a product of <paramref name="xRows"/> X rows with <paramref name="w"/> reads its interleaved copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ReadsInterleaved(in WeightTensor w, int xRows) =>
        w.Interleaved is not null && (UseInterleaved || w.InterleavedInPlace) && xRows <= Math.Max(MaxInterleavedRows, MaxDirectRows) && AvxVnni.IsSupported;

    /// <summary>True when this machine runs the interleaved kernel: the kernel's own needs and AVX-VNNI.</summary>
    public static bool InterleavedSupported => Supported && AvxVnni.IsSupported;

    /// <summary>Bytes of <paramref name="w"/>'s interleaved copy: its whole groups of eight rows.</summary>
    public static long InterleavedBytes(in WeightTensor w) => (long)(w.Rows / 8) * 8 * (w.Cols / Block) * MatVecQ8_0.BlockBytes;

    /// <summary>
    /// Writes <paramref name="w"/>'s whole groups of eight rows to <paramref name="dst"/> in the interleaved layout
    /// (see the class), eight rows' blocks at a time through one 8×8 transpose of their quads. Needs AVX, as any
    /// machine has where <see cref="InterleavedSupported"/>. dst: <see cref="InterleavedBytes"/> bytes
    /// </summary>
    public static void Interleave(in WeightTensor w, byte* dst)
    {
        if (w.Type != TensorType.Q8_0 || w.Cols % Block != 0)
        {
            throw new ArgumentException($"tensor is {w.Type} with {w.Cols} columns, not Q8_0 in whole blocks", nameof(w));
        }

        var blocks = w.Cols / Block;
        long rowBytes = (long)blocks * MatVecQ8_0.BlockBytes;
        var quads = stackalloc Vector256<float>[8];
        var excess = Vector256.Create((byte)0x80).AsSingle(); // q + 128 as an unsigned byte: q with its top bit flipped
        for (var g = 0; g < w.Rows / 8; g++)
        {
            var rows = w.Data + ((long)g * 8 * rowBytes);
            var group = dst + ((long)g * 8 * rowBytes);
            var scales = group + ((long)blocks * GroupQuantBytes);
            for (var b = 0; b < blocks; b++)
            {
                var block = rows + ((long)b * MatVecQ8_0.BlockBytes);

                // the eight rows' 32 quants are eight 4-byte quads each: transposed, quad k of every row lands together
                Transpose8x8(block + 2, rowBytes, quads);
                for (var k = 0; k < 8; k++)
                {
                    (quads[k] ^ excess).Store((float*)(group + ((long)b * GroupQuantBytes) + (k * QuadBytes)));
                }

                for (var j = 0; j < 8; j++)
                {
                    *(ushort*)(scales + (b * 16) + (j * 2)) = *(ushort*)(block + (j * rowBytes));
                }
            }
        }
    }

    /// <summary>
    /// <see cref="Direct"/> on a tensor with interleaved rows: every row of [rowStart, rowEnd) in one of the matrix's
    /// whole groups from the groups (a group the range cuts is computed whole and the range's rows kept), the rows
    /// past the last whole group in the file's layout. q: (xRows, cols); xScales: (xRows, blocks); y: (xRows, yStride)
    /// </summary>
    private static void FromInterleaved(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        var groupsEnd = w.Rows & ~7;
        var blocks = w.Cols / Block;
        var offsets = rowStart < groupsEnd ? LineAligned.Start(LineAligned.Scratch(ref t_offsets, xRows * blocks)) : null; // −128·Σq_x per block: the unsigned quants' excess
        if (offsets is not null)
        {
            BlockOffsets(q, xRows * blocks, offsets);
        }

        var r = rowStart;
        while (r < rowEnd && r < groupsEnd)
        {
            var group = r & ~7;
            var wholeEnd = Math.Min(rowEnd, groupsEnd) & ~7;
            if (r == group && group < wholeEnd)
            {
                Groups(w.Interleaved, blocks, group / 8, wholeEnd / 8, q, xRows, w.Cols, xScales, offsets, y, yStride);
                r = wholeEnd;
                continue;
            }

            var end = Math.Min(group + 8, rowEnd);
            PartOfGroup(in w, q, xScales, offsets, xRows, y, yStride, r, end);
            r = end;
        }

        if (r < rowEnd)
        {
            EdgeRows(in w, q, xScales, xRows, y, yStride, r, rowEnd);
        }
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) of one whole group: the group against every X row into a scratch, then the range's
    /// rows copied out (a range that starts or ends inside a group; the same bits as the group's own outputs).
    /// </summary>
    private static void PartOfGroup(in WeightTensor w, sbyte* q, float* xScales, int* offsets, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        var group = rowStart & ~7;
        var part = LineAligned.Start(LineAligned.Scratch(ref t_partOfGroup, xRows * 8));
        Groups(w.Interleaved, w.Cols / Block, group / 8, (group / 8) + 1, q, xRows, w.Cols, xScales, offsets, part - group, 8);
        for (var t = 0; t < xRows; t++)
        {
            for (var r = rowStart; r < rowEnd; r++)
            {
                y[((long)t * yStride) + r] = part[(t * 8) + r - group];
            }
        }
    }

    /// <summary>
    /// Rows [rowStart, rowEnd) outside the copy's whole groups, in the file's layout, whose kernels take at most
    /// <see cref="MaxDirectRows"/> X rows at a time. q: (xRows, cols); xScales: (xRows, blocks); y: (xRows, yStride)
    /// </summary>
    private static void EdgeRows(in WeightTensor w, sbyte* q, float* xScales, int xRows, float* y, int yStride, int rowStart, int rowEnd)
    {
        var blocks = w.Cols / Block;
        for (var t = 0; t < xRows; t += MaxDirectRows)
        {
            InFileLayout(
                in w, q + ((long)t * w.Cols), xScales + ((long)t * blocks), Math.Min(MaxDirectRows, xRows - t), y + ((long)t * yStride), yStride, rowStart, rowEnd);
        }
    }

    /// <summary>offsets[i] = −128·(the sum of block i's 32 quants). q: (count·32); offsets: (count)</summary>
    private static void BlockOffsets(sbyte* q, int count, int* offsets)
    {
        var ones = Vector256.Create((byte)1);
        for (var i = 0; i < count; i++)
        {
            var partial = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, ones, Vector256.Load(q + ((long)i * Block)));
            offsets[i] = -128 * Vector256.Sum(partial);
        }
    }

    /// <summary>
    /// Groups [g0, g1) of eight rows against every X row, three at a time (<see cref="OneGroup{TRows}"/>), so that
    /// a group comes from memory once and from L1 for the others. rows: the interleaved copy; q: (xRows, cols);
    /// xScales, offsets: (xRows, blocks); y: (xRows, yStride)
    /// </summary>
    private static void Groups(byte* rows, int blocks, int g0, int g1, sbyte* q, int xRows, int cols, float* xScales, int* offsets, float* y, int yStride)
    {
        long groupBytes = (long)blocks * InterleavedBlockBytes;
        var prefetch = PrefetchRows;
        // with more than one X-row tile, each group's scales are converted once for all of them: steps of 8 and 16
        // sequences in 0.96 and 0.94 of the time, products alone of 6 / 16 / 24 X rows 0.84 / 0.94 / 0.95 (step-ab
        // with and without, Zen 5 VM, 2026-12-07)
        var decoded = xRows > 3 ? (Vector256<float>*)LineAligned.Start(LineAligned.Scratch(ref t_groupScales, blocks * 8)) : null;
        for (var g = g0; g < g1; g++)
        {
            var group = rows + (g * groupBytes);
            var dws = (Vector256<float>*)null;
            if (decoded is not null)
            {
                var scales = group + ((long)blocks * GroupQuantBytes);
                for (var b = 0; b < blocks; b++)
                {
                    decoded[b] = HalfConversion.FiniteHalfToSingle(Avx2.ConvertToVector256Int32((ushort*)(scales + (b * 16))).AsUInt32());
                }

                dws = decoded;
            }

            for (var t = 0; t < xRows; t += 3)
            {
                var at = (long)t * blocks;
                var qt = q + ((long)t * cols);
                var yt = y + ((long)t * yStride) + (g * 8);
                var ahead = prefetch && t == 0;
                switch (xRows - t)
                {
                    case 1:
                        OneGroup<One>(group, dws, blocks, ahead, qt, cols, xScales + at, offsets + at, yt, yStride);
                        break;
                    case 2:
                        OneGroup<Two>(group, dws, blocks, ahead, qt, cols, xScales + at, offsets + at, yt, yStride);
                        break;
                    default:
                        OneGroup<Three>(group, dws, blocks, ahead, qt, cols, xScales + at, offsets + at, yt, yStride);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// One group of eight rows against TRows X rows: per block, four chains of two VPDPBUSD each (eight column quads)
    /// from the block's offset, added to the eight rows' exact sums, then each output's FMA chain step; the bytes
    /// <see cref="PrefetchBytes"/> ahead asked for when <paramref name="prefetch"/>. group: its bytes; dws: its
    /// (blocks) scales converted to float32, or null to convert them here;
    /// q: (TRows, cols); xScales, offsets: (TRows, blocks); y: the group's outputs in X row 0, the others yStride apart.
    /// Tried and dropped: each column quad loaded once for the two or three X rows (two chains per X row instead of
    /// four), 1.02–1.06 of the time at 2, 3, 8 and 16 sequences (<c>step-ab</c>, Zen 5 VM, 2026-12-07): L1 serves
    /// the repeated loads, and the shorter chains cost more than the loads did.
    /// </summary>
    private static void OneGroup<TRows>(byte* group, Vector256<float>* dws, int blocks, bool prefetch, sbyte* q, int cols, float* xScales, int* offsets, float* y, int yStride)
        where TRows : IRowCount
    {
        var n = TRows.Value;
        var scales = group + ((long)blocks * GroupQuantBytes);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default;
        for (var b = 0; b < blocks; b++)
        {
            var quads = group + ((long)b * GroupQuantBytes);
            if (prefetch)
            {
                // the copy is read front to back, so the bytes ahead of this block's are the ones coming
                PrefetchEightBlocks(quads + PrefetchBytes); // 272 bytes: one block of the group, as eight of a file row
            }

            var dw = dws is not null ? dws[b] : HalfConversion.FiniteHalfToSingle(Avx2.ConvertToVector256Int32((ushort*)(scales + (b * 16))).AsUInt32());
            acc0 = BlockStep(quads, q + (b * Block), offsets[b], dw * Vector256.Create(xScales[b]), acc0);
            if (n > 1)
            {
                acc1 = BlockStep(quads, q + cols + (b * Block), offsets[blocks + b], dw * Vector256.Create(xScales[blocks + b]), acc1);
            }

            if (n > 2)
            {
                acc2 = BlockStep(quads, q + (2 * cols) + (b * Block), offsets[(2 * blocks) + b], dw * Vector256.Create(xScales[(2 * blocks) + b]), acc2);
            }
        }

        acc0.Store(y);
        if (n > 1)
        {
            acc1.Store(y + yStride);
        }

        if (n > 2)
        {
            acc2.Store(y + (2L * yStride));
        }
    }

    /// <summary>
    /// acc + (float)(eight rows' exact block sums)·scales: one step of the eight outputs' chains. quads: the block's
    /// 256 bytes; x: its 32 quants of one X row; offset: −128·Σx
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockStep(byte* quads, sbyte* x, int offset, Vector256<float> scales, Vector256<float> acc)
    {
        var s0 = AvxVnni.MultiplyWideningAndAdd(Vector256.Create(offset), Vector256.Load(quads), Quad(x, 0));
        var s1 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(quads + QuadBytes), Quad(x, 1));
        var s2 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(quads + (2 * QuadBytes)), Quad(x, 2));
        var s3 = AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, Vector256.Load(quads + (3 * QuadBytes)), Quad(x, 3));
        s0 = AvxVnni.MultiplyWideningAndAdd(s0, Vector256.Load(quads + (4 * QuadBytes)), Quad(x, 4));
        s1 = AvxVnni.MultiplyWideningAndAdd(s1, Vector256.Load(quads + (5 * QuadBytes)), Quad(x, 5));
        s2 = AvxVnni.MultiplyWideningAndAdd(s2, Vector256.Load(quads + (6 * QuadBytes)), Quad(x, 6));
        s3 = AvxVnni.MultiplyWideningAndAdd(s3, Vector256.Load(quads + (7 * QuadBytes)), Quad(x, 7));
        return Fma.MultiplyAdd(Avx.ConvertToVector256Single((s0 + s1) + (s2 + s3)), scales, acc);
    }

    /// <summary>X's quants 4k to 4k + 3 in every 32-bit lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<sbyte> Quad(sbyte* x, int k) => Vector256.Create(*(int*)(x + (k * 4))).AsSByte();
}
