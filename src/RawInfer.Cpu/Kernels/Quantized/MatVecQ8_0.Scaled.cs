using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

internal static unsafe partial class MatVecQ8_0
{
    /// <summary>Blocks per row up to which a row's block scales fit the stack buffer (4 rows × 4 bytes each).</summary>
    private const int MaxScaledBlocks = 1024;

    /// <summary>
    /// True when <see cref="ScaledRows"/> runs here: AVX2 gathers for the scales; the dots use AVX-VNNI where
    /// present and the AVX2 maddubs/madd pair elsewhere (the same exact integer sums either way).
    /// </summary>
    private static bool ScaledRowsSupported(int blocks) =>
        Avx2.IsSupported && Fma.IsSupported && blocks is > 0 and <= MaxScaledBlocks;

    /// <summary>
    /// y[r] = W[r,:]·x for r in [rowStart, rowEnd), four rows at a time where <see cref="DecodeRowGrouping"/> says so
    /// (else every row goes through <see cref="Dot1"/>), the next four prefetched as they go
    /// (on the 2-core Xeon VM, without AVX-VNNI: single-sequence decode 92 tok/s one row at a time, 103 four at a
    /// time, 121–131 with the prefetch). The same arithmetic as
    /// <see cref="DotAvx2"/>, bit for bit (same block scale d_w·d_x, same integer dot, same two accumulators of
    /// even and odd blocks, same final sum), reorganised so the vector units do less per block: the fp16 block
    /// scales of each row are gathered eight at a time, converted and multiplied by d_x in vectors into a small
    /// buffer first, so the dot loop only broadcasts each scale from memory (a load, not an ALU operation); the
    /// quantized input block is loaded once for four rows. Rows past the last group of four take the same path
    /// one at a time. Measured and left (2026-12-03, one thread, Xeon VM): the scale pass costs about 0.7 ns per
    /// block with the rows in L2, where the whole kernel takes about 2.4 ns per block (14 GB/s); reading the
    /// scales with two 128-byte VBMI byte permutes per eight blocks instead of the gather was slower (0.87 ns);
    /// and from DRAM a kernel that skipped the pass altogether streamed at most 10% faster. But the 110M model's
    /// 117 MB of Q8_0 weights stay in this VM's 260 MiB L3 from one token to the next, where the pass was about a
    /// third of the kernel's time (a profile of <c>rawinfer generate</c>). So a tensor can carry its scales decoded
    /// once (<paramref name="decoded"/>, <see cref="WeightTensor.DecodedScales"/>, which <see cref="CpuTransformer"/>
    /// prepares at construction: 4 bytes per block on top of the 34, beside the weights rather than instead of
    /// them, since their memory is shared with the other backends); the pass is then a load and a multiply per
    /// eight blocks, the same float products. Single-sequence decode of the 110M Q8_0 model with the table and
    /// without (<c>perf/RawInfer.Benchmarks step-ab --switch scales --part decode</c>, 2 threads, ABBA medians):
    /// 0.89 and 0.94 of the time. rows: W data; decoded: (rows, blocks) or null; qx: (blocks·32); xScales:
    /// (blocks); y: (rows)
    /// </summary>
    private static void ScaledRows(
        byte* data, long rowBytes, int blocks, float* decoded, sbyte* qx, float* xScales, float* y, int rowStart, int rowEnd)
    {
        var scales = stackalloc float[4 * blocks];
        var r = rowStart;
        for (; DecodeRowGrouping.FourRowsQ8_0 && r + 4 <= rowEnd; r += 4)
        {
            var row = data + (r * rowBytes);
            for (var i = 0; i < 4; i++)
            {
                RowScales(row + (i * rowBytes), decoded, r + i, blocks, xScales, scales + (i * blocks));
            }

            Dot4(row, rowBytes, blocks, qx, scales, y + r);
        }

        if (ScaleLookup)
        {
            for (; r < rowEnd; r++)
            {
                y[r] = Dot1Lookup(data + (r * rowBytes), blocks, qx, xScales, HalfConversion.FiniteTable);
            }

            return;
        }

        for (; r < rowEnd; r++)
        {
            var row = data + (r * rowBytes);
            RowScales(row, decoded, r, blocks, xScales, scales);
            y[r] = Dot1(row, blocks, qx, scales);
        }
    }

    /// <summary>
    /// True: rows taken one at a time (on AMD, <see cref="DecodeRowGrouping"/>) find each block's scale by its half's
    /// bits in a table of all 65,536 (<see cref="Dot1Lookup"/>) instead of a pass over the row's scales first;
    /// chosen by vendor (AMD), settable for benchmarks and tests (same bits). On the 2-core EPYC VM (Zen 4,
    /// 2026-12-04), single-sequence decode of the 110m Q8_0 model with it and without (the decoded table, which
    /// is faster there than converting: 0.66 and 0.79 of the time at one and two threads) took 0.87–0.88 of the
    /// time at two threads and 0.93 at one (<c>step-ab --switch scale-lookup --part decode</c>): the decoded table
    /// adds 4 bytes to every 34 a token streams from DRAM, while the lookups hit a few cache lines (a matrix's
    /// scales take few distinct values). `LlamaCompare` decode: 222–244 → 250–253 tok/s. The engine's one-row
    /// Q8_0 path (<see cref="GemmQ8_0"/>, one to three X rows) takes it too, eight blocks' scales at a time: engine
    /// steps of one sequence in 0.88–0.98 of the time with the decoded table, two 0.98, three 1.02
    /// (<c>step-ab --switch scale-lookup --sequences N</c>, 2 threads).
    /// </summary>
    internal static bool ScaleLookup { get; set; } = DecodeRowGrouping.VendorIsAmd();

    /// <summary>
    /// As <see cref="Dot1"/> with scales[b] = table[the block's half]·xScales[b], the product <see cref="RowScales"/>
    /// makes: the same bits. row: (blocks·34) bytes; qx: (blocks·32); xScales: (blocks); table: (65,536)
    /// </summary>
    private static float Dot1Lookup(byte* row, int blocks, sbyte* qx, float* xScales, float* table)
    {
        Vector256<float> e = default, o = default;
        var b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            var block = row + (b * BlockBytes);
            var even = table[*(ushort*)block] * xScales[b];
            var odd = table[*(ushort*)(block + BlockBytes)] * xScales[b + 1];
            e = Fma.MultiplyAdd(BlockDot(block, Vector256.Load(qx + (b * BlockElements))), Vector256.Create(even), e);
            o = Fma.MultiplyAdd(BlockDot(block + BlockBytes, Vector256.Load(qx + ((b + 1) * BlockElements))), Vector256.Create(odd), o);
        }

        if (b < blocks)
        {
            var block = row + (b * BlockBytes);
            e = Fma.MultiplyAdd(BlockDot(block, Vector256.Load(qx + (b * BlockElements))), Vector256.Create(table[*(ushort*)block] * xScales[b]), e);
        }

        return Vector256.Sum(e + o);
    }

    /// <summary>
    /// False makes the kernel convert the blocks' halves even where the tensor carries
    /// <see cref="WeightTensor.DecodedScales"/>: for benchmarks that compare both in one run. Same bits either way.
    /// </summary>
    internal static bool UseDecodedScales { get; set; } = true;

    /// <summary>
    /// False turns off the prefetch of the next four rows in <see cref="Dot4"/>, for benchmarks (same bits). It
    /// pays on both VMs measured: one-sequence decode with it took 0.82–0.84 of the time without on the EPYC.
    /// </summary>
    internal static bool PrefetchRows { get; set; } = true;

    /// <summary>
    /// scales[b] = (W block b's scale)·xScales[b] for one row: from the decoded table when there is one (a load
    /// and a multiply per eight blocks), else converted from the row's halves by <see cref="BlockScales"/>. The
    /// same float product either way, as the table holds the exact conversion.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RowScales(byte* row, float* decoded, int r, int blocks, float* xScales, float* scales)
    {
        if (decoded is null)
        {
            BlockScales(row, blocks, xScales, scales);
            return;
        }

        var source = decoded + ((long)r * blocks);
        var b = 0;
        for (; b + 8 <= blocks; b += 8)
        {
            (Vector256.Load(source + b) * Vector256.Load(xScales + b)).Store(scales + b);
        }

        for (; b < blocks; b++)
        {
            scales[b] = source[b] * xScales[b];
        }
    }

    /// <summary>
    /// scales[b] = fp16(W block b's scale)·xScales[b] for one row, computed as <see cref="HalfConversion.FiniteHalfToSingle"/>
    /// then one multiply (the scalar kernel's two roundings). row: (blocks·34) bytes; xScales, scales: (blocks)
    /// </summary>
    private static void BlockScales(byte* row, int blocks, float* xScales, float* scales)
    {
        var b = 0;
        if (blocks >= 8)
        {
            var offsets = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7) * BlockBytes;
            for (; b + 8 <= blocks; b += 8)
            {
                // 4 bytes at each block start: the fp16 scale in the low half (little endian), two quants above (ignored)
                var bits = Avx2.GatherVector256((int*)(row + (b * BlockBytes)), offsets, 1).AsUInt32();
                (HalfConversion.FiniteHalfToSingle(bits) * Vector256.Load(xScales + b)).Store(scales + b);
            }
        }

        for (; b < blocks; b++)
        {
            scales[b] = HalfConversion.FiniteHalfToSingle(*(ushort*)(row + (b * BlockBytes))) * xScales[b];
        }
    }

    /// <summary>Eight int32 partial sums of one block: |q_w| times q_x carrying q_w's sign, through VPDPBUSD.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> BlockDot(byte* block, Vector256<sbyte> x)
    {
        var w = Vector256.Load((sbyte*)(block + 2));
        return Avx.ConvertToVector256Single(IntegerDot(w, x));
    }

    /// <summary>Four consecutive rows. rows: 4 × rowBytes; qx: (blocks·32); scales: 4 × (blocks); y: (4)</summary>
    private static void Dot4(byte* rows, long rowBytes, int blocks, sbyte* qx, float* scales, float* y)
    {
        Vector256<float> e0 = default, e1 = default, e2 = default, e3 = default;
        Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default;
        var s1 = scales + blocks;
        var s2 = scales + (2 * blocks);
        var s3 = scales + (3 * blocks);
        var b = 0;
        // The next four rows, at the same place: their first and last byte of this step's two blocks (68 bytes,
        // so every line of them is asked for). Past the last group this points beyond the tensor, which a
        // prefetch tolerates.
        var next = rows + (4 * rowBytes);
        var prefetch = PrefetchRows;
        for (; b + 2 <= blocks; b += 2)
        {
            var x = Vector256.Load(qx + (b * BlockElements));
            var at = b * BlockBytes;
            if (prefetch)
            {
                for (var i = 0; i < 4; i++)
                {
                    Simd.Prefetch(next + (i * rowBytes) + at);
                    Simd.Prefetch(next + (i * rowBytes) + at + (2 * BlockBytes) - 1);
                }
            }

            e0 = Fma.MultiplyAdd(BlockDot(rows + at, x), Vector256.Create(scales[b]), e0);
            e1 = Fma.MultiplyAdd(BlockDot(rows + rowBytes + at, x), Vector256.Create(s1[b]), e1);
            e2 = Fma.MultiplyAdd(BlockDot(rows + (2 * rowBytes) + at, x), Vector256.Create(s2[b]), e2);
            e3 = Fma.MultiplyAdd(BlockDot(rows + (3 * rowBytes) + at, x), Vector256.Create(s3[b]), e3);
            x = Vector256.Load(qx + ((b + 1) * BlockElements));
            at += BlockBytes;
            o0 = Fma.MultiplyAdd(BlockDot(rows + at, x), Vector256.Create(scales[b + 1]), o0);
            o1 = Fma.MultiplyAdd(BlockDot(rows + rowBytes + at, x), Vector256.Create(s1[b + 1]), o1);
            o2 = Fma.MultiplyAdd(BlockDot(rows + (2 * rowBytes) + at, x), Vector256.Create(s2[b + 1]), o2);
            o3 = Fma.MultiplyAdd(BlockDot(rows + (3 * rowBytes) + at, x), Vector256.Create(s3[b + 1]), o3);
        }

        if (b < blocks)
        {
            var x = Vector256.Load(qx + (b * BlockElements));
            var at = b * BlockBytes;
            e0 = Fma.MultiplyAdd(BlockDot(rows + at, x), Vector256.Create(scales[b]), e0);
            e1 = Fma.MultiplyAdd(BlockDot(rows + rowBytes + at, x), Vector256.Create(s1[b]), e1);
            e2 = Fma.MultiplyAdd(BlockDot(rows + (2 * rowBytes) + at, x), Vector256.Create(s2[b]), e2);
            e3 = Fma.MultiplyAdd(BlockDot(rows + (3 * rowBytes) + at, x), Vector256.Create(s3[b]), e3);
        }

        y[0] = Vector256.Sum(e0 + o0);
        y[1] = Vector256.Sum(e1 + o1);
        y[2] = Vector256.Sum(e2 + o2);
        y[3] = Vector256.Sum(e3 + o3);
    }

    /// <summary>One row, the same arithmetic as one row of <see cref="Dot4"/>. row: (blocks·34) bytes; scales: (blocks)</summary>
    private static float Dot1(byte* row, int blocks, sbyte* qx, float* scales)
    {
        Vector256<float> e = default, o = default;
        var b = 0;
        for (; b + 2 <= blocks; b += 2)
        {
            e = Fma.MultiplyAdd(BlockDot(row + (b * BlockBytes), Vector256.Load(qx + (b * BlockElements))), Vector256.Create(scales[b]), e);
            o = Fma.MultiplyAdd(BlockDot(row + ((b + 1) * BlockBytes), Vector256.Load(qx + ((b + 1) * BlockElements))), Vector256.Create(scales[b + 1]), o);
        }

        if (b < blocks)
        {
            e = Fma.MultiplyAdd(BlockDot(row + (b * BlockBytes), Vector256.Load(qx + (b * BlockElements))), Vector256.Create(scales[b]), e);
        }

        return Vector256.Sum(e + o);
    }
}
