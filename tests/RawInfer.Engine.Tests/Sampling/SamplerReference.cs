namespace RawInfer.Engine.Tests.Sampling;

/// <summary>
/// Plain, obviously-correct versions of the sampler's steps (LINQ, full sorts, doubles) to check the real one against.
/// </summary>
internal static class SamplerReference
{
    public static float[] Penalize(float[] logits, int[] history, int promptLength, float repetition, int window,
        float presence, float frequency)
    {
        var result = (float[])logits.Clone();
        foreach (int token in history.Skip(Math.Max(0, history.Length - window)).Distinct())
        {
            result[token] = result[token] > 0 ? result[token] / repetition : result[token] * repetition;
        }

        foreach (var group in history.Skip(promptLength).GroupBy(t => t))
        {
            result[group.Key] -= presence + (frequency * group.Count());
        }

        return result;
    }

    /// <summary>The kept tokens and their probabilities (not renormalised after top-p/min-p), in id order.</summary>
    public static SortedDictionary<int, double> Distribution(float[] logits, float temperature, int topK, float topP, float minP)
    {
        var ranked = logits.Select((logit, id) => (Id: id, Logit: (double)logit))
            .OrderByDescending(c => c.Logit).ThenBy(c => c.Id).ToList();
        if (topK > 0)
        {
            ranked = ranked.Take(topK).ToList();
        }

        double max = ranked.Max(c => c.Logit);
        var weights = ranked.Select(c => Math.Exp((c.Logit - max) / temperature)).ToList();
        double sum = weights.Sum();
        var probs = ranked.Select((c, i) => (c.Id, P: weights[i] / sum)).ToList();
        if (topP < 1f)
        {
            var kept = new List<(int Id, double P)>();
            double cumulative = 0;
            foreach (var c in probs)
            {
                kept.Add(c);
                cumulative += c.P;
                if (cumulative >= topP)
                {
                    break;
                }
            }

            probs = kept;
        }

        if (minP > 0f)
        {
            double top = probs.Max(c => c.P);
            probs = probs.Where(c => c.P >= minP * top).ToList();
        }

        return new SortedDictionary<int, double>(probs.ToDictionary(c => c.Id, c => c.P));
    }
}
