namespace RawInfer.KvCache;

/// <summary>
/// One sequence's view of paged storage, so the single-sequence forward pass runs unchanged on the paged pool:
/// (layer, position) maps through the sequence's block table to a slot of <see cref="PagedKvStorage"/>.
/// Positions are those the allocator holds for the sequence (prompt plus appended tokens). The forward pass must
/// write only positions it computes (from the count <see cref="BlockManager.Allocate"/> reported as cached onward):
/// earlier positions may live in blocks shared with other sequences. Float32 storage only.
/// </summary>
public sealed class PagedSequenceKvCache : ISequenceKvCache
{
    private readonly BlockManager _manager;
    private readonly PagedKvStorage _storage;
    private readonly SequenceState _state;
    private readonly long _sequenceId;

    /// <summary>Binds to a live sequence; the view is invalid once the sequence is freed.</summary>
    /// <exception cref="UnknownSequenceException">The id is not live.</exception>
    public PagedSequenceKvCache(BlockManager manager, PagedKvStorage storage, long sequenceId)
    {
        ArgumentNullException.ThrowIfNull(manager);
        ArgumentNullException.ThrowIfNull(storage);
        if (storage.BlockSize != manager.BlockSize || storage.NumBlocks != manager.TotalBlocks)
        {
            throw new ArgumentException(
                $"Storage of {storage.NumBlocks} blocks × {storage.BlockSize} does not match the allocator's "
                    + $"{manager.TotalBlocks} blocks × {manager.BlockSize}",
                nameof(storage));
        }

        if (storage.ElementType != KvCacheType.F32)
        {
            throw new ArgumentException(
                $"the single-sequence view reads float32 K/V; this storage holds {storage.ElementType.Name()}", nameof(storage));
        }

        _manager = manager;
        _storage = storage;
        _sequenceId = sequenceId;
        _state = manager.GetState(sequenceId);
    }

    /// <summary>Tokens the sequence currently holds; grows as the engine appends.</summary>
    public int CapacityTokens => Live().NumTokens;

    public Span<float> Key(int layer, int position) => _storage.Key(layer, SlotOf(position));

    public Span<float> Value(int layer, int position) => _storage.Value(layer, SlotOf(position));

    private int SlotOf(int position)
    {
        var state = Live();
        if ((uint)position >= (uint)state.NumTokens)
        {
            ThrowPosition(position, state.NumTokens);
        }

        return _manager.SlotOf(state, position);
    }

    // States are pooled, so a freed sequence's state may already serve another id.
    private SequenceState Live()
    {
        if (!_state.Live || _state.Id != _sequenceId)
        {
            ThrowFreed();
        }

        return _state;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowFreed() => throw new UnknownSequenceException(_sequenceId);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowPosition(int position, int numTokens) =>
        throw new ArgumentOutOfRangeException(
            nameof(position), $"KV position {position} outside sequence {_sequenceId}'s {numTokens} tokens");
}
