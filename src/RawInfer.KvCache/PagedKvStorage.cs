namespace RawInfer.KvCache;

/// <summary>
/// The K/V of a paged pool in CPU memory (float32), addressed by physical block and slot.
/// <para>
/// Layout: one slab per layer for K and one for V, each (blocks, blockSize, kvDim) = (slots, kvDim), so slot
/// <c>block × blockSize + offset</c> is simply a row. The forward pass works layer by layer, and within a layer a
/// kernel writes new tokens' K/V through the slot mapping and reads a sequence's history block by block: with the
/// layer outermost, everything one layer's attention touches is one contiguous slab indexed by slot, a block's
/// tokens are adjacent rows, and a device port passes one base pointer per layer (as vLLM keeps one tensor per
/// layer). Separate arrays per layer also let the pool exceed the 2^31 elements one .NET array can index.
/// </para>
/// </summary>
public sealed class PagedKvStorage
{
    private readonly float[][] _keys;   // (layers) × (blocks, blockSize, kvDim)
    private readonly float[][] _values; // (layers) × (blocks, blockSize, kvDim)

    /// <summary>Allocates zeroed K and V for <paramref name="numBlocks"/> blocks in every layer.</summary>
    public PagedKvStorage(int numLayers, int numBlocks, int blockSize, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLayers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        var perLayer = (long)numBlocks * blockSize * kvDim;
        if (perLayer > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numBlocks),
                $"{numBlocks} blocks × {blockSize} slots × {kvDim} floats per layer exceeds {Array.MaxLength} elements");
        }

        NumLayers = numLayers;
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        KvDim = kvDim;
        _keys = new float[numLayers][];
        _values = new float[numLayers][];
        for (var layer = 0; layer < numLayers; layer++)
        {
            _keys[layer] = new float[perLayer];
            _values[layer] = new float[perLayer];
        }
    }

    public int NumLayers { get; }

    public int NumBlocks { get; }

    public int BlockSize { get; }

    /// <summary>Floats per token per layer in K (and in V): kvHeads × headDim.</summary>
    public int KvDim { get; }

    /// <summary>Bytes of K and V together.</summary>
    public long SizeBytes => 2L * NumLayers * NumBlocks * BlockSize * KvDim * sizeof(float);

    /// <summary>All keys of one layer. (blocks × blockSize, kvDim), row = slot.</summary>
    public Span<float> LayerKeys(int layer) => _keys[layer];

    /// <summary>All values of one layer. (blocks × blockSize, kvDim), row = slot.</summary>
    public Span<float> LayerValues(int layer) => _values[layer];

    /// <summary>K of the token in <paramref name="slot"/> at <paramref name="layer"/>. (kvDim)</summary>
    public Span<float> Key(int layer, int slot) => _keys[layer].AsSpan(RowOffset(slot), KvDim);

    /// <summary>V of the token in <paramref name="slot"/> at <paramref name="layer"/>. (kvDim)</summary>
    public Span<float> Value(int layer, int slot) => _values[layer].AsSpan(RowOffset(slot), KvDim);

    /// <summary>Copies a whole block's K and V in every layer (the copy-on-write of <see cref="BlockCopy"/>).</summary>
    public void CopyBlock(int sourceBlock, int destinationBlock)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)sourceBlock, (uint)NumBlocks, nameof(sourceBlock));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(
            (uint)destinationBlock, (uint)NumBlocks, nameof(destinationBlock));
        var length = BlockSize * KvDim;
        var source = sourceBlock * length;
        var destination = destinationBlock * length;
        for (var layer = 0; layer < NumLayers; layer++)
        {
            _keys[layer].AsSpan(source, length).CopyTo(_keys[layer].AsSpan(destination, length));
            _values[layer].AsSpan(source, length).CopyTo(_values[layer].AsSpan(destination, length));
        }
    }

    /// <summary>Performs a copy returned by <see cref="BlockManager.Append"/>, if one is needed.</summary>
    public void Apply(BlockCopy copy)
    {
        if (copy.IsNeeded)
        {
            CopyBlock(copy.Source, copy.Destination);
        }
    }

    private int RowOffset(int slot)
    {
        if ((uint)slot >= (uint)(NumBlocks * BlockSize))
        {
            ThrowSlot(slot);
        }

        return slot * KvDim;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowSlot(int slot) =>
        throw new ArgumentOutOfRangeException(
            nameof(slot), $"KV slot {slot} outside the pool's {NumBlocks} blocks × {BlockSize} slots");
}
