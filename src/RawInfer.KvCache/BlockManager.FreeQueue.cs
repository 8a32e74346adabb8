using System.Diagnostics;

namespace RawInfer.KvCache;

// The free queue and the block life cycle: take a fresh block (evicting its cached hash), revive a cached one,
// release one. Each is O(1).
public sealed partial class BlockManager
{
    private int Sentinel => _numBlocks;

    private void PushTail(int block)
    {
        var last = _prev[Sentinel];
        _next[last] = block;
        _prev[block] = last;
        _next[block] = Sentinel;
        _prev[Sentinel] = block;
    }

    private void PushHead(int block)
    {
        var first = _next[Sentinel];
        _prev[first] = block;
        _next[block] = first;
        _prev[block] = Sentinel;
        _next[Sentinel] = block;
    }

    private void Unlink(int block)
    {
        Debug.Assert(_refCount[block] == 0, "only free blocks are in the free queue");
        _next[_prev[block]] = _next[block];
        _prev[_next[block]] = _prev[block];
        _numFree--;
        if (_registered[block])
        {
            _numCachedFree--;
        }
    }

    /// <summary>Takes the least recently freed block, drops its cached hash, and gives it one reference.</summary>
    private int TakeFresh()
    {
        var block = _next[Sentinel];
        Debug.Assert(block != Sentinel, "callers check the free count first");
        Unlink(block);
        if (_registered[block])
        {
            // Eviction: the block's old prefix is no longer reusable.
            _cache.Remove(_hash[block]);
            _registered[block] = false;
        }

        _fill[block] = 0;
        _refCount[block] = 1;
        return block;
    }

    /// <summary>Adds a reference to a prefix-cache hit, taking it out of the free queue if nobody held it.</summary>
    private void Acquire(int block)
    {
        if (_refCount[block] == 0)
        {
            Unlink(block);
            _storedTokens += _fill[block];
        }

        _refCount[block]++;
    }

    /// <summary>
    /// Drops one reference. A block nobody holds returns to the free queue: a cached one at the tail (evicted last,
    /// in the order freed), one without a hash at the head (it has nothing worth keeping).
    /// </summary>
    private void Release(int block)
    {
        Debug.Assert(_refCount[block] > 0, "released a free block");
        if (--_refCount[block] != 0)
        {
            return;
        }

        _storedTokens -= _fill[block];
        _numFree++;
        if (_registered[block])
        {
            _numCachedFree++;
            PushTail(block);
        }
        else
        {
            PushHead(block);
        }
    }

    /// <summary>Publishes a block that just became full under its chain hash, unless that hash is taken.</summary>
    private void RegisterFull(SequenceState state, int block)
    {
        Debug.Assert(_fill[block] == _blockSize, "only full blocks are hashed");
        var parent = state.ChainHash;
        var hash = Hash(parent, _tokens.AsSpan(block * _blockSize, _blockSize));
        state.ChainHash = hash;
        _parentHash[block] = parent;
        _parentFingerprint[block] = state.ChainFingerprint;
        _fingerprint[block] = BlockHash.Fingerprint(state.ChainFingerprint, _tokens.AsSpan(block * _blockSize, _blockSize));
        state.ChainFingerprint = _fingerprint[block];
        _hash[block] = hash;

        // A taken hash means either the same prefix is already cached in another block (keep the older one) or a
        // collision (the lookup's token compare keeps it harmless); either way this block stays private.
        if (_cache.TryAdd(hash, block))
        {
            _registered[block] = true;
        }
    }

    private SequenceState RentState(long sequenceId, int blocks)
    {
        var state = _spareStates.Count > 0 ? _spareStates.Pop() : new SequenceState();
        state.EnsureCapacity(blocks);
        state.Id = sequenceId;
        state.Live = true;
        state.NumBlocks = 0;
        state.NumTokens = 0;
        state.ChainHash = BlockHash.Root;
        state.ChainFingerprint = BlockHash.Root;
        _sequences.Add(sequenceId, state);
        return state;
    }

    private void ReturnState(SequenceState state)
    {
        _sequences.Remove(state.Id);
        state.Live = false;
        _spareStates.Push(state);
    }
}
