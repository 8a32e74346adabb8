namespace RawInfer.KvCache.Tests;

/// <summary>
/// A plain model of the paged allocator for model-based tests: lists and string keys, O(n) everywhere, no hashing.
/// A block's prefix-cache key is the whole prefix it ends (every token from position 0), so the model is exact by
/// construction. It follows the same policy as <see cref="BlockManager"/> (free queue in id order; evict the head;
/// cached blocks return to the tail, uncached ones to the head; a sequence frees tail first; the last prompt token
/// is never a hit), so block ids must agree exactly. An operation that runs out of blocks is undone from a clone.
/// </summary>
internal sealed class ReferenceModel
{
    private readonly int _blockSize;
    private readonly int _numBlocks;
    private readonly int _watermark;
    private List<int> _freeQueue;                 // front = evicted first
    private int[] _refCount;
    private List<int>[] _blockTokens;
    private string?[] _key;                       // prefix key while the block is cached
    private Dictionary<string, int> _cache;
    private Dictionary<long, Seq> _seqs;

    public ReferenceModel(int numBlocks, int blockSize, int watermark)
    {
        _blockSize = blockSize;
        _numBlocks = numBlocks;
        _watermark = watermark;
        _freeQueue = Enumerable.Range(0, numBlocks).ToList();
        _refCount = new int[numBlocks];
        _blockTokens = Enumerable.Range(0, numBlocks).Select(_ => new List<int>()).ToArray();
        _key = new string?[numBlocks];
        _cache = [];
        _seqs = [];
    }

    public int FreeBlocks => _freeQueue.Count;

    public int UsedBlocks => _numBlocks - _freeQueue.Count;

    public int CachedFreeBlocks => _freeQueue.Count(b => _key[b] != null);

    public long StoredTokens => Enumerable.Range(0, _numBlocks).Where(b => _refCount[b] > 0).Sum(b => (long)_blockTokens[b].Count);

    public long PrefixQueryTokens { get; private set; }

    public long PrefixHitTokens { get; private set; }

    public IEnumerable<long> LiveIds => _seqs.Keys;

    public IReadOnlyList<int> Tokens(long id) => _seqs[id].Tokens;

    public IReadOnlyList<int> Table(long id) => _seqs[id].Table;

    public bool Contains(long id) => _seqs.ContainsKey(id);

    public int CountBlocksReleasedBy(long id) => _seqs[id].Table.Count(b => _refCount[b] == 1);

    public bool CanAllocate(int[] prompt)
    {
        var clone = Clone();
        return prompt.Length > 0
            && (prompt.Length + _blockSize - 1) / _blockSize <= _numBlocks
            && clone.AllocateCore(long.MinValue, prompt) >= 0
            && clone.FreeBlocks >= _watermark;
    }

    public bool CanAppendAll(IEnumerable<long> ids, int k)
    {
        var clone = Clone();
        return ids.All(id => clone.AppendCore(id, new int[k]) != null);
    }

    /// <summary>Returns cached tokens, or throws the exception the allocator must throw.</summary>
    public int Allocate(long id, int[] prompt)
    {
        if (prompt.Length == 0)
        {
            throw new ArgumentException("empty prompt");
        }

        if (_seqs.ContainsKey(id))
        {
            throw new DuplicateSequenceException(id);
        }

        if ((prompt.Length + _blockSize - 1) / _blockSize > _numBlocks)
        {
            throw new PromptTooLargeException(prompt.Length, _numBlocks * _blockSize);
        }

        var backup = Clone();
        var cached = AllocateCore(id, prompt);
        if (cached < 0)
        {
            Restore(backup);
            throw new OutOfBlocksException("model", 0, FreeBlocks);
        }

        PrefixQueryTokens += prompt.Length;
        PrefixHitTokens += cached;
        return cached;
    }

    public BlockCopy Append(long id, int[] tokens)
    {
        Get(id);
        var backup = Clone();
        var copy = AppendCore(id, tokens);
        if (copy == null)
        {
            Restore(backup);
            throw new OutOfBlocksException("model", 0, FreeBlocks);
        }

        return copy.Value;
    }

    public void Fork(long parent, long child)
    {
        var p = Get(parent);
        if (_seqs.ContainsKey(child))
        {
            throw new DuplicateSequenceException(child);
        }

        _seqs[child] = new Seq([.. p.Tokens], [.. p.Table]);
        foreach (var b in p.Table)
        {
            _refCount[b]++;
        }
    }

    public void Free(long id)
    {
        var s = Get(id);
        for (var i = s.Table.Count - 1; i >= 0; i--)
        {
            Release(s.Table[i]);
        }

        _seqs.Remove(id);
    }

    private Seq Get(long id) => _seqs.TryGetValue(id, out var s) ? s : throw new UnknownSequenceException(id);

    private string PrefixKey(List<int> tokens, int blockIndex) =>
        string.Join(",", tokens.Take((blockIndex + 1) * _blockSize));

    // -1 when the pool runs dry (the caller restores its backup).
    private int AllocateCore(long id, int[] prompt)
    {
        var seq = new Seq([], []);
        var promptList = prompt.ToList();
        var maxHits = (prompt.Length - 1) / _blockSize;
        while (seq.Table.Count < maxHits && _cache.TryGetValue(PrefixKey(promptList, seq.Table.Count), out var hit))
        {
            if (_refCount[hit] == 0)
            {
                _freeQueue.Remove(hit);
            }

            _refCount[hit]++;
            seq.Table.Add(hit);
            seq.Tokens.AddRange(_blockTokens[hit]);
        }

        var cached = seq.Tokens.Count;
        _seqs[id] = seq;
        return Write(seq, prompt.Skip(cached)) ? cached : -1;
    }

    private BlockCopy? AppendCore(long id, int[] tokens)
    {
        var seq = _seqs[id];
        var copy = BlockCopy.None;
        if (tokens.Length > 0 && seq.Tokens.Count % _blockSize != 0 && _refCount[seq.Table[^1]] > 1)
        {
            var shared = seq.Table[^1];
            var own = TakeFresh();
            if (own < 0)
            {
                return null;
            }

            _blockTokens[own].AddRange(_blockTokens[shared]);
            _refCount[shared]--;
            seq.Table[^1] = own;
            copy = new BlockCopy(shared, own);
        }

        return Write(seq, tokens) ? copy : null;
    }

    private bool Write(Seq seq, IEnumerable<int> tokens)
    {
        foreach (var t in tokens)
        {
            if (seq.Tokens.Count % _blockSize == 0)
            {
                var fresh = TakeFresh();
                if (fresh < 0)
                {
                    return false;
                }

                seq.Table.Add(fresh);
            }

            var block = seq.Table[^1];
            _blockTokens[block].Add(t);
            seq.Tokens.Add(t);
            if (_blockTokens[block].Count == _blockSize)
            {
                var key = PrefixKey(seq.Tokens, seq.Table.Count - 1);
                if (_cache.TryAdd(key, block))
                {
                    _key[block] = key;
                }
            }
        }

        return true;
    }

    private int TakeFresh()
    {
        if (_freeQueue.Count == 0)
        {
            return -1;
        }

        var block = _freeQueue[0];
        _freeQueue.RemoveAt(0);
        if (_key[block] is { } key)
        {
            _cache.Remove(key);
            _key[block] = null;
        }

        _blockTokens[block].Clear();
        _refCount[block] = 1;
        return block;
    }

    private void Release(int block)
    {
        if (--_refCount[block] == 0)
        {
            if (_key[block] != null)
            {
                _freeQueue.Add(block);
            }
            else
            {
                _freeQueue.Insert(0, block);
            }
        }
    }

    private ReferenceModel Clone() => new(_numBlocks, _blockSize, _watermark)
    {
        _freeQueue = [.. _freeQueue],
        _refCount = (int[])_refCount.Clone(),
        _blockTokens = _blockTokens.Select(t => new List<int>(t)).ToArray(),
        _key = (string?[])_key.Clone(),
        _cache = new Dictionary<string, int>(_cache),
        _seqs = _seqs.ToDictionary(kv => kv.Key, kv => new Seq([.. kv.Value.Tokens], [.. kv.Value.Table])),
        PrefixQueryTokens = PrefixQueryTokens,
        PrefixHitTokens = PrefixHitTokens,
    };

    private void Restore(ReferenceModel backup)
    {
        _freeQueue = backup._freeQueue;
        _refCount = backup._refCount;
        _blockTokens = backup._blockTokens;
        _key = backup._key;
        _cache = backup._cache;
        _seqs = backup._seqs;
    }

    private sealed record Seq(List<int> Tokens, List<int> Table);
}
