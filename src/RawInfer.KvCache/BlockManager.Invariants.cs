namespace RawInfer.KvCache;

// CheckInvariants: an O(blocks + block-table entries) audit that tests run after every command.
public sealed partial class BlockManager
{
    /// <summary>
    /// Verifies the allocator's invariants and throws <see cref="KvCacheInvariantException"/> naming the first one
    /// broken: free + used = total; each reference count equals the block-table entries holding the block; no block
    /// both free and referenced; counters agree with the blocks; each cached block's hash agrees with its tokens and
    /// parent hash; each sequence's table covers exactly its tokens and its chain hash matches its full blocks.
    /// </summary>
    public void CheckInvariants()
    {
        // The free queue: walk it forwards, checking back links, with a step bound so a cycle cannot hang us.
        var inQueue = new bool[_numBlocks];
        int free = 0, cachedFree = 0;
        var prev = Sentinel;
        for (var b = _next[Sentinel]; b != Sentinel; prev = b, b = _next[b])
        {
            if ((uint)b >= (uint)_numBlocks || free >= _numBlocks)
            {
                Fail($"free queue is corrupt after {free} entries");
            }

            if (_prev[b] != prev)
            {
                Fail($"free queue back link of block {b} is {_prev[b]}, expected {prev}");
            }

            if (inQueue[b])
            {
                Fail($"block {b} is in the free queue twice");
            }

            if (_refCount[b] != 0)
            {
                Fail($"block {b} is free but has {_refCount[b]} references");
            }

            inQueue[b] = true;
            free++;
            cachedFree += _registered[b] ? 1 : 0;
        }

        if (_prev[Sentinel] != prev)
        {
            Fail("free queue tail link is stale");
        }

        if (free != _numFree)
        {
            Fail($"free queue holds {free} blocks but the counter says {_numFree}");
        }

        if (cachedFree != _numCachedFree)
        {
            Fail($"{cachedFree} cached free blocks but the counter says {_numCachedFree}");
        }

        // Reference counts against the block tables.
        var holders = new int[_numBlocks];
        foreach (var state in _sequences.Values)
        {
            CheckSequence(state);
            foreach (var block in state.Table)
            {
                holders[block]++;
            }
        }

        long stored = 0;
        var used = 0;
        for (var b = 0; b < _numBlocks; b++)
        {
            if (_refCount[b] != holders[b])
            {
                Fail($"block {b} has ref count {_refCount[b]} but {holders[b]} holders");
            }

            if (inQueue[b] != (_refCount[b] == 0))
            {
                Fail($"block {b} is neither free nor referenced");
            }

            if (_fill[b] < 0 || _fill[b] > _blockSize)
            {
                Fail($"block {b} fill {_fill[b]}");
            }

            if (_refCount[b] > 0)
            {
                used++;
                stored += _fill[b];
            }
        }

        if (free + used != _numBlocks)
        {
            Fail($"free {free} + used {used} != total {_numBlocks}");
        }

        if (stored != _storedTokens)
        {
            Fail($"used blocks store {stored} tokens but the counter says {_storedTokens}");
        }

        // The prefix cache: every entry is a registered full block whose hash follows from its chain.
        var registered = 0;
        for (var b = 0; b < _numBlocks; b++)
        {
            if (!_registered[b])
            {
                continue;
            }

            registered++;
            if (_fill[b] != _blockSize)
            {
                Fail($"cached block {b} holds {_fill[b]} of {_blockSize} tokens");
            }

            if (!_cache.TryGetValue(_hash[b], out var mapped) || mapped != b)
            {
                Fail($"cached block {b} is not what the prefix cache maps its hash to");
            }

            if (Hash(_parentHash[b], _tokens.AsSpan(b * _blockSize, _blockSize)) != _hash[b])
            {
                Fail($"cached block {b}'s hash does not follow from its parent hash and tokens");
            }
        }

        if (registered != _cache.Count)
        {
            Fail($"prefix cache has {_cache.Count} entries for {registered} blocks");
        }
    }

    private void CheckSequence(SequenceState state)
    {
        var id = state.Id;
        if (!state.Live)
        {
            Fail($"sequence {id} is in the table but marked dead");
        }

        if (state.NumTokens <= 0)
        {
            Fail($"sequence {id} holds no tokens");
        }

        if (state.NumBlocks != BlocksForTokens(state.NumTokens))
        {
            Fail($"sequence {id} has {state.NumBlocks} blocks for {state.NumTokens} tokens");
        }

        var chain = BlockHash.Root;
        var fingerprint = BlockHash.Root;
        for (var i = 0; i < state.NumBlocks; i++)
        {
            var block = state.Blocks[i];
            if ((uint)block >= (uint)_numBlocks)
            {
                Fail($"sequence {id} block {i} is {block}");
            }

            var expectedFill = Math.Min(_blockSize, state.NumTokens - (i * _blockSize));
            if (_fill[block] != expectedFill)
            {
                Fail($"sequence {id} block {i} (physical {block}) holds {_fill[block]} tokens, expected {expectedFill}");
            }

            if (expectedFill == _blockSize)
            {
                chain = Hash(chain, _tokens.AsSpan(block * _blockSize, _blockSize));
                fingerprint = BlockHash.Fingerprint(fingerprint, _tokens.AsSpan(block * _blockSize, _blockSize));
                if (_fingerprint[block] != fingerprint)
                {
                    Fail($"sequence {id} block {i} (physical {block}) has a fingerprint its prefix does not give");
                }
                if (_registered[block] && _hash[block] != chain)
                {
                    Fail($"sequence {id} block {i} (physical {block}) is cached under a hash its prefix does not give");
                }
            }
        }

        if (state.ChainHash != chain || state.ChainFingerprint != fingerprint)
        {
            Fail($"sequence {id} chain hash is stale");
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string message) => throw new KvCacheInvariantException(message);
}
