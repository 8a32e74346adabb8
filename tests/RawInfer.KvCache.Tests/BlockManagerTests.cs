using Xunit;

namespace RawInfer.KvCache.Tests;

public class BlockManagerTests
{
    private static int[] Seq(int start, int count) => Enumerable.Range(start, count).ToArray();

    [Fact]
    public void Prompt_gets_ceil_blocks_and_slots_follow_the_block_table()
    {
        var m = new BlockManager(numBlocks: 8, blockSize: 4);
        Assert.Equal(0, m.Allocate(1, Seq(100, 10)));
        Assert.Equal(3, m.BlockTable(1).Length);
        Assert.Equal(5, m.FreeBlocks);
        Assert.Equal(10, m.StoredTokens);
        Assert.Equal(2.0 / 12, m.Waste, 12);

        var slots = new int[10];
        m.WriteSlotMapping(1, 0, slots);
        var table = m.BlockTable(1);
        for (var p = 0; p < 10; p++)
        {
            Assert.Equal((table[p / 4] * 4) + (p % 4), slots[p]);
            Assert.Equal(slots[p], m.Slot(1, p));
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => m.Slot(1, 10));
        m.CheckInvariants();
    }

    [Fact]
    public void A_sequence_allocated_with_its_expected_length_appends_up_to_it_without_allocating()
    {
        // A recycled sequence record keeps its table; a fresh one starts small and would grow (allocating) while
        // the sequence decodes, unless admission sized the table for the whole generation budget.
        var m = new BlockManager(numBlocks: 128, blockSize: 4);
        m.Allocate(1, Seq(0, 3), expectedTokens: 300);
        var token = new int[1];
        m.Append(1, token); // first call of each path outside the measured loop
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var n = 5; n <= 300; n++)
        {
            m.Append(1, token);
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(75, m.BlockTable(1).Length);
        Assert.Equal(0, allocated);

        // The expectation only sizes the table: blocks are taken as tokens arrive, and an expectation past the
        // pool is capped (it does not throw, and a sequence still cannot outgrow the pool).
        m.Allocate(2, Seq(0, 3), expectedTokens: int.MaxValue);
        Assert.Single(m.BlockTable(2).ToArray());
        Assert.Equal(128 - 76, m.FreeBlocks);
        m.CheckInvariants();
    }

    [Fact]
    public void Append_takes_a_new_block_only_when_the_last_is_full()
    {
        var m = new BlockManager(8, 4);
        m.Allocate(1, Seq(0, 3));
        Assert.Equal(BlockCopy.None, m.Append(1, [7]));
        Assert.Equal(1, m.BlockTable(1).Length);
        Assert.True(m.CanAppend(1, 1));
        m.Append(1, [8]);
        Assert.Equal(2, m.BlockTable(1).Length);
        Assert.Equal(5, m.NumTokens(1));
        m.CheckInvariants();
    }

    [Fact]
    public void Shared_prefix_is_stored_once_and_a_full_hit_still_leaves_the_last_token_to_compute()
    {
        var m = new BlockManager(16, 4);
        m.Allocate(1, Seq(0, 10));                    // blocks [0..3] [4..7] [8 9]
        Assert.Equal(8, m.Allocate(2, Seq(0, 9)));    // both full blocks hit
        Assert.Equal(m.BlockTable(1)[..2].ToArray(), m.BlockTable(2)[..2].ToArray());
        Assert.Equal(4, m.UsedBlocks);

        // A prompt that is exactly two cached blocks reuses only the first: its last token must be computed.
        Assert.Equal(4, m.Allocate(3, Seq(0, 8)));
        Assert.Equal(m.BlockTable(1)[0], m.BlockTable(3)[0]);
        Assert.NotEqual(m.BlockTable(1)[1], m.BlockTable(3)[1]);
        Assert.Equal(10 + 9 + 8, m.PrefixQueryTokens);
        Assert.Equal(12, m.PrefixHitTokens);
        m.CheckInvariants();
    }

    [Fact]
    public void Blocks_filled_by_decode_become_reusable_prefixes()
    {
        var m = new BlockManager(16, 4);
        m.Allocate(1, Seq(0, 3));
        m.Append(1, [3]);
        m.Append(1, [4, 5, 6, 7]);
        Assert.Equal(8, m.Allocate(2, Seq(0, 9)));
        m.CheckInvariants();
    }

    [Fact]
    public void Freed_blocks_stay_cached_until_the_pool_needs_them_tail_blocks_first()
    {
        var m = new BlockManager(5, 2);
        m.Allocate(1, [1, 2, 3, 4, 5, 6, 7, 8, 9]); // 5 blocks: [1 2] [3 4] [5 6] [7 8] [9]
        var table = m.BlockTable(1).ToArray();
        m.Free(1);
        Assert.Equal(5, m.FreeBlocks);
        Assert.Equal(4, m.CachedFreeBlocks);

        // Fresh blocks come first from the uncached partial block, then from the tail's full blocks.
        Assert.Equal(0, m.Allocate(2, [9]));
        Assert.Equal(table[4], m.BlockTable(2)[0]);
        Assert.Equal(0, m.Allocate(3, [8]));
        Assert.Equal(table[3], m.BlockTable(3)[0]);

        // The head blocks survived, so the shared prefix still hits; its one fresh block evicts table[2].
        Assert.Equal(4, m.Allocate(4, [1, 2, 3, 4, 0]));
        Assert.Equal(table[..3], m.BlockTable(4).ToArray());
        Assert.Equal(0, m.CachedFreeBlocks);
        m.CheckInvariants();
    }

    [Fact]
    public void Least_recently_freed_sequence_is_evicted_first()
    {
        var m = new BlockManager(5, 2);
        m.Allocate(1, [1, 1, 0]);
        m.Allocate(2, [2, 2, 0]);
        var first = m.BlockTable(1)[0];
        m.Free(1);
        m.Free(2);
        m.Allocate(3, [5, 5, 5, 5, 5]); // three fresh blocks: the two uncached partial ones, then the never-used one
        m.Allocate(4, [6]);             // next victim: sequence 1's cached block, freed before sequence 2's
        Assert.Equal(first, m.BlockTable(4)[0]);
        m.Free(4);
        Assert.Equal(2, m.Allocate(5, [2, 2, 0]));
        m.CheckInvariants();
    }

    [Fact]
    public void Fork_shares_every_block_and_the_first_diverging_append_copies_the_partial_block()
    {
        var m = new BlockManager(8, 4);
        m.Allocate(1, Seq(0, 6));
        m.Fork(1, 2);
        Assert.Equal(2, m.UsedBlocks);
        Assert.Equal(m.BlockTable(1).ToArray(), m.BlockTable(2).ToArray());
        Assert.Equal(0, m.CountBlocksReleasedBy(1));
        Assert.True(m.CanAppend([1, 2], 1)); // one copy-on-write block, the second writer finds it private

        var shared = m.BlockTable(1)[1];
        var copy = m.Append(2, [42]);
        Assert.True(copy.IsNeeded);
        Assert.Equal(shared, copy.Source);
        Assert.Equal(copy.Destination, m.BlockTable(2)[1]);
        Assert.Equal(shared, m.BlockTable(1)[1]);
        Assert.Equal(BlockCopy.None, m.Append(1, [43])); // now private: written in place
        Assert.Equal([4, 5, 42], m.BlockTokens(m.BlockTable(2)[1]).ToArray());
        Assert.Equal([4, 5, 43], m.BlockTokens(m.BlockTable(1)[1]).ToArray());
        Assert.Equal(m.BlockTable(1)[0], m.BlockTable(2)[0]);
        m.CheckInvariants();

        m.Free(1);
        m.Free(2);
        Assert.Equal(8, m.FreeBlocks);
        m.CheckInvariants();
    }

    [Fact]
    public void Watermark_holds_blocks_back_from_new_prompts_but_not_from_appends()
    {
        var m = new BlockManager(10, 4, watermarkBlocks: 2);
        Assert.True(m.CanAllocate(Seq(0, 32)));   // 8 blocks, leaves 2
        Assert.False(m.CanAllocate(Seq(0, 33)));  // 9 blocks would eat the watermark
        m.Allocate(1, Seq(0, 32));
        Assert.True(m.CanAppend(1, 8));
        Assert.False(m.CanAppend(1, 9));

        // 4 blocks hit (held by sequence 1, so free), 1 fresh: would leave 1 < 2 free, yet it physically fits.
        Assert.False(m.CanAllocate(Seq(0, 17)));
        Assert.Equal(16, m.Allocate(2, Seq(0, 17)));
        Assert.Equal(1, m.FreeBlocks);
        Assert.True(m.CanAppend(1, 4));
        Assert.False(m.CanAppend([1, 2], 4));
    }

    [Fact]
    public void Preempting_frees_only_blocks_no_one_else_holds()
    {
        var m = new BlockManager(16, 4);
        m.Allocate(1, Seq(0, 11));
        m.Allocate(2, Seq(0, 14));
        Assert.Equal(1, m.CountBlocksReleasedBy(1)); // its partial third block; the first two are shared
        Assert.Equal(2, m.CountBlocksReleasedBy(2));
        var before = m.FreeBlocks;
        m.Free(2);
        Assert.Equal(before + 2, m.FreeBlocks);
    }

    [Fact]
    public void Every_hash_colliding_still_never_hands_out_wrong_tokens()
    {
        // hashMask 0: every block hashes to 0, so the cache holds one block and every lookup collides.
        var m = new BlockManager(16, 2, 0, hashMask: 0);
        m.Allocate(1, [1, 2, 3, 4, 5]);
        Assert.Equal(0, m.Allocate(2, [9, 9, 3, 4, 5]));
        Assert.Equal(0, m.Allocate(3, [3, 4, 1, 2, 0]));
        Assert.Equal(2, m.Allocate(4, [1, 2, 0]));
        Assert.Equal(new[] { 9, 9 }, m.BlockTokens(m.BlockTable(2)[0]).ToArray());
        m.CheckInvariants();
    }

    [Fact]
    public void Sizing_turns_a_byte_budget_into_blocks()
    {
        var perToken = KvCacheSizing.KvBytesPerToken(numLayers: 5, kvDim: 64); // 2 × 5 × 64 × 4 = 2560
        Assert.Equal(2560, perToken);
        Assert.Equal(24, KvCacheSizing.BlocksFor(1_000_000, perToken, 16));    // 40,960 bytes per block
        Assert.Equal(0, KvCacheSizing.BlocksFor(40_959, perToken, 16));
        Assert.Equal(1, KvCacheSizing.DefaultWatermarkBlocks(199));
        Assert.Throws<ArgumentOutOfRangeException>(() => KvCacheSizing.BlocksFor(1, 0, 16));
    }
}
