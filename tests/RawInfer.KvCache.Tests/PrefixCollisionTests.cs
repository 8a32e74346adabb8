using Xunit;

namespace RawInfer.KvCache.Tests;

/// <summary>
/// A prefix hit must name the whole prefix, not just the last block: a block whose own tokens match but whose K/V
/// was computed after a different prefix is wrong KV. With the dictionary hash narrowed to 2 bits, parent hashes
/// collide constantly, so only the independent fingerprint chain keeps such blocks out.
/// </summary>
public class PrefixCollisionTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(1, 3)]
    public void A_hit_block_was_always_written_after_the_same_whole_prefix(int blockSize, int seed)
    {
        const int numBlocks = 24;
        var manager = new BlockManager(numBlocks, blockSize, watermarkBlocks: 0, hashMask: 0b11);
        var rng = new Random(seed);

        // The prefix (every token from position 0) each physical block ends, as the test saw it being written.
        var writtenAfter = new string?[numBlocks];
        var live = new List<long>();
        var nextId = 0L;
        var checkedHits = 0;
        for (var step = 0; step < 4000; step++)
        {
            if (live.Count > 3 || (live.Count > 0 && rng.Next(3) == 0))
            {
                var victim = rng.Next(live.Count);
                manager.Free(live[victim]);
                live.RemoveAt(victim);
                continue;
            }

            var prompt = new int[1 + rng.Next(4 * blockSize)];
            for (var i = 0; i < prompt.Length; i++)
            {
                prompt[i] = rng.Next(2);
            }

            if (!manager.CanAllocate(prompt))
            {
                continue;
            }

            var id = nextId++;
            var cached = manager.Allocate(id, prompt);
            live.Add(id);
            var table = manager.BlockTable(id);
            for (var b = 0; b < table.Length; b++)
            {
                var end = Math.Min((b + 1) * blockSize, prompt.Length);
                var prefix = string.Join(',', prompt[..end]);
                if (b < cached / blockSize)
                {
                    Assert.Equal(writtenAfter[table[b]], prefix);
                    checkedHits++;
                }
                else
                {
                    writtenAfter[table[b]] = prefix;
                }
            }

            manager.CheckInvariants();
        }

        Assert.True(checkedHits > 100, $"only {checkedHits} prefix hits exercised");
    }
}
