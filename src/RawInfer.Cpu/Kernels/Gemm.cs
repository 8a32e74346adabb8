using System.Diagnostics;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Cpu.Kernels;

/// <summary>
/// Y = X·Wᵀ for a batch of activation rows against one weight matrix stored (out, in), computed for a range of
/// W rows so the worker pool can split one product across cores. The single point where the element type picks
/// its kernel: F32 runs the cache-blocked GEMM (<see cref="GemmF32"/>) directly; Q8_0 runs integer products
/// (<see cref="GemmQ8_0"/>) where AVX-512 BW is present; F16, BF16 (and Q8_0 elsewhere) are widened tile by tile
/// (<see cref="Quantized.Widen"/>) and then run the F32 GEMM, or, against at most three X rows, widened in registers
/// (<see cref="WidenInRegisters"/>, on 512 bits, and on 256 for F16 and BF16) to the same values summed in the same
/// order. While a widened tile multiplies,
/// the next tile's rows are prefetched into L2 (<see cref="PrefetchAhead"/>), so its widening does not wait on DRAM.
/// </summary>
internal static unsafe class Gemm
{
    /// <summary>
    /// Bytes of widened float32 W rows one tile holds (at least 8 rows) against up to <see cref="L1TileXRows"/> X
    /// rows: small enough to stay in L1 while the X rows pass it. Against the 192 KiB tiles before, which stayed in
    /// L2 (<c>step-ab --switch tile-size --model m110-f16.gguf</c>, 2 threads, Zen 5 VM with 48 KiB of L1 data
    /// cache, 2026-12-07): 6 sequences 0.905 of the time, 8 0.90–0.93, 16 0.76–0.85, 32 0.95, 64 0.955, prefill of
    /// 128 tokens 0.97–1.00, of 512 tokens 1.01–1.04 (so more X rows keep the L2 tiles); 16 KiB tiles kept less
    /// (prefill of 512 1.061), 64 KiB too (16 sequences 0.87), 512 KiB lost (1.05–1.08). Not measured on cores
    /// with 32 KiB of L1.
    /// </summary>
    internal const int WidenedTileBytes = 32 * 1024;

    /// <summary>Bytes of a widened tile against more X rows than <see cref="L1TileXRows"/>: it stays in L2 beside them.</summary>
    internal const int L2TileBytes = 192 * 1024;

    /// <summary>The X rows up to which the tiles are <see cref="WidenedTileBytes"/>.</summary>
    internal const int L1TileXRows = 128;

    /// <summary>The tile size against up to <see cref="L1TileXRows"/> X rows: <see cref="WidenedTileBytes"/>, settable for benchmarks.</summary>
    internal static int TileBytes { get; set; } = WidenedTileBytes;

    [ThreadStatic]
    private static float[]? t_widened; // (tileRows, cols) scratch of this thread

    /// <summary>
    /// Y[i, o] = W[o, :]·X[i, :] for i in [0, xRows), o in [rowStart, rowEnd).
    /// W: (out, in); x: (xRows, in) row-major; y: (xRows, out) row-major, only columns [rowStart, rowEnd) written.
    /// </summary>
    public static void Rows(in WeightTensor w, float* x, int xRows, float* y, int rowStart, int rowEnd)
    {
        Debug.Assert(rowStart >= 0 && rowStart <= rowEnd && rowEnd <= w.Rows);
        if (w.Type == TensorType.F32)
        {
            GemmF32.Rows((float*)w.Data, w.Cols, x, xRows, y, w.Rows, rowStart, rowEnd);
            return;
        }

        // Q8_0 with integer products, whatever the number of X rows (so a row's bits never depend on the batch)
        if (w.Type == TensorType.Q8_0 && (GemmQ8_0.Supported || w.InterleavedInPlace))
        {
            GemmQ8_0.Rows(in w, x, xRows, y, w.Rows, rowStart, rowEnd);
            return;
        }

        Widened(in w, x, xRows, y, rowStart, rowEnd);
    }

    /// <summary>
    /// As <see cref="Rows"/> for F16, BF16 or Q8_0 weights widened to float32 (in registers for a few X rows, else
    /// tile by tile): the path every such type takes, except Q8_0 where <see cref="GemmQ8_0"/> runs.
    /// </summary>
    internal static void Widened(in WeightTensor w, float* x, int xRows, float* y, int rowStart, int rowEnd)
    {
        CpuWeightLayout.ThrowIfRewritten(in w);
        // F16 / BF16 / Q8_0 against a few X rows (decode): widened in registers, same values and order as below
        if (xRows <= WidenInRegisters.MaxRows(w.Type) && xRows > 0 && WidenInRegisters.Supports(w.Type, w.Cols))
        {
            WidenInRegisters.Rows(in w, x, xRows, y, w.Rows, rowStart, rowEnd);
            return;
        }

        if (xRows <= WidenInRegisters.MaxNarrowXRows && xRows > 0 && WidenInRegisters.SupportsNarrow(w.Type, w.Cols) && !w.HalvesScaled)
        {
            WidenInRegisters.RowsNarrow(in w, x, xRows, y, w.Rows, rowStart, rowEnd);
            return;
        }

        // F16 / BF16 / Q8_0: widen a tile of W rows to float32 (kept in L1, or in L2 for many X rows), then run the
        // F32 GEMM over every X row.
        // The conversion is paid once per weight per step, not once per X row, and every row takes the same path
        // whatever the batch size, so a row's result never depends on what else is in the batch.
        var cols = w.Cols;
        var tileBytes = xRows <= L1TileXRows ? TileBytes : L2TileBytes;
        var tileRows = Math.Max(8, (tileBytes / (cols * sizeof(float))) & ~7);
        var tile = LineAligned.Start(LineAligned.Scratch(ref t_widened, tileRows * cols)); // grown once per thread and width
        var rowBytes = GgmlTypes.RowBytes(w.Type, cols);
        for (var r0 = rowStart; r0 < rowEnd; r0 += tileRows)
        {
            var rows = Math.Min(tileRows, rowEnd - r0);
            Widen.Rows(in w, r0, rows, tile);

            // while this tile multiplies, DRAM streams the next tile's rows into L2 for their widening
            var nextRows = Math.Min(tileRows, rowEnd - r0 - rows);
            var ahead = new PrefetchAhead(w.Data + ((r0 + rows) * rowBytes), nextRows * rowBytes);
            GemmF32.Rows(tile, cols, x, xRows, y + r0, w.Rows, 0, rows, ahead);
        }
    }

    /// <summary>True when <see cref="Rows"/> handles <paramref name="type"/>; checked once when a model is bound.</summary>
    public static bool Supports(TensorType type) => type == TensorType.F32 || Widen.Supports(type);
}
