using RawInfer.Engine.Sampling;

namespace RawInfer.Engine.Tests.Sampling;

public class SamplerTests
{
    [Fact]
    public void Greedy_takes_the_lowest_index_among_equal_maxima()
    {
        var sampler = new Sampler(SamplingParams.Greedy, 5);
        float[] logits = [1f, 3f, -2f, 3f, 2.5f];
        Assert.Equal(1, sampler.Sample(logits, []));
        Assert.Equal(0, Sampler.ArgMax([float.NaN, float.NaN]));
        Assert.Equal(1, Sampler.ArgMax([float.NegativeInfinity, 0f, float.NaN]));
    }

    public static TheoryData<int, float, int, float, float> FilterCases => new()
    {
        { 1, 1f, 0, 1f, 0f },
        { 17, 0.7f, 0, 1f, 0f },
        { 17, 1f, 5, 1f, 0f },
        { 257, 1.3f, 0, 0.9f, 0f },
        { 257, 0.8f, 40, 0.95f, 0f },
        { 257, 1f, 0, 1f, 0.05f },
        { 1025, 0.9f, 100, 0.8f, 0.02f },
        { 1025, 1.5f, 0, 0.5f, 0.1f },
        { 1025, 1f, 1024, 1f, 0f },
        { 32000, 0.8f, 0, 0.9f, 0f },
    };

    [Theory]
    [MemberData(nameof(FilterCases))]
    public void Filters_keep_the_same_tokens_with_the_same_probabilities_as_the_reference(
        int vocab, float temperature, int topK, float topP, float minP)
    {
        var logits = RandomLogits(vocab, seed: vocab + topK);
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP, Seed = 1 };
        var sampler = new Sampler(p, vocab);
        int count = sampler.BuildDistribution(logits);

        var expected = SamplerReference.Distribution(logits, temperature, topK, topP, minP);
        var actual = new SortedDictionary<int, double>();
        for (int i = 0; i < count; i++)
        {
            actual.Add(sampler.CandidateIds(count)[i], sampler.CandidateProbabilities(count)[i]);
        }

        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (id, probability) in expected)
        {
            Assert.Equal(probability, actual[id], 1e-5); // float softmax vs double reference
        }
    }

    [Fact]
    public void Top_k_breaks_ties_toward_lower_ids()
    {
        var sampler = new Sampler(new SamplingParams { Temperature = 1f, TopK = 2, Seed = 3 }, 6);
        int count = sampler.BuildDistribution([0f, 5f, 1f, 5f, 5f, 1f]);
        Assert.Equal(2, count);
        Assert.Equal([1, 3], sampler.CandidateIds(count).ToArray());
    }

    [Fact]
    public void Same_seed_gives_the_same_tokens_and_another_seed_does_not()
    {
        var logits = RandomLogits(1000, seed: 7);
        int[] Run(ulong seed)
        {
            var sampler = new Sampler(new SamplingParams { Temperature = 1f, TopP = 0.95f, Seed = seed }, logits.Length);
            return Enumerable.Range(0, 200).Select(_ => sampler.Sample((float[])logits.Clone(), [])).ToArray();
        }

        Assert.Equal(Run(42), Run(42));
        Assert.NotEqual(Run(42), Run(43));
    }

    [Fact]
    public void Top_k_of_one_always_takes_the_argmax()
    {
        var logits = RandomLogits(500, seed: 11);
        var sampler = new Sampler(new SamplingParams { Temperature = 2f, TopK = 1, Seed = 5 }, logits.Length);
        for (int i = 0; i < 300; i++)
        {
            Assert.Equal(Sampler.ArgMax(logits), sampler.Sample((float[])logits.Clone(), []));
        }
    }

    [Fact]
    public void Low_temperature_concentrates_and_high_temperature_spreads()
    {
        float[] logits = [0f, 1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 9f];
        var cold = new Sampler(new SamplingParams { Temperature = 0.01f, Seed = 9 }, 10);
        var hot = new Sampler(new SamplingParams { Temperature = 100f, Seed = 9 }, 10);
        var coldTokens = Enumerable.Range(0, 1000).Select(_ => cold.Sample((float[])logits.Clone(), [])).ToHashSet();
        var hotTokens = Enumerable.Range(0, 1000).Select(_ => hot.Sample((float[])logits.Clone(), [])).ToHashSet();
        Assert.Equal([9], coldTokens);        // the runner-up has probability e^-100
        Assert.Equal(10, hotTokens.Count);    // each token has probability ~0.1 per draw
    }

    [Fact]
    public void Draw_frequencies_follow_the_probabilities()
    {
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        var sampler = new Sampler(new SamplingParams { Temperature = 1f, Seed = 2024 }, 4);
        var counts = new int[4];
        const int Draws = 40_000;
        for (int i = 0; i < Draws; i++)
        {
            counts[sampler.Sample((float[])logits.Clone(), [])]++;
        }

        // Standard deviation of a frequency is at most 0.0025 here; 0.015 is six of them.
        double[] expected = [0.5, 0.3, 0.15, 0.05];
        for (int i = 0; i < 4; i++)
        {
            Assert.InRange(counts[i] / (double)Draws, expected[i] - 0.015, expected[i] + 0.015);
        }
    }

    [Fact]
    public void Sample_does_not_allocate()
    {
        var logits = RandomLogits(32000, seed: 1);
        var work = new float[logits.Length];
        int[] history = [5, 6, 7, 5, 100, 200];
        var sampler = new Sampler(
            new SamplingParams { Temperature = 0.8f, TopK = 40, TopP = 0.9f, MinP = 0.01f, RepetitionPenalty = 1.1f, FrequencyPenalty = 0.2f, Seed = 1 },
            logits.Length);
        var full = new Sampler(new SamplingParams { Temperature = 0.8f, TopP = 0.9f, Seed = 1 }, logits.Length);
        logits.CopyTo(work, 0);
        sampler.Sample(work, history); // warm up (JIT, static init)
        logits.CopyTo(work, 0);
        full.Sample(work, history);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 20; i++)
        {
            logits.CopyTo(work, 0);
            sampler.Sample(work, history, promptLength: 2);
            logits.CopyTo(work, 0);
            full.Sample(work, history);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Theory]
    [InlineData(-1f, 0, 1f, 0f)]
    [InlineData(float.NaN, 0, 1f, 0f)]
    [InlineData(1f, -1, 1f, 0f)]
    [InlineData(1f, 0, 0f, 0f)]
    [InlineData(1f, 0, 1.5f, 0f)]
    [InlineData(1f, 0, 1f, 2f)]
    public void Out_of_range_parameters_are_rejected(float temperature, int topK, float topP, float minP)
    {
        var p = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP };
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(p, 10));
    }

    [Fact]
    public void Wrong_logits_length_is_rejected()
    {
        var sampler = new Sampler(SamplingParams.Greedy, 10);
        Assert.Throws<ArgumentException>(() => sampler.Sample(new float[9], []));
    }

    internal static float[] RandomLogits(int vocab, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, vocab).Select(_ => (float)(random.NextDouble() * 10 - 5)).ToArray();
    }
}
