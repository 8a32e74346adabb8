namespace RawInfer.Engine.Sampling;

public sealed partial class Sampler
{
    /// <summary>
    /// Repetition penalty (CTRL, as llama.cpp applies it) over the last window of <paramref name="history"/>, then
    /// presence and frequency penalties (OpenAI) over the generated part. O(history), no clearing of vocab-sized state:
    /// the counts are incremented, used, and decremented back to zero.
    /// </summary>
    private void ApplyPenalties(Span<float> logits, ReadOnlySpan<int> history, int promptLength)
    {
        float repetition = _params.RepetitionPenalty;
        if (repetition != 1f && _params.RepetitionWindow > 0)
        {
            var window = history[Math.Max(0, history.Length - _params.RepetitionWindow)..];
            foreach (int token in window)
            {
                if ((uint)token < (uint)_vocabSize && _tokenCounts[token]++ == 0)
                {
                    // First sight of this token in the window: penalise once, pushing it toward "less likely".
                    logits[token] = logits[token] > 0f ? logits[token] / repetition : logits[token] * repetition;
                }
            }

            ResetCounts(window);
        }

        float presence = _params.PresencePenalty;
        float frequency = _params.FrequencyPenalty;
        if (presence != 0f || frequency != 0f)
        {
            var generated = history[promptLength..];
            foreach (int token in generated)
            {
                if ((uint)token < (uint)_vocabSize)
                {
                    _tokenCounts[token]++;
                }
            }

            foreach (int token in generated)
            {
                // Each distinct token once: read its count, then zero it so duplicates are skipped.
                if ((uint)token < (uint)_vocabSize && _tokenCounts[token] is int count and > 0)
                {
                    logits[token] -= presence + (frequency * count);
                    _tokenCounts[token] = 0;
                }
            }
        }
    }

    private void ResetCounts(ReadOnlySpan<int> tokens)
    {
        foreach (int token in tokens)
        {
            if ((uint)token < (uint)_vocabSize)
            {
                _tokenCounts[token] = 0;
            }
        }
    }
}
