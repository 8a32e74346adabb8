namespace RawInfer.KvCache;

/// <summary>
/// The K/V of a paged pool in CPU memory, addressed by physical block and slot, in float32, IEEE half or
/// bfloat16 (<see cref="KvCacheType"/>).
/// <para>
/// Layout: one slab per layer for K and one for V, each (blocks, blockSize, kvDim) = (slots, kvDim), so slot
/// <c>block × blockSize + offset</c> is simply a row. The forward pass works layer by layer, and within a layer a
/// kernel writes new tokens' K/V through the slot mapping and reads a sequence's history block by block: with the
/// layer outermost, everything one layer's attention touches is one contiguous slab indexed by slot, a block's
/// tokens are adjacent rows, and a device port passes one base pointer per layer (as vLLM keeps one tensor per
/// layer). Separate arrays per layer also let the pool exceed the 2^31 elements one .NET array can index.
/// </para>
/// <para>
/// The slabs live on the pinned object heap, advised for transparent huge pages on Linux (<see cref="HugePageAdvice"/>):
/// 64 sequences decoding 256 tokens each on the 110m model (<c>rawinfer bench --mode batched --decode-concurrency 64
/// --decode-tokens 256 --kv-mib 2048 --threads 2</c>, Zen 5 VM, 2026-12-05, alternating with
/// <c>RAWINFER_KV_HUGEPAGES=0</c>): 600–708 against 512–534 tokens/s with the pages already touched (two pairs), 610
/// against 535 from cold (one); an earlier version that advised the same arrays on the ordinary heap, 617–687
/// against 536–598 warm and 641–670 against 562–568 cold (five pairs). Attention reads each sequence's blocks from
/// all over a layer's slab, so with 4 KiB pages it keeps missing the TLB.
/// </para>
/// </summary>
public sealed class PagedKvStorage
{
    /// <summary>Elements a slab is allocated beyond its length, so its start can move to a cache line (2-byte elements need 32).</summary>
    private const int LinePadElements = CacheLine.SpareBytes / 2;

    private readonly Array[] _keys;   // (layers) × (blocks, blockSize, kvDim) of float, Half or bfloat16 bits (ushort)
    private readonly Array[] _values; // (layers) × (blocks, blockSize, kvDim) of float, Half or bfloat16 bits (ushort)
    private readonly int[] _keyStart;   // (layers): the element of _keys[layer] on a cache line, where slot 0 begins
    private readonly int[] _valueStart; // (layers): the same for _values[layer]
    private readonly int _perLayer;     // elements of a slab in use: blocks × blockSize × kvDim

    /// <summary>Allocates zeroed K and V for <paramref name="numBlocks"/> blocks in every layer.</summary>
    public PagedKvStorage(int numLayers, int numBlocks, int blockSize, int kvDim, KvCacheType type = KvCacheType.F32)
    {
        _ = type.ElementBytes(); // rejects an undefined type
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numLayers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        if (numBlocks > MaxBlocks(blockSize, kvDim))
        {
            throw new ArgumentOutOfRangeException(
                nameof(numBlocks),
                $"{numBlocks} blocks × {blockSize} slots × {kvDim} floats per layer exceeds {Array.MaxLength} elements");
        }

        var perLayer = (long)numBlocks * blockSize * kvDim;

        NumLayers = numLayers;
        NumBlocks = numBlocks;
        BlockSize = blockSize;
        KvDim = kvDim;
        ElementType = type;
        _perLayer = (int)perLayer;
        _keys = new Array[numLayers];
        _values = new Array[numLayers];
        _keyStart = new int[numLayers];
        _valueStart = new int[numLayers];
        for (var layer = 0; layer < numLayers; layer++)
        {
            (_keys[layer], _keyStart[layer]) = NewLayer(type, perLayer);
            (_values[layer], _valueStart[layer]) = NewLayer(type, perLayer);
        }
    }

    /// <summary>The element type of K and V.</summary>
    public KvCacheType ElementType { get; }

    public int NumLayers { get; }

    public int NumBlocks { get; }

    public int BlockSize { get; }

    /// <summary>Floats per token per layer in K (and in V): kvHeads × headDim.</summary>
    public int KvDim { get; }

    /// <summary>Bytes of K and V together.</summary>
    public long SizeBytes => BytesFor(NumLayers, NumBlocks, BlockSize, KvDim, ElementType);

    /// <summary>
    /// The most blocks a pool of this shape holds: each layer's K (and V) is one array, of at most
    /// <see cref="Array.MaxLength"/> elements (a few of them kept to move its start onto a cache line).
    /// </summary>
    public static int MaxBlocks(int blockSize, int kvDim)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvDim);
        return (int)Math.Min(int.MaxValue, (Array.MaxLength - LinePadElements) / ((long)blockSize * kvDim));
    }

    /// <summary>Bytes of K and V together of a pool of this shape, before allocating one.</summary>
    public static long BytesFor(int numLayers, int numBlocks, int blockSize, int kvDim, KvCacheType type) =>
        2L * numLayers * numBlocks * blockSize * kvDim * type.ElementBytes();

    /// <summary>All keys of one layer of a float32 cache. (blocks × blockSize, kvDim), row = slot.</summary>
    /// <exception cref="InvalidOperationException">The cache holds halves (<see cref="LayerKeysF16"/>).</exception>
    public Span<float> LayerKeys(int layer) => Floats(_keys[layer], _keyStart[layer]);

    /// <summary>All values of one layer of a float32 cache. (blocks × blockSize, kvDim), row = slot.</summary>
    /// <exception cref="InvalidOperationException">The cache holds halves (<see cref="LayerValuesF16"/>).</exception>
    public Span<float> LayerValues(int layer) => Floats(_values[layer], _valueStart[layer]);

    /// <summary>All keys of one layer of a half cache. (blocks × blockSize, kvDim), row = slot.</summary>
    /// <exception cref="InvalidOperationException">The cache holds float32 (<see cref="LayerKeys"/>).</exception>
    public Span<Half> LayerKeysF16(int layer) => Halves(_keys[layer], _keyStart[layer]);

    /// <summary>All values of one layer of a half cache. (blocks × blockSize, kvDim), row = slot.</summary>
    /// <exception cref="InvalidOperationException">The cache holds float32 (<see cref="LayerValues"/>).</exception>
    public Span<Half> LayerValuesF16(int layer) => Halves(_values[layer], _valueStart[layer]);

    /// <summary>All keys of one layer of a bfloat16 cache, as bit patterns. (blocks × blockSize, kvDim), row = slot.</summary>
    /// <exception cref="InvalidOperationException">The cache holds another type.</exception>
    public Span<ushort> LayerKeysBF16(int layer) => BFloat16s(_keys[layer], _keyStart[layer]);

    /// <summary>All values of one layer of a bfloat16 cache, as bit patterns. (blocks × blockSize, kvDim), row = slot.</summary>
    /// <exception cref="InvalidOperationException">The cache holds another type.</exception>
    public Span<ushort> LayerValuesBF16(int layer) => BFloat16s(_values[layer], _valueStart[layer]);

    /// <summary>K of the token in <paramref name="slot"/> at <paramref name="layer"/> of a float32 cache. (kvDim)</summary>
    public Span<float> Key(int layer, int slot) => LayerKeys(layer).Slice(RowOffset(slot), KvDim);

    /// <summary>V of the token in <paramref name="slot"/> at <paramref name="layer"/> of a float32 cache. (kvDim)</summary>
    public Span<float> Value(int layer, int slot) => LayerValues(layer).Slice(RowOffset(slot), KvDim);

    /// <summary>K of the token in <paramref name="slot"/> at <paramref name="layer"/> of a half cache. (kvDim)</summary>
    public Span<Half> KeyF16(int layer, int slot) => LayerKeysF16(layer).Slice(RowOffset(slot), KvDim);

    /// <summary>V of the token in <paramref name="slot"/> at <paramref name="layer"/> of a half cache. (kvDim)</summary>
    public Span<Half> ValueF16(int layer, int slot) => LayerValuesF16(layer).Slice(RowOffset(slot), KvDim);

    /// <summary>
    /// Commits every page of K and V now, with the contents unchanged (<see cref="PagePrefault"/>), so that no forward
    /// pass pays the kernel's page faults when it first writes a block. A pool is otherwise mapped in as blocks are
    /// first used: 12 sequences decoding 256 tokens on the 110m model (<c>rawinfer bench --mode batched
    /// --decode-concurrency 12 --decode-tokens 256 --kv-mib 2048</c>, Zen 5 VM, 2026-12-06) then had 10 of 762 steps
    /// take 100–175 ms instead of a median 29 ms, one every 48–64 steps, each as 12 more blocks entered new 2 MiB pages
    /// of all 24 slabs; committed first, none did. The slabs are committed in parallel. Call it before any
    /// other thread uses the pool.
    /// </summary>
    public void Prefault()
    {
        var elementBytes = ElementType.ElementBytes();
        Parallel.For(0, 2 * NumLayers, i => PagePrefault.Commit(i < NumLayers ? _keys[i] : _values[i - NumLayers], elementBytes));
    }

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
            Array.Copy(_keys[layer], _keyStart[layer] + source, _keys[layer], _keyStart[layer] + destination, length);
            Array.Copy(_values[layer], _valueStart[layer] + source, _values[layer], _valueStart[layer] + destination, length);
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

    private Span<float> Floats(Array layer, int start) =>
        (layer as float[] ?? throw new InvalidOperationException($"the KV cache holds {ElementType.Name()}, not f32")).AsSpan(start, _perLayer);

    private Span<Half> Halves(Array layer, int start) =>
        (layer as Half[] ?? throw new InvalidOperationException($"the KV cache holds {ElementType.Name()}, not f16")).AsSpan(start, _perLayer);

    private Span<ushort> BFloat16s(Array layer, int start) =>
        (layer as ushort[] ?? throw new InvalidOperationException($"the KV cache holds {ElementType.Name()}, not bf16")).AsSpan(start, _perLayer);

    /// <summary>
    /// A zeroed slab on the pinned heap (so it never moves and its huge-page advice stays with it), advised, and the
    /// index of its first element on a 64-byte cache line: an array's elements start 16 bytes into the object, so
    /// without it every 64-byte load of a K or V row straddled two lines. A small gain where attention weighs:
    /// the 110m F32 runner's decode step of 32 sequences at 768 tokens of context took 0.96 and 1.00 of the time
    /// (two rounds of old, new, new, old; <c>step-ab</c>, 2 threads, Zen 5 VM, 2026-12-07); at 128 tokens, level.
    /// </summary>
    private static (Array Layer, int Start) NewLayer(KvCacheType type, long elements)
    {
        var length = checked((int)elements + (CacheLine.SpareBytes / type.ElementBytes()));
        Array layer = type switch
        {
            KvCacheType.F32 => GC.AllocateArray<float>(length, pinned: true),
            KvCacheType.F16 => GC.AllocateArray<Half>(length, pinned: true),
            _ => GC.AllocateArray<ushort>(length, pinned: true),
        };
        _ = HugePageAdvice.Advise(layer, type.ElementBytes());
        return (layer, CacheLine.StartIndex(layer, type.ElementBytes()));
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowSlot(int slot) =>
        throw new ArgumentOutOfRangeException(
            nameof(slot), $"KV slot {slot} outside the pool's {NumBlocks} blocks × {BlockSize} slots");
}
