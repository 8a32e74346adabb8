using System.Diagnostics;

namespace RawInfer.KvCache;

// Running sequences: CanAppend and Append (with copy-on-write), Fork and Free.
public sealed partial class BlockManager
{
    /// <summary>True when the sequence can append <paramref name="numTokens"/> tokens now (no watermark applies).</summary>
    public bool CanAppend(long sequenceId, int numTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numTokens);
        return BlocksToAppend(GetState(sequenceId), numTokens) <= _numFree;
    }

    /// <summary>
    /// True when every one of <paramref name="sequenceIds"/> (distinct) can append <paramref name="numTokens"/>
    /// tokens in this step. Counts copy-on-write exactly: of r forks sharing a partly filled block, only r − 1 copy.
    /// </summary>
    public bool CanAppend(ReadOnlySpan<long> sequenceIds, int numTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numTokens);
        foreach (var id in sequenceIds)
        {
            GetState(id); // reject an unknown id before touching the scratch counts
        }

        if (numTokens == 0)
        {
            return true;
        }

        long required = 0;
        foreach (var id in sequenceIds)
        {
            var state = _sequences[id];
            required += NewBlocksFor(state, numTokens);
            if (HasSharedPartialTail(state))
            {
                var tail = state.Blocks[state.NumBlocks - 1];
                // The last of the block's holders to append finds it private again and writes in place.
                if (++_countScratch[tail] < _refCount[tail])
                {
                    required++;
                }
            }
        }

        foreach (var id in sequenceIds)
        {
            var state = _sequences[id];
            if (state.NumBlocks > 0)
            {
                _countScratch[state.Blocks[state.NumBlocks - 1]] = 0;
            }
        }

        return required <= _numFree;
    }

    /// <summary>
    /// Appends tokens (normally the one just sampled) to a live sequence, taking a new block only when the last one
    /// is full. A full block is published to the prefix cache, so decode output becomes a reusable prefix too.
    /// </summary>
    /// <returns>
    /// A copy the caller must perform before the model writes the new tokens' K/V, when the last block was shared
    /// with a fork and partly filled (copy-on-write); otherwise <see cref="BlockCopy.None"/>.
    /// </returns>
    /// <exception cref="UnknownSequenceException">The id is not live (never allocated or already freed).</exception>
    /// <exception cref="OutOfBlocksException">Not enough free blocks now.</exception>
    public BlockCopy Append(long sequenceId, ReadOnlySpan<int> tokens)
    {
        var state = GetState(sequenceId);
        if (tokens.IsEmpty)
        {
            return BlockCopy.None;
        }

        var required = BlocksToAppend(state, tokens.Length);
        if (required > _numFree)
        {
            throw new OutOfBlocksException("appending tokens", (int)Math.Min(required, int.MaxValue), _numFree);
        }

        state.EnsureCapacity(BlocksForTokens((long)state.NumTokens + tokens.Length));
        var copy = BlockCopy.None;
        if (HasSharedPartialTail(state))
        {
            // Copy-on-write: this sequence diverges from its forks inside a shared block.
            var shared = state.Blocks[state.NumBlocks - 1];
            var own = TakeFresh();
            var filled = _fill[shared];
            _tokens.AsSpan(shared * _blockSize, filled).CopyTo(_tokens.AsSpan(own * _blockSize, filled));
            _fill[own] = filled;
            _storedTokens += filled;
            Release(shared);
            state.Blocks[state.NumBlocks - 1] = own;
            copy = new BlockCopy(shared, own);
        }

        WriteTokens(state, tokens);
        return copy;
    }

    /// <summary>
    /// Starts <paramref name="childId"/> as a copy of <paramref name="parentId"/> (parallel sampling): every block is
    /// shared and reference counted, so the fork takes no block until one of them appends into a shared block.
    /// </summary>
    /// <exception cref="UnknownSequenceException">The parent is not live.</exception>
    /// <exception cref="DuplicateSequenceException">The child id is live.</exception>
    public void Fork(long parentId, long childId)
    {
        var parent = GetState(parentId);
        if (_sequences.ContainsKey(childId))
        {
            throw new DuplicateSequenceException(childId);
        }

        var child = RentState(childId, parent.NumBlocks);
        parent.Table.CopyTo(child.Blocks);
        child.NumBlocks = parent.NumBlocks;
        child.NumTokens = parent.NumTokens;
        child.ChainHash = parent.ChainHash;
        child.ChainFingerprint = parent.ChainFingerprint;
        foreach (var block in child.Table)
        {
            _refCount[block]++;
        }
    }

    /// <summary>
    /// Frees a finished, cancelled or preempted sequence. Its blocks that nobody else holds return to the pool;
    /// full ones stay in the prefix cache, queued so the tail blocks are evicted before the head blocks.
    /// </summary>
    /// <exception cref="UnknownSequenceException">The id is not live (never allocated or already freed).</exception>
    public void Free(long sequenceId)
    {
        var state = GetState(sequenceId);
        for (var i = state.NumBlocks - 1; i >= 0; i--)
        {
            Release(state.Blocks[i]);
        }

        ReturnState(state);
    }

    /// <summary>Fresh blocks plus a copy-on-write block, if any, that appending <paramref name="numTokens"/> takes.</summary>
    private long BlocksToAppend(SequenceState state, int numTokens) =>
        numTokens == 0 ? 0 : NewBlocksFor(state, numTokens) + (HasSharedPartialTail(state) ? 1 : 0);

    private long NewBlocksFor(SequenceState state, int numTokens)
    {
        var after = BlocksForTokens((long)state.NumTokens + numTokens);
        Debug.Assert(after >= state.NumBlocks, "appending never shrinks the table");
        return after - state.NumBlocks;
    }

    private bool HasSharedPartialTail(SequenceState state) =>
        state.NumTokens % _blockSize != 0 && _refCount[state.Blocks[state.NumBlocks - 1]] > 1;
}
