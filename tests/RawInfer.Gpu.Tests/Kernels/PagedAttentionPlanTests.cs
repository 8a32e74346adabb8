using RawInfer.Gpu.Kernels;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>Properties of the decode split chooser, over many random batches (fixed seed).</summary>
public sealed class PagedAttentionPlanTests
{
    private const int Cases = 20_000;

    [Fact]
    public void Splits_cover_the_longest_context_with_none_empty()
    {
        var random = new Random(11);
        for (var i = 0; i < Cases; i++)
        {
            var (seqs, kvHeads, context, sms) = RandomBatch(random);
            var plan = PagedAttentionPlan.Choose(seqs, kvHeads, context, sms);

            Assert.InRange(plan.NumSplits, 1, PagedAttentionPlan.MaxSplits);
            Assert.True(plan.TokensPerSplit >= 1);
            Assert.True((long)plan.NumSplits * plan.TokensPerSplit >= context, $"{plan} does not cover {context}");
            Assert.True(context == 0 || (long)(plan.NumSplits - 1) * plan.TokensPerSplit < context, $"{plan}: last split empty for {context}");
        }
    }

    [Fact]
    public void Short_contexts_take_one_split()
    {
        var random = new Random(12);
        for (var i = 0; i < Cases; i++)
        {
            var (seqs, kvHeads, _, sms) = RandomBatch(random);
            var context = random.Next(0, PagedAttentionPlan.MinTokensPerSplit + 1);

            Assert.Equal(1, PagedAttentionPlan.Choose(seqs, kvHeads, context, sms).NumSplits);
        }
    }

    [Fact]
    public void Splits_are_never_shorter_than_the_minimum_unless_there_is_one()
    {
        var random = new Random(13);
        for (var i = 0; i < Cases; i++)
        {
            var (seqs, kvHeads, context, sms) = RandomBatch(random);
            var plan = PagedAttentionPlan.Choose(seqs, kvHeads, context, sms);

            Assert.True(plan.NumSplits == 1 || plan.TokensPerSplit >= PagedAttentionPlan.MinTokensPerSplit, $"{plan} for {context}");
        }
    }

    [Fact]
    public void A_batch_that_already_fills_the_device_is_not_split()
    {
        var random = new Random(14);
        for (var i = 0; i < Cases; i++)
        {
            var sms = random.Next(1, 200);
            var kvHeads = random.Next(1, 17);
            var fill = sms * PagedAttentionPlan.BlocksPerMultiprocessor;
            var seqs = ((fill + kvHeads - 1) / kvHeads) + random.Next(0, 50);

            Assert.Equal(1, PagedAttentionPlan.Choose(seqs, kvHeads, random.Next(1, 1 << 17), sms).NumSplits);
        }
    }

    [Fact]
    public void A_lone_long_sequence_is_split_to_fill_the_device()
    {
        // One sequence of 32k tokens on an H100 (132 SMs) with 8 KV heads: 8 blocks alone would idle 124 SMs.
        var plan = PagedAttentionPlan.Choose(1, 8, 32_768, 132);

        Assert.True(plan.NumSplits * 8 >= 132, $"{plan} leaves SMs idle");
    }

    [Fact]
    public void Splits_fill_the_device_unless_the_context_or_the_cap_stops_them()
    {
        var random = new Random(15);
        for (var i = 0; i < Cases; i++)
        {
            var (seqs, kvHeads, context, sms) = RandomBatch(random);
            var plan = PagedAttentionPlan.Choose(seqs, kvHeads, context, sms);
            long blocks = (long)seqs * kvHeads * plan.NumSplits;
            long wanted = (long)sms * PagedAttentionPlan.BlocksPerMultiprocessor;
            var byLength = Math.Max(1, context / PagedAttentionPlan.MinTokensPerSplit);

            Assert.True(blocks >= wanted || plan.NumSplits == byLength || plan.NumSplits == PagedAttentionPlan.MaxSplits,
                $"{plan}: {blocks} blocks for {seqs}x{kvHeads}, context {context}, {sms} SMs");
        }
    }

    [Fact]
    public void Max_split_rows_bounds_every_plan_up_to_the_batch_limit()
    {
        var random = new Random(16);
        for (var i = 0; i < 2_000; i++)
        {
            var maxSeqs = random.Next(1, 300);
            var kvHeads = random.Next(1, 17);
            var sms = random.Next(1, 200);
            var bound = PagedAttentionPlan.MaxSplitRows(maxSeqs, kvHeads, sms);
            for (var seqs = 1; seqs <= maxSeqs; seqs += 1 + (seqs / 8))
            {
                var plan = PagedAttentionPlan.Choose(seqs, kvHeads, 1 << 20, sms);
                Assert.True((long)seqs * plan.NumSplits <= bound, $"{seqs} x {plan.NumSplits} > {bound}");
            }
        }
    }

    [Theory]
    [InlineData(32, 8, 128, 10_368)] // group 4: (5 * 4 * 128 + 2 * 4 * 4) floats
    [InlineData(64, 4, 128, 20_736)] // group 16 runs in passes of 8: (5 * 8 * 128 + 2 * 4 * 8) floats
    [InlineData(8, 4, 8, 384)]       // stories260K: group 2, headDim 8: (5 * 2 * 8 + 2 * 4 * 2) floats
    [InlineData(16, 2, 256, 41_216)] // the largest: group 8, headDim 256, still under the 48 KiB default
    public void Shared_memory_follows_the_kernel_layout(int heads, int kvHeads, int headDim, int bytes)
    {
        Assert.Equal(bytes, PagedAttentionPlan.SharedMemoryBytes(heads, kvHeads, headDim));
        Assert.True(bytes <= 48 * 1024);
    }

    [Fact]
    public void Bad_arguments_name_the_parameter()
    {
        Assert.Equal("numSeqs", Assert.Throws<ArgumentOutOfRangeException>(() => PagedAttentionPlan.Choose(0, 1, 1, 1)).ParamName);
        Assert.Equal("kvHeads", Assert.Throws<ArgumentOutOfRangeException>(() => PagedAttentionPlan.Choose(1, 0, 1, 1)).ParamName);
        Assert.Equal("heads", Assert.Throws<ArgumentOutOfRangeException>(() => PagedAttentionPlan.SharedMemoryBytes(6, 4, 64)).ParamName);
    }

    private static (int Seqs, int KvHeads, int Context, int Sms) RandomBatch(Random random) =>
        (random.Next(1, 257), random.Next(1, 17), random.Next(0, 1 << 18), random.Next(1, 200));
}
