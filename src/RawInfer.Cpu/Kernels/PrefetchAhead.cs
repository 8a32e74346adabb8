namespace RawInfer.Cpu.Kernels;

/// <summary>
/// A range of memory the tiled GEMM asks into L2 one cache line per iteration of its 3×8 register tile's loop
/// (<see cref="Simd.PrefetchL2"/>), while the tile computes: the bytes the next tile will read, so DRAM streams
/// them during this tile's multiply-adds instead of stalling the next tile's first loads. A line per iteration
/// never asks for more than the fill buffers take (the whole next tile at once, before each tile, made
/// single-sequence decode 15% slower); a hint, so it changes no result, and a range past a buffer's end is harmless.
/// </summary>
internal readonly unsafe struct PrefetchAhead
{
    /// <summary>Bytes of a cache line: the step between prefetches.</summary>
    public const int LineBytes = 64;

    /// <summary>The range [start, start + bytes); empty for bytes ≤ 0.</summary>
    public PrefetchAhead(void* start, long bytes)
    {
        Start = (byte*)start;
        End = Start + Math.Max(0, bytes);
    }

    /// <summary>First byte not yet asked for.</summary>
    public byte* Start { get; }

    /// <summary>One past the last byte.</summary>
    public byte* End { get; }

    /// <summary>Bytes in the range.</summary>
    public long Bytes => End - Start;

    /// <summary>
    /// The part of this range that <paramref name="share"/> of <paramref name="shares"/> near-equal consecutive
    /// parts covers: one caller's range cut among the tiles it runs.
    /// </summary>
    public PrefetchAhead Part(int share, int shares) =>
        new(Start + (Bytes * share / shares), (Bytes * (share + 1) / shares) - (Bytes * share / shares));
}
