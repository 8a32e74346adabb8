namespace RawInfer.KvCache;

/// <summary>Turns a memory budget into a number of KV-cache blocks.</summary>
public static class KvCacheSizing
{
    /// <summary>
    /// Bytes one token occupies in the KV cache: K and V, each (layers, kvDim) elements.
    /// </summary>
    public static long KvBytesPerToken(int numLayers, int kvDim, int bytesPerElement = sizeof(float))
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLayers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerElement);
        return checked(2L * numLayers * kvDim * bytesPerElement);
    }

    /// <summary>
    /// Whole blocks of <paramref name="blockSize"/> tokens that fit in <paramref name="budgetBytes"/> (rounded down,
    /// capped at int.MaxValue). Zero when the budget does not hold one block.
    /// </summary>
    public static int BlocksFor(long budgetBytes, long kvBytesPerToken, int blockSize = BlockManager.DefaultBlockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(budgetBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvBytesPerToken);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        var bytesPerBlock = checked(kvBytesPerToken * blockSize);
        return (int)Math.Min(budgetBytes / bytesPerBlock, int.MaxValue);
    }

    /// <summary>
    /// A default watermark: 1% of the pool kept back from new prompts so running sequences can keep appending
    /// (vLLM's default watermark is 0.01 of the blocks too).
    /// </summary>
    public static int DefaultWatermarkBlocks(int numBlocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numBlocks);
        return numBlocks / 100;
    }
}
