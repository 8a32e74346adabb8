using System.Diagnostics;

namespace RawInfer.KvCache;

/// <summary>
/// Hands out the KV cache in fixed-size blocks (PagedAttention). Each sequence, named by a caller-chosen id, owns a
/// block table (logical block → physical block); a token at position p lives in slot
/// <c>table[p / BlockSize] * BlockSize + p % BlockSize</c> of <see cref="PagedKvStorage"/>.
/// <para>
/// Full blocks are published to a prefix cache under a hash chained over the parent block's hash and the block's
/// tokens, so identical prompt prefixes are stored once (a hit also compares tokens and parent hash). Blocks are
/// reference counted: forks share every block, and a shared partly filled last block is copied on the first append.
/// A freed block keeps its hash and stays reusable until the pool needs it; eviction takes the least recently freed
/// first, and of one sequence its tail blocks first. Every operation is O(1) per block.
/// </para>
/// <para>
/// A block enters the prefix cache as soon as it holds <see cref="BlockSize"/> tokens, before the model has computed
/// its K/V. The engine must therefore compute everything it allocated or appended in one step before a sequence
/// allocated later reads it: run the step's sequences in the order they were allocated, or batch them so each layer
/// writes K/V before attending (as vLLM's kernels do).
/// </para>
/// Not thread-safe: the engine's step loop owns it.
/// </summary>
public sealed partial class BlockManager
{
    /// <summary>Tokens per block unless the caller picks another size (vLLM's default too).</summary>
    public const int DefaultBlockSize = 16;

    private readonly int _numBlocks;
    private readonly int _blockSize;
    private readonly ulong _hashMask; // all ones in production; tests narrow it to force collisions

    // Per physical block, indexed by block id.
    private readonly int[] _refCount;     // (blocks) block-table entries that hold the block
    private readonly int[] _fill;         // (blocks) token slots written
    private readonly int[] _tokens;       // (blocks, blockSize) token ids; kept after free so a hit can compare
    private readonly ulong[] _hash;       // (blocks) chain hash once full
    private readonly ulong[] _parentHash; // (blocks) chain hash of the prefix before the block
    private readonly ulong[] _fingerprint;       // (blocks) fingerprint chain of the prefix through the block
    private readonly ulong[] _parentFingerprint; // (blocks) fingerprint chain of the prefix before the block
    private readonly bool[] _registered;  // (blocks) the prefix cache maps _hash[b] to b

    // Intrusive doubly-linked free queue over block ids; index _numBlocks is the sentinel. The head is evicted
    // first, so removing a free block that a prefix hit revives is O(1).
    private readonly int[] _next; // (blocks + 1)
    private readonly int[] _prev; // (blocks + 1)

    private readonly Dictionary<ulong, int> _cache; // chain hash → registered block
    private readonly Dictionary<long, SequenceState> _sequences = [];
    private readonly Stack<SequenceState> _spareStates = new();

    // Scratch sized to the pool once so no operation allocates in steady state.
    private readonly int[] _hitScratch;   // (blocks) physical blocks of a prompt's prefix hits
    private readonly int[] _countScratch; // (blocks) appenders per shared block in CanAppend(ids, k)

    private int _numFree;
    private int _numCachedFree;
    private long _storedTokens;

    /// <summary>Creates a pool of <paramref name="numBlocks"/> blocks of <paramref name="blockSize"/> token slots.</summary>
    /// <param name="numBlocks">Physical blocks; see <see cref="KvCacheSizing.BlocksFor"/>.</param>
    /// <param name="blockSize">Token slots per block.</param>
    /// <param name="watermarkBlocks">
    /// Free blocks <see cref="CanAllocate"/> keeps back from new prompts for running sequences' appends
    /// (see <see cref="KvCacheSizing.DefaultWatermarkBlocks"/>).
    /// </param>
    public BlockManager(int numBlocks, int blockSize = DefaultBlockSize, int watermarkBlocks = 0)
        : this(numBlocks, blockSize, watermarkBlocks, ulong.MaxValue)
    {
    }

    /// <summary>Test hook: <paramref name="hashMask"/> with few bits makes hash collisions common.</summary>
    internal BlockManager(int numBlocks, int blockSize, int watermarkBlocks, ulong hashMask)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(watermarkBlocks);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(watermarkBlocks, numBlocks);
        if ((long)numBlocks * blockSize > Array.MaxLength)
        {
            throw new ArgumentOutOfRangeException(
                nameof(numBlocks),
                $"{numBlocks} blocks × {blockSize} slots exceeds the {Array.MaxLength} token slots one pool can index");
        }

        _numBlocks = numBlocks;
        _blockSize = blockSize;
        WatermarkBlocks = watermarkBlocks;
        _hashMask = hashMask;
        _refCount = new int[numBlocks];
        _fill = new int[numBlocks];
        _tokens = new int[numBlocks * blockSize];
        _hash = new ulong[numBlocks];
        _parentHash = new ulong[numBlocks];
        _fingerprint = new ulong[numBlocks];
        _parentFingerprint = new ulong[numBlocks];
        _registered = new bool[numBlocks];
        _next = new int[numBlocks + 1];
        _prev = new int[numBlocks + 1];
        _cache = new Dictionary<ulong, int>(numBlocks);
        _hitScratch = new int[numBlocks];
        _countScratch = new int[numBlocks];

        // Every block starts free, in id order.
        _next[numBlocks] = _prev[numBlocks] = numBlocks;
        for (var b = 0; b < numBlocks; b++)
        {
            PushTail(b);
        }

        _numFree = numBlocks;
    }

    /// <summary>Token slots per block.</summary>
    public int BlockSize => _blockSize;

    /// <summary>Physical blocks in the pool.</summary>
    public int TotalBlocks => _numBlocks;

    /// <summary>Blocks no sequence holds (cached ones included: they are reused or evicted on demand).</summary>
    public int FreeBlocks => _numFree;

    /// <summary>Blocks held by at least one sequence.</summary>
    public int UsedBlocks => _numBlocks - _numFree;

    /// <summary>Free blocks that still carry a prefix-cache hash and can be revived by a hit.</summary>
    public int CachedFreeBlocks => _numCachedFree;

    /// <summary>Free blocks <see cref="CanAllocate"/> keeps back for running sequences.</summary>
    public int WatermarkBlocks { get; }

    /// <summary>Live sequences.</summary>
    public int NumSequences => _sequences.Count;

    /// <summary>Prompt tokens looked up in the prefix cache by <see cref="Allocate"/>, since construction.</summary>
    public long PrefixQueryTokens { get; private set; }

    /// <summary>Prompt tokens served from the prefix cache by <see cref="Allocate"/>, since construction.</summary>
    public long PrefixHitTokens { get; private set; }

    /// <summary>Token slots in used blocks (<see cref="UsedBlocks"/> × <see cref="BlockSize"/>).</summary>
    public long AllocatedSlots => (long)UsedBlocks * _blockSize;

    /// <summary>Tokens stored in used blocks; a block shared by several sequences counts once.</summary>
    public long StoredTokens => _storedTokens;

    /// <summary>(allocated slots − stored tokens) / allocated slots; 0 when nothing is allocated.</summary>
    public double Waste => AllocatedSlots == 0 ? 0 : (double)(AllocatedSlots - _storedTokens) / AllocatedSlots;

    /// <summary>True when <paramref name="sequenceId"/> is live.</summary>
    public bool Contains(long sequenceId) => _sequences.ContainsKey(sequenceId);

    /// <summary>Tokens the sequence holds (prompt plus appended).</summary>
    public int NumTokens(long sequenceId) => GetState(sequenceId).NumTokens;

    /// <summary>The sequence's block table: logical block i → physical block id. Valid until the next mutation.</summary>
    public ReadOnlySpan<int> BlockTable(long sequenceId) => GetState(sequenceId).Table;

    /// <summary>The storage slot (physical block × BlockSize + offset) of the token at <paramref name="position"/>.</summary>
    public int Slot(long sequenceId, int position)
    {
        var state = GetState(sequenceId);
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(position, state.NumTokens);
        return SlotOf(state, position);
    }

    /// <summary>
    /// Fills <paramref name="slots"/> with the slot mapping of positions <paramref name="startPosition"/> ..
    /// startPosition + slots.Length − 1, the slots a kernel writes those tokens' K/V through.
    /// </summary>
    public void WriteSlotMapping(long sequenceId, int startPosition, Span<int> slots)
    {
        var state = GetState(sequenceId);
        ArgumentOutOfRangeException.ThrowIfNegative(startPosition);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((long)startPosition + slots.Length, state.NumTokens, nameof(slots));
        for (var i = 0; i < slots.Length; i++)
        {
            slots[i] = SlotOf(state, startPosition + i);
        }
    }

    /// <summary>Blocks that freeing (preempting) the sequence would return to the free pool: those only it holds.</summary>
    public int CountBlocksReleasedBy(long sequenceId)
    {
        var released = 0;
        foreach (var block in GetState(sequenceId).Table)
        {
            if (_refCount[block] == 1)
            {
                released++;
            }
        }

        return released;
    }

    /// <summary>Tokens written into a physical block (test and invariant hook).</summary>
    internal ReadOnlySpan<int> BlockTokens(int block) => _tokens.AsSpan(block * _blockSize, _fill[block]);

    internal int RefCount(int block) => _refCount[block];

    internal bool IsRegistered(int block) => _registered[block];

    /// <summary>The live state behind an id, for <see cref="PagedSequenceKvCache"/>.</summary>
    internal SequenceState GetState(long sequenceId)
    {
        if (!_sequences.TryGetValue(sequenceId, out var state))
        {
            ThrowUnknown(sequenceId);
        }

        return state;
    }

    internal int SlotOf(SequenceState state, int position)
    {
        Debug.Assert((uint)position < (uint)state.NumTokens, "position outside the sequence");
        return (state.Blocks[position / _blockSize] * _blockSize) + (position % _blockSize);
    }

    private int BlocksForTokens(long tokens) => (int)Math.Min((tokens + _blockSize - 1) / _blockSize, int.MaxValue);

    private ulong Hash(ulong parentHash, ReadOnlySpan<int> tokens) => BlockHash.Chain(parentHash, tokens) & _hashMask;

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowUnknown(long sequenceId) => throw new UnknownSequenceException(sequenceId);
}
