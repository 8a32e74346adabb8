using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>Misuse gets a specific exception and leaves every observable part of the allocator unchanged.</summary>
public class MisuseTests
{
    private static BlockManager Busy()
    {
        var m = new BlockManager(6, 4);
        m.Allocate(1, [1, 2, 3, 4, 5, 6]);
        m.Fork(1, 2);
        m.Allocate(3, [1, 2, 3, 4, 9]);
        m.Allocate(4, [7]);
        m.Free(4);
        return m;
    }

    private static string Snapshot(BlockManager m)
    {
        var tables = string.Join(
            "; ",
            new long[] { 1, 2, 3 }.Select(id => $"{id}:{string.Join(',', m.BlockTable(id).ToArray())}/{m.NumTokens(id)}"));
        return $"{m.FreeBlocks} {m.UsedBlocks} {m.CachedFreeBlocks} {m.StoredTokens} {m.PrefixQueryTokens} "
            + $"{m.PrefixHitTokens} {m.NumSequences} {tables}";
    }

    private static void AssertUnchanged<TException>(Action<BlockManager> misuse)
        where TException : Exception
    {
        var m = Busy();
        var before = Snapshot(m);
        Assert.Throws<TException>(() => misuse(m));
        Assert.Equal(before, Snapshot(m));
        m.CheckInvariants();
    }

    [Fact]
    public void Freeing_an_unknown_sequence() => AssertUnchanged<UnknownSequenceException>(m => m.Free(99));

    [Fact]
    public void Freeing_twice() => AssertUnchanged<UnknownSequenceException>(m => m.Free(4));

    [Fact]
    public void Appending_to_a_freed_sequence() => AssertUnchanged<UnknownSequenceException>(m => m.Append(4, [1]));

    [Fact]
    public void Forking_a_freed_sequence() => AssertUnchanged<UnknownSequenceException>(m => m.Fork(4, 5));

    [Fact]
    public void Forking_onto_a_live_id() => AssertUnchanged<DuplicateSequenceException>(m => m.Fork(1, 3));

    [Fact]
    public void Allocating_a_live_id() => AssertUnchanged<DuplicateSequenceException>(m => m.Allocate(3, [1]));

    [Fact]
    public void Asking_about_an_unknown_sequence() =>
        AssertUnchanged<UnknownSequenceException>(m => m.CanAppend([1, 2, 77], 1));

    [Fact]
    public void A_prompt_larger_than_the_pool()
    {
        AssertUnchanged<PromptTooLargeException>(m => m.Allocate(9, new int[25]));
        Assert.False(Busy().CanAllocate(new int[25]));
    }

    [Fact]
    public void An_empty_prompt() => AssertUnchanged<ArgumentException>(m => m.Allocate(9, []));

    [Fact]
    public void A_prompt_that_does_not_fit_now()
    {
        // 3 used, 3 free: the prefix hit [1 2 3 4] is a used block, so 5 prompt blocks need 4 fresh ones.
        AssertUnchanged<OutOfBlocksException>(m => m.Allocate(9, [1, 2, 3, 4, .. new int[16]]));
    }

    [Fact]
    public void An_append_that_does_not_fit_now() =>
        AssertUnchanged<OutOfBlocksException>(m => m.Append(2, new int[15]));
}
