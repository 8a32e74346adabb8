namespace RawInfer.Gpu.Runner;

/// <summary>
/// Sizes the device KV cache from the memory left once the weights and the activation buffers are allocated, so
/// the engine's block manager counts exactly the blocks the device holds (vLLM profiles the same way, with a
/// memory-utilisation fraction).
/// </summary>
public static class KvBlockPlanner
{
    /// <summary>Default share of the free memory given to the KV cache.</summary>
    public const double DefaultFraction = 0.90;

    /// <summary>
    /// Default bytes kept free before the fraction applies: cuBLAS workspaces, the kernel module, allocator
    /// rounding. 256 MiB is generous for one stream.
    /// </summary>
    public const long DefaultHeadroomBytes = 256L << 20;

    /// <summary>
    /// Blocks of <paramref name="blockSize"/> tokens that fit in
    /// (<paramref name="freeBytes"/> − <paramref name="headroomBytes"/>) × <paramref name="fraction"/>, rounded
    /// down; 0 when not even one fits.
    /// </summary>
    /// <param name="freeBytes">Free device memory after weights and activations (cuMemGetInfo's free).</param>
    /// <param name="kvBytesPerToken">K and V of one token over all layers, in the device's element type.</param>
    /// <param name="blockSize">Token slots per block.</param>
    /// <param name="fraction">Share of the usable memory for the cache, in (0, 1].</param>
    /// <param name="headroomBytes">Bytes left alone before the fraction is taken.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of range (names it).</exception>
    public static int PlanBlocks(long freeBytes, long kvBytesPerToken, int blockSize, double fraction = DefaultFraction, long headroomBytes = DefaultHeadroomBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(freeBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvBytesPerToken);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(headroomBytes);
        if (!(fraction > 0 && fraction <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "must be in (0, 1]");
        }

        var usable = Math.Max(0, freeBytes - headroomBytes);
        var budget = (long)Math.Min(Math.Floor(usable * fraction), long.MaxValue / 2.0); // no overflow on absurd pools
        var bytesPerBlock = checked(kvBytesPerToken * blockSize);
        return (int)Math.Min(budget / bytesPerBlock, int.MaxValue);
    }
}
