using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>Runs one scenario on the allocator and the reference model side by side.</summary>
internal sealed class ModelHarness(Scenario scenario)
{
    private readonly BlockManager _manager = new(scenario.NumBlocks, scenario.BlockSize, scenario.Watermark);
    private readonly ReferenceModel _model = new(scenario.NumBlocks, scenario.BlockSize, scenario.Watermark);

    /// <summary>Tokens of a sequence read through its block table and the blocks' stored tokens.</summary>
    public static List<int> ReadBack(BlockManager manager, long id)
    {
        var tokens = new List<int>();
        var remaining = manager.NumTokens(id);
        foreach (var block in manager.BlockTable(id))
        {
            var stored = manager.BlockTokens(block);
            var take = Math.Min(remaining, manager.BlockSize);
            Assert.True(stored.Length >= take, $"block {block} holds {stored.Length} tokens, sequence {id} needs {take}");
            tokens.AddRange(stored[..take].ToArray());
            remaining -= take;
        }

        Assert.Equal(0, remaining);
        return tokens;
    }

    public void Run()
    {
        for (var step = 0; step < scenario.Commands.Length; step++)
        {
            var command = scenario.Commands[step];
            var expected = Outcome(() => ApplyToModel(command));
            var actual = Outcome(() => ApplyToAllocator(command));
            Assert.True(expected == actual, $"step {step} ({command}): model {expected}, allocator {actual}");
            CompareState($"after step {step} ({command})");
        }

        // Freeing everything returns the pool to all free.
        foreach (var id in _model.LiveIds.ToList())
        {
            _model.Free(id);
            _manager.Free(id);
        }

        CompareState("after freeing everything");
        Assert.Equal(_manager.TotalBlocks, _manager.FreeBlocks);
        Assert.Equal(0, _manager.UsedBlocks);
        Assert.Equal(0, _manager.StoredTokens);
        Assert.Equal(0.0, _manager.Waste);
    }

    private static string Outcome(Func<string> action)
    {
        try
        {
            return "ok " + action();
        }
        catch (Exception e) when (e is KvCacheException or ArgumentException)
        {
            return "throws " + e.GetType().Name;
        }
    }

    private string ApplyToModel(AllocatorCommand command) => command switch
    {
        AllocateCommand a => $"{_model.CanAllocate(a.Prompt)} {_model.Allocate(a.Id, a.Prompt)}",
        AppendCommand a => _model.Append(a.Id, a.Tokens).ToString(),
        ForkCommand f => Do(() => _model.Fork(f.Parent, f.Child)),
        FreeCommand f => Do(() => _model.Free(f.Id)),
        CanAllocateCommand c => _model.CanAllocate(c.Prompt).ToString(),
        CanAppendAllCommand c => _model.CanAppendAll(_model.LiveIds.ToList(), c.Tokens).ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(command)),
    };

    private string ApplyToAllocator(AllocatorCommand command) => command switch
    {
        AllocateCommand a => $"{_manager.CanAllocate(a.Prompt)} {_manager.Allocate(a.Id, a.Prompt)}",
        AppendCommand a => _manager.Append(a.Id, a.Tokens).ToString(),
        ForkCommand f => Do(() => _manager.Fork(f.Parent, f.Child)),
        FreeCommand f => Do(() => _manager.Free(f.Id)),
        CanAllocateCommand c => _manager.CanAllocate(c.Prompt).ToString(),
        CanAppendAllCommand c => _manager.CanAppend(_model.LiveIds.ToArray(), c.Tokens).ToString(),
        _ => throw new ArgumentOutOfRangeException(nameof(command)),
    };

    private static string Do(Action action)
    {
        action();
        return "";
    }

    private void CompareState(string when)
    {
        _manager.CheckInvariants();
        Assert.True(_model.FreeBlocks == _manager.FreeBlocks, $"{when}: free {_manager.FreeBlocks}, model {_model.FreeBlocks}");
        Assert.True(_model.UsedBlocks == _manager.UsedBlocks, $"{when}: used blocks differ");
        Assert.True(
            _model.CachedFreeBlocks == _manager.CachedFreeBlocks,
            $"{when}: cached free {_manager.CachedFreeBlocks}, model {_model.CachedFreeBlocks}");
        Assert.True(_model.StoredTokens == _manager.StoredTokens, $"{when}: stored tokens differ");
        Assert.True(_model.PrefixQueryTokens == _manager.PrefixQueryTokens, $"{when}: prefix queries differ");
        Assert.True(_model.PrefixHitTokens == _manager.PrefixHitTokens, $"{when}: prefix hits differ");
        Assert.True(_model.LiveIds.Count() == _manager.NumSequences, $"{when}: live sequence count differs");

        var holders = new Dictionary<int, List<long>>();
        foreach (var id in _model.LiveIds)
        {
            Assert.True(_manager.Contains(id), $"{when}: sequence {id} missing");
            Assert.True(_model.Table(id).SequenceEqual(_manager.BlockTable(id).ToArray()), $"{when}: block table of {id} differs");
            Assert.True(_model.Tokens(id).SequenceEqual(ReadBack(_manager, id)), $"{when}: tokens of {id} read back wrong");
            Assert.True(
                _model.CountBlocksReleasedBy(id) == _manager.CountBlocksReleasedBy(id),
                $"{when}: blocks released by freeing {id} differ");
            foreach (var block in _manager.BlockTable(id))
            {
                (holders.TryGetValue(block, out var list) ? list : holders[block] = []).Add(id);
            }
        }

        // No physical block writable by two sequences: a block two tables share is full (read-only), or it is the
        // partly filled last block of every holder, so the first append to it copies it first.
        foreach (var (block, ids) in holders)
        {
            if (ids.Count > 1 && _manager.BlockTokens(block).Length < _manager.BlockSize)
            {
                Assert.All(ids, id => Assert.Equal(block, _manager.BlockTable(id)[^1]));
            }
        }

        // Waste stays under one block per live sequence (each holds at most one partly filled block).
        var unused = _manager.AllocatedSlots - _manager.StoredTokens;
        Assert.True(
            unused < Math.Max(1, (long)_manager.BlockSize * _manager.NumSequences),
            $"{when}: {unused} unused slots for {_manager.NumSequences} sequences");
    }
}
