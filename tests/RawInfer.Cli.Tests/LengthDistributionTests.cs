using RawInfer.Cli.Commands;
using RawInfer.Models;

namespace RawInfer.Cli.Tests;

/// <summary>
/// <c>--prompt-lengths</c> / <c>--output-lengths</c>: uniform <c>MIN:MAX</c> and <c>geometric:MEAN:MAX</c>, drawn with
/// a fixed seed and checked against the distributions' closed forms.
/// </summary>
public sealed class LengthDistributionTests
{
    [Fact]
    public void Uniform_lengths_cover_min_to_max_with_one_draw_each()
    {
        var lengths = LengthDistribution.Parse("3:7", "--output-lengths");
        Assert.False(lengths.IsGeometric);
        Assert.Equal((3, 7, 5.0), (lengths.Min, lengths.Max, lengths.Mean));
        var (random, reference) = (new Random(5), new Random(5));
        for (var i = 0; i < 1_000; i++)
        {
            // the same stream as random.Next(MIN, MAX + 1), so workloads made before geometric lengths are unchanged
            Assert.Equal(reference.Next(3, 8), lengths.Sample(random));
        }

        Assert.Equal("uniform 3..7", lengths.ToString());
    }

    [Fact]
    public void Geometric_lengths_have_the_given_mean_and_a_constant_stop_rate()
    {
        const int Draws = 1_000_000;
        var lengths = LengthDistribution.Parse("geometric:128:100000", "--output-lengths");
        Assert.True(lengths.IsGeometric);
        var random = new Random(11);
        var (sum, ones, over128, over256) = (0L, 0, 0, 0);
        for (var i = 0; i < Draws; i++)
        {
            var length = lengths.Sample(random);
            Assert.InRange(length, 1, 100_000);
            sum += length;
            ones += length == 1 ? 1 : 0;
            over128 += length > 128 ? 1 : 0;
            over256 += length > 256 ? 1 : 0;
        }

        // mean 128 with a standard deviation of 127.5: the standard error of a million draws is 0.13, so an
        // off-by-one (a mean of 127 or 129) is 8 of them away
        Assert.InRange(sum / (double)Draws, 127.5, 128.5);
        // P(L = 1) = 1/128; P(L > k) = (1 - 1/128)^k, and memoryless: P(L > 256 | L > 128) = P(L > 128)
        Assert.InRange(ones / (double)Draws, (1 / 128.0) * 0.95, (1 / 128.0) * 1.05);
        var pOver128 = Math.Pow(1 - (1 / 128.0), 128);
        Assert.InRange(over128 / (double)Draws, pOver128 - 0.002, pOver128 + 0.002);
        Assert.InRange(over256 / (double)over128, pOver128 - 0.004, pOver128 + 0.004);
    }

    [Fact]
    public void Geometric_lengths_are_capped_at_max()
    {
        var lengths = LengthDistribution.Parse("geometric:50:60", "--output-lengths");
        var random = new Random(3);
        var atCap = 0;
        for (var i = 0; i < 100_000; i++)
        {
            var length = lengths.Sample(random);
            Assert.InRange(length, 1, 60);
            atCap += length == 60 ? 1 : 0;
        }

        // P(L >= 60) = (1 - 1/50)^59 = 0.304: every draw beyond the cap lands on it
        Assert.InRange(atCap / 100_000.0, 0.29, 0.32);
        Assert.Equal("geometric, mean 50, max 60", lengths.ToString());
    }

    [Fact]
    public void A_geometric_mean_of_one_always_stops_at_the_first_token()
    {
        var lengths = LengthDistribution.Parse("geometric:1:8", "--prompt-lengths");
        var random = new Random(1);
        for (var i = 0; i < 100; i++)
        {
            Assert.Equal(1, lengths.Sample(random));
        }
    }

    [Theory]
    [InlineData("5")]
    [InlineData("0:4")]
    [InlineData("6:5")]
    [InlineData("a:b")]
    [InlineData("1:2:3")]
    public void Malformed_ranges_name_both_forms(string text)
    {
        var e = Assert.Throws<CliException>(() => LengthDistribution.Parse(text, "--output-lengths"));
        Assert.Equal($"--output-lengths must be MIN:MAX with 1 <= MIN <= MAX, or geometric:MEAN:MAX, not '{text}'", e.Message);
    }

    [Theory]
    [InlineData("geometric:0.5:10")]
    [InlineData("geometric:20:10")]
    [InlineData("geometric:x:10")]
    [InlineData("geometric:NaN:10")]
    [InlineData("geometric:4:y")]
    public void Malformed_geometric_lengths_say_what_they_need(string text)
    {
        var e = Assert.Throws<CliException>(() => LengthDistribution.Parse(text, "--prompt-lengths"));
        Assert.Equal($"--prompt-lengths geometric:MEAN:MAX needs 1 <= MEAN <= MAX, not '{text}'", e.Message);
    }

    [Fact]
    public void A_workload_draws_outputs_from_the_distribution_and_keeps_prompts_within_the_context()
    {
        var config = ModelShapes.Parse("260k");
        var outputs = LengthDistribution.Parse("geometric:16:200", "--output-lengths");
        var workload = BenchCommand.Workload(2_000, 4, LengthDistribution.Parse($"1:{config.MaxSeqLen}", "--prompt-lengths"), outputs, config);
        Assert.Equal(2_000, workload.Count);
        Assert.All(workload, w => Assert.InRange(w.Request.MaxTokens, 1, 200));
        Assert.All(workload, w => Assert.InRange(w.Request.PromptTokenIds!.Count, 1, config.MaxSeqLen - 200));
        Assert.InRange(workload.Average(w => w.Request.MaxTokens), 15, 17); // mean 16, standard error 0.35
        Assert.Contains(workload, w => w.Request.MaxTokens > 64); // P(L > 64) = 1.6%: about 32 of them
        // Poisson arrivals at 4 req/s: 2,000 of them span about 500 s
        Assert.InRange(workload[^1].At.TotalSeconds, 450, 550);
    }
}
