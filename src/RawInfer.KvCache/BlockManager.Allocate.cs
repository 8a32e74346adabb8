using System.Diagnostics;

namespace RawInfer.KvCache;

// New prompts: the prefix-cache lookup, CanAllocate and Allocate.
public sealed partial class BlockManager
{
    /// <summary>
    /// True when <paramref name="prompt"/> can be allocated now while keeping <see cref="WatermarkBlocks"/> free.
    /// Prefix hits on blocks other sequences hold cost nothing; hits on cached free blocks still leave the free pool.
    /// </summary>
    public bool CanAllocate(ReadOnlySpan<int> prompt)
    {
        if (prompt.IsEmpty)
        {
            return false;
        }

        var blocks = BlocksForTokens(prompt.Length);
        if (blocks > _numBlocks)
        {
            return false;
        }

        var hits = FindPrefixHits(prompt, out var freeHits);
        return _numFree - (blocks - hits) - freeHits >= WatermarkBlocks;
    }

    /// <summary>
    /// Allocates blocks for a new sequence's prompt, reusing every cached full block of its prefix.
    /// </summary>
    /// <returns>
    /// Leading prompt tokens whose K/V is already cached (a multiple of <see cref="BlockSize"/>); the caller computes
    /// only the rest. At most prompt.Length − 1, so the last token is always computed and yields logits.
    /// </returns>
    /// <exception cref="DuplicateSequenceException">The id is live.</exception>
    /// <exception cref="PromptTooLargeException">The prompt exceeds the whole pool.</exception>
    /// <exception cref="OutOfBlocksException">Not enough free blocks now (the watermark is not enforced here).</exception>
    /// <param name="sequenceId">The new sequence.</param>
    /// <param name="prompt">Its tokens so far.</param>
    /// <param name="expectedTokens">
    /// How long the sequence may grow (prompt plus generation budget; 0 = unknown): its block table is sized for that
    /// now, capped at the pool, so the appends of its decode steps never grow it. Blocks are still taken only as
    /// tokens arrive.
    /// </param>
    public int Allocate(long sequenceId, ReadOnlySpan<int> prompt, int expectedTokens = 0)
    {
        if (prompt.IsEmpty)
        {
            throw new ArgumentException("A prompt needs at least one token", nameof(prompt));
        }

        if (_sequences.ContainsKey(sequenceId))
        {
            throw new DuplicateSequenceException(sequenceId);
        }

        var blocks = BlocksForTokens(prompt.Length);
        if (blocks > _numBlocks)
        {
            throw new PromptTooLargeException(prompt.Length, _numBlocks * _blockSize);
        }

        var hits = FindPrefixHits(prompt, out var freeHits);
        var required = blocks - hits + freeHits;
        if (required > _numFree)
        {
            throw new OutOfBlocksException("allocating a prompt", required, _numFree);
        }

        // Validation is over; from here on nothing throws. Hits are acquired before fresh blocks are taken so that
        // taking a fresh block can never evict a block this prompt is about to reuse.
        var tableBlocks = Math.Max(blocks, BlocksForTokens(Math.Min(expectedTokens, (long)_numBlocks * _blockSize)));
        var state = RentState(sequenceId, tableBlocks);
        for (var i = 0; i < hits; i++)
        {
            var block = _hitScratch[i];
            Acquire(block);
            state.Blocks[i] = block;
            state.ChainHash = _hash[block];
            state.ChainFingerprint = _fingerprint[block];
        }

        state.NumBlocks = hits;
        state.NumTokens = hits * _blockSize;
        WriteTokens(state, prompt[state.NumTokens..]);

        var cachedTokens = hits * _blockSize;
        PrefixQueryTokens += prompt.Length;
        PrefixHitTokens += cachedTokens;
        return cachedTokens;
    }

    /// <summary>
    /// Walks the prompt's full blocks through the prefix cache, stopping at the first miss, and leaves the hit blocks
    /// in <see cref="_hitScratch"/>. The last prompt token is never looked up, so it is always computed.
    /// </summary>
    /// <param name="freeHits">How many of the hits are currently free (reviving them takes a free block).</param>
    /// <returns>Number of leading blocks hit.</returns>
    private int FindPrefixHits(ReadOnlySpan<int> prompt, out int freeHits)
    {
        freeHits = 0;
        var maxHits = (prompt.Length - 1) / _blockSize;
        var parent = BlockHash.Root;
        var parentFingerprint = BlockHash.Root;
        var hits = 0;
        while (hits < maxHits)
        {
            var tokens = prompt.Slice(hits * _blockSize, _blockSize);
            var hash = Hash(parent, tokens);
            if (!_cache.TryGetValue(hash, out var block)
                || _parentHash[block] != parent
                || _parentFingerprint[block] != parentFingerprint
                || !tokens.SequenceEqual(_tokens.AsSpan(block * _blockSize, _blockSize)))
            {
                // A miss, or a hash collision caught by comparing the parent's hash and fingerprint and the tokens.
                break;
            }

            Debug.Assert(_registered[block], "the cache maps only registered blocks");
            if (_refCount[block] == 0)
            {
                freeHits++;
            }

            _hitScratch[hits++] = block;
            parent = hash;
            parentFingerprint = _fingerprint[block];
        }

        return hits;
    }

    /// <summary>
    /// Appends tokens after the sequence's last token, filling the last block then taking fresh ones, and publishes
    /// each block that becomes full. Callers have checked the free count and made the last block private.
    /// </summary>
    private void WriteTokens(SequenceState state, ReadOnlySpan<int> tokens)
    {
        while (!tokens.IsEmpty)
        {
            var offset = state.NumTokens % _blockSize;
            int block;
            if (offset == 0)
            {
                block = TakeFresh();
                state.Blocks[state.NumBlocks++] = block;
            }
            else
            {
                block = state.Blocks[state.NumBlocks - 1];
                Debug.Assert(_refCount[block] == 1, "writes go only into a private block");
            }

            var count = Math.Min(_blockSize - offset, tokens.Length);
            tokens[..count].CopyTo(_tokens.AsSpan((block * _blockSize) + offset, count));
            _fill[block] += count;
            _storedTokens += count;
            state.NumTokens += count;
            tokens = tokens[count..];
            if (_fill[block] == _blockSize)
            {
                RegisterFull(state, block);
            }
        }
    }
}
