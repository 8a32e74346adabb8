using RawInfer.Engine.Sampling;

namespace RawInfer.Engine.Tests.Sampling;

public class PenaltyTests
{
    [Fact]
    public void Repetition_penalty_divides_positive_and_multiplies_negative_logits_once_per_token()
    {
        float[] logits = [2f, -2f, 1f, 0.5f];
        var sampler = new Sampler(new SamplingParams { RepetitionPenalty = 2f }, 4);
        sampler.Sample(logits, [0, 1, 0, 0]);
        Assert.Equal([1f, -4f, 1f, 0.5f], logits);
    }

    [Fact]
    public void Repetition_penalty_looks_only_at_the_window()
    {
        float[] logits = [2f, -2f, 1f, 0.5f];
        var sampler = new Sampler(new SamplingParams { RepetitionPenalty = 2f, RepetitionWindow = 2 }, 4);
        sampler.Sample(logits, [1, 2, 0]);
        Assert.Equal([1f, -2f, 0.5f, 0.5f], logits);
    }

    [Fact]
    public void Presence_and_frequency_penalties_count_generated_tokens_only()
    {
        float[] logits = [2f, -2f, 1f, 0.5f];
        var sampler = new Sampler(new SamplingParams { PresencePenalty = 0.5f, FrequencyPenalty = 0.25f }, 4);
        sampler.Sample(logits, [3, 3, 0, 0, 1], promptLength: 2);
        Assert.Equal([2f - 0.5f - 0.5f, -2f - 0.5f - 0.25f, 1f, 0.5f], logits);
    }

    [Fact]
    public void Penalties_change_the_greedy_choice_and_leave_no_state_behind()
    {
        var sampler = new Sampler(new SamplingParams { RepetitionPenalty = 3f }, 3);
        Assert.Equal(1, sampler.Sample([3f, 2f, 0f], [0]));   // 3/3 = 1 < 2
        Assert.Equal(0, sampler.Sample([3f, 2f, 0f], []));    // nothing remembered from the last call
    }

    [Theory]
    [InlineData(1.3f, 64, 0f, 0f, 0)]
    [InlineData(1f, 64, 0.4f, 0.1f, 3)]
    [InlineData(1.1f, 5, 0.2f, 0.3f, 10)]
    public void Penalties_match_the_reference(float repetition, int window, float presence, float frequency, int promptLength)
    {
        var logits = SamplerTests.RandomLogits(257, seed: 3);
        var random = new Random(4);
        int[] history = Enumerable.Range(0, 40).Select(_ => random.Next(0, 30)).ToArray();
        var expected = SamplerReference.Penalize(logits, history, promptLength, repetition, window, presence, frequency);
        var sampler = new Sampler(
            new SamplingParams { RepetitionPenalty = repetition, RepetitionWindow = window, PresencePenalty = presence, FrequencyPenalty = frequency },
            logits.Length);
        sampler.Sample(logits, history, promptLength);
        Assert.Equal(expected, logits);
    }
}
