using System.Diagnostics;

namespace RawInfer.Engine.Sampling;

/// <summary>Log-probabilities of the model's raw distribution (log-softmax of the logits, before any penalty).</summary>
public static class Logprobs
{
    /// <summary>
    /// Writes the <paramref name="top"/>.Length most likely tokens (highest first, lowest id on ties) and returns the
    /// log-probability of <paramref name="chosen"/>. O(vocab × top).
    /// </summary>
    public static float Compute(ReadOnlySpan<float> logits, int chosen, Span<(int TokenId, float Logprob)> top)
    {
        Debug.Assert((uint)chosen < (uint)logits.Length);
        var max = float.NegativeInfinity;
        foreach (var x in logits)
        {
            max = Math.Max(max, x);
        }

        double sum = 0;
        foreach (var x in logits)
        {
            sum += Math.Exp(x - max);
        }

        var logZ = max + (float)Math.Log(sum);
        var count = Math.Min(top.Length, logits.Length);
        for (var k = 0; k < count; k++)
        {
            // k-th best: the largest logit strictly below the previous pick (or equal with a higher id).
            var best = -1;
            for (var i = 0; i < logits.Length; i++)
            {
                if (k > 0 && !After(logits[i], i, logits[top[k - 1].TokenId], top[k - 1].TokenId))
                {
                    continue;
                }

                if (best < 0 || logits[i] > logits[best])
                {
                    best = i;
                }
            }

            top[k] = (best, logits[best] - logZ);
        }

        return logits[chosen] - logZ;
    }

    /// <summary>True when (value, id) ranks after (prevValue, prevId): smaller, or equal with a larger id.</summary>
    private static bool After(float value, int id, float prevValue, int prevId) =>
        value < prevValue || (value == prevValue && id > prevId);
}
