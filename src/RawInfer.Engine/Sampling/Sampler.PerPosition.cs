namespace RawInfer.Engine.Sampling;

// Sampling keyed by output position, so a request's tokens do not depend on how its steps were scheduled.
public sealed partial class Sampler
{
    /// <summary>
    /// Like <see cref="Sample"/>, but the random draw depends only on (seed, <paramref name="outputIndex"/>): the
    /// generator is re-seeded for every position. A request that is preempted and recomputed, or run in any batch,
    /// draws the same numbers at the same positions.
    /// </summary>
    public int SampleAt(Span<float> logits, ReadOnlySpan<int> history, int promptLength, int outputIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(outputIndex);
        if (!_params.IsGreedy)
        {
            // Golden-ratio increments spread consecutive indexes; the generator's SplitMix64 seeding mixes them.
            _rng = new Xoshiro256StarStar(Seed + (0x9E3779B97F4A7C15UL * (ulong)(outputIndex + 1)));
        }

        return Sample(logits, history, promptLength);
    }
}
