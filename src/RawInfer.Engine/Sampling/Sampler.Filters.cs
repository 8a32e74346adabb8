using System.Diagnostics;

namespace RawInfer.Engine.Sampling;

public sealed partial class Sampler
{
    /// <summary>
    /// Temperature, top-k, softmax, top-p and min-p over <paramref name="logits"/> (vocab). Leaves the survivors in
    /// the candidate buffers and returns how many there are (at least one).
    /// </summary>
    internal int BuildDistribution(ReadOnlySpan<float> logits)
    {
        Debug.Assert(_params.Temperature > 0f);
        bool sorted;
        int count;
        if (_params.TopK > 0 && _params.TopK < _vocabSize)
        {
            count = SelectTopK(logits, _params.TopK);
            sorted = true;
        }
        else
        {
            for (int i = 0; i < _vocabSize; i++)
            {
                _candidateIds[i] = i;
                _candidateValues[i] = logits[i];
            }

            count = _vocabSize;
            sorted = false;
        }

        SoftmaxWithTemperature(_candidateValues.AsSpan(0, count), _params.Temperature);

        if (_params.TopP < 1f)
        {
            if (!sorted)
            {
                // A token below (1-p)/(n-1) can never be needed to reach p: all of them together hold less than
                // 1-p. Dropping them first keeps the sort small (llama2.c's trick).
                count = Keep(count, (1f - _params.TopP) / (count - 1));
                SortDescending(count);
                sorted = true;
            }

            count = TruncateToNucleus(count, _params.TopP);
        }

        if (_params.MinP > 0f)
        {
            float maxProbability = sorted ? _candidateValues[0] : Max(count);
            count = Keep(count, _params.MinP * maxProbability);
        }

        Debug.Assert(count > 0);
        return count;
    }

    /// <summary>The k largest logits, descending (ties: lower id first), via a size-k min-heap: O(vocab log k).</summary>
    private int SelectTopK(ReadOnlySpan<float> logits, int k)
    {
        var ids = _candidateIds.AsSpan(0, k);
        var values = _candidateValues.AsSpan(0, k);
        for (int i = 0; i < k; i++)
        {
            ids[i] = i;
            values[i] = logits[i];
        }

        for (int i = k / 2 - 1; i >= 0; i--)
        {
            SiftDown(ids, values, i);
        }

        for (int i = k; i < logits.Length; i++)
        {
            // A later id with an equal logit loses, so the lowest ids win ties.
            if (logits[i] > values[0])
            {
                ids[0] = i;
                values[0] = logits[i];
                SiftDown(ids, values, 0);
            }
        }

        SortDescending(k);
        return k;
    }

    /// <summary>Min-heap on (value, then higher id counts as smaller) so the heap top is the weakest entry.</summary>
    private static void SiftDown(Span<int> ids, Span<float> values, int i)
    {
        int n = ids.Length;
        while (true)
        {
            int smallest = i;
            int left = 2 * i + 1;
            int right = left + 1;
            if (left < n && Weaker(values[left], ids[left], values[smallest], ids[smallest]))
            {
                smallest = left;
            }

            if (right < n && Weaker(values[right], ids[right], values[smallest], ids[smallest]))
            {
                smallest = right;
            }

            if (smallest == i)
            {
                return;
            }

            (ids[i], ids[smallest]) = (ids[smallest], ids[i]);
            (values[i], values[smallest]) = (values[smallest], values[i]);
            i = smallest;
        }
    }

    private static bool Weaker(float value, int id, float otherValue, int otherId) =>
        value < otherValue || (value == otherValue && id > otherId);

    private static void SoftmaxWithTemperature(Span<float> values, float temperature)
    {
        float max = float.NegativeInfinity;
        foreach (float v in values)
        {
            max = MathF.Max(max, v);
        }

        float inverseT = 1f / temperature;
        double sum = 0;
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = MathF.Exp((values[i] - max) * inverseT);
            sum += values[i];
        }

        float inverseSum = (float)(1 / sum);
        for (int i = 0; i < values.Length; i++)
        {
            values[i] *= inverseSum;
        }
    }

    /// <summary>Sorts the first <paramref name="count"/> candidates: descending value, then ascending id.</summary>
    private void SortDescending(int count)
    {
        var values = _candidateValues.AsSpan(0, count);
        var ids = _candidateIds.AsSpan(0, count);
        for (int i = 0; i < count; i++)
        {
            values[i] = -values[i]; // ascending sort of negated values = descending values
        }

        values.Sort(ids);
        for (int i = 0; i < count; i++)
        {
            values[i] = -values[i];
        }

        // Sort is unstable; restore ascending ids within runs of equal values so results never depend on it.
        for (int start = 0; start < count;)
        {
            int end = start + 1;
            while (end < count && values[end] == values[start])
            {
                end++;
            }

            if (end - start > 1)
            {
                ids[start..end].Sort();
            }

            start = end;
        }
    }

    /// <summary>Smallest prefix (of sorted candidates) whose probability reaches <paramref name="p"/>.</summary>
    private int TruncateToNucleus(int count, float p)
    {
        double cumulative = 0; // a float sum over tens of thousands of terms drifts near the boundary
        for (int i = 0; i < count; i++)
        {
            cumulative += _candidateValues[i];
            if (cumulative >= p)
            {
                return i + 1;
            }
        }

        return count;
    }

    /// <summary>Keeps candidates with probability &gt;= threshold, in order. Never empties the set.</summary>
    private int Keep(int count, float threshold)
    {
        int kept = 0;
        int best = 0;
        for (int i = 0; i < count; i++)
        {
            if (_candidateValues[i] > _candidateValues[best])
            {
                best = i;
            }

            if (_candidateValues[i] >= threshold)
            {
                _candidateIds[kept] = _candidateIds[i];
                _candidateValues[kept] = _candidateValues[i];
                kept++;
            }
        }

        if (kept == 0)
        {
            // Only reachable through rounding; the most likely token always survives.
            _candidateIds[0] = _candidateIds[best];
            _candidateValues[0] = _candidateValues[best];
            kept = 1;
        }

        return kept;
    }

    private float Max(int count)
    {
        float max = 0f;
        for (int i = 0; i < count; i++)
        {
            max = MathF.Max(max, _candidateValues[i]);
        }

        return max;
    }
}
