using RawInfer.Engine.Sampling;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>
/// The CPU sampler's definition (RawInfer.Engine.Sampling.Sampler: temperature, top-k, softmax, top-p, draw) as a
/// plain function of the uniform number, so a GPU result can be checked for a given u. Checked against the real
/// Sampler in <see cref="SamplingReferenceTests"/>.
/// </summary>
internal static class SamplingReference
{
    /// <summary>The kept candidates in draw order, with their probabilities (not renormalised).</summary>
    public static (int[] Ids, float[] Probabilities) Candidates(float[] logits, float temperature, int topK, float topP)
    {
        int vocab = logits.Length;
        int[] ids;
        bool sorted;
        if (topK > 0 && topK < vocab)
        {
            ids = [.. Enumerable.Range(0, vocab).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(topK)];
            sorted = true;
        }
        else
        {
            ids = [.. Enumerable.Range(0, vocab)];
            sorted = false;
        }

        var max = ids.Max(i => logits[i]);
        var inverseT = 1f / temperature;
        var probabilities = new float[ids.Length];
        double sum = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            probabilities[i] = MathF.Exp((logits[ids[i]] - max) * inverseT);
            sum += probabilities[i];
        }

        var inverseSum = (float)(1 / sum);
        for (var i = 0; i < ids.Length; i++)
        {
            probabilities[i] *= inverseSum;
        }

        if (topP < 1f)
        {
            if (!sorted)
            {
                var order = Enumerable.Range(0, ids.Length).OrderByDescending(i => probabilities[i]).ThenBy(i => ids[i]).ToArray();
                ids = [.. order.Select(i => ids[i])];
                probabilities = [.. order.Select(i => probabilities[i])];
            }

            double cumulative = 0;
            var count = ids.Length;
            for (var i = 0; i < ids.Length; i++)
            {
                cumulative += probabilities[i];
                if (cumulative >= topP)
                {
                    count = i + 1;
                    break;
                }
            }

            ids = ids[..count];
            probabilities = probabilities[..count];
        }

        return (ids, probabilities);
    }

    /// <summary>The token the CPU sampler draws with uniform number <paramref name="u"/> (greedy when temperature is 0).</summary>
    public static int Sample(float[] logits, float temperature, int topK, float topP, double u)
    {
        if (temperature == 0f)
        {
            return Sampler.ArgMax(logits);
        }

        var (ids, probabilities) = Candidates(logits, temperature, topK, topP);
        double total = 0;
        foreach (var p in probabilities)
        {
            total += p;
        }

        var target = u * total;
        double cumulative = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            cumulative += probabilities[i];
            if (target < cumulative)
            {
                return ids[i];
            }
        }

        return ids[^1];
    }

    /// <summary>The first number the CPU sampler's generator (SplitMix64-seeded xoshiro256**) draws for a seed.</summary>
    public static double FirstUniform(ulong seed)
    {
        // The first output depends only on the second state word.
        ulong x = seed;
        SplitMix64(ref x);
        ulong s1 = SplitMix64(ref x);
        ulong result = ulong.RotateLeft(s1 * 5, 7) * 9;
        return (result >> 11) * (1.0 / (1UL << 53));
    }

    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
