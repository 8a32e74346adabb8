using RawInfer.Engine.Sampling;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>The test-side sampling reference picks exactly what the engine's CPU Sampler picks for the same uniform.</summary>
public sealed class SamplingReferenceTests
{
    [Theory]
    [InlineData(0.8f, 0, 1f)]
    [InlineData(1.0f, 40, 1f)]
    [InlineData(0.7f, 0, 0.9f)]
    [InlineData(1.3f, 50, 0.8f)]
    [InlineData(1.0f, 1, 1f)]
    [InlineData(0.5f, 0, 0.05f)]
    [InlineData(0f, 0, 1f)]
    public void Reference_matches_the_cpu_sampler(float temperature, int topK, float topP)
    {
        var random = new Random(21);
        var differentPicks = new HashSet<int>();
        for (var trial = 0; trial < 200; trial++)
        {
            var vocab = random.Next(1, 600);
            var logits = new float[vocab];
            for (var i = 0; i < vocab; i++)
            {
                logits[i] = (float)(random.NextDouble() * 8 - 4);
            }

            var seed = (ulong)random.NextInt64();
            var parameters = new SamplingParams { Temperature = temperature, TopK = topK, TopP = topP, Seed = seed };
            var cpu = new Sampler(parameters, vocab).Sample((float[])logits.Clone(), [], 0);

            Assert.Equal(cpu, SamplingReference.Sample(logits, temperature, topK, topP, SamplingReference.FirstUniform(seed)));
            differentPicks.Add(cpu);
        }

        Assert.True(temperature == 0f || topK == 1 || differentPicks.Count > 1, "the draws never varied: the check proves nothing");
    }
}
