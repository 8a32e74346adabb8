using System.Diagnostics;
using System.Security.Cryptography;

namespace RawInfer.Engine.Sampling;

/// <summary>
/// Chooses the next token of one sequence. Buffers are sized to the vocabulary once; <see cref="Sample"/> does not
/// allocate. Not thread-safe: one sampler per sequence (it owns that sequence's random stream).
/// </summary>
public sealed partial class Sampler
{
    private readonly SamplingParams _params;
    private readonly int _vocabSize;
    private readonly int[] _candidateIds;     // (vocab) token ids still in the running
    private readonly float[] _candidateValues; // (vocab) their logits, then probabilities
    private readonly int[] _tokenCounts;      // (vocab) scratch for penalties; all zero between calls
    private Xoshiro256StarStar _rng;

    /// <summary>Creates a sampler for a vocabulary of <paramref name="vocabSize"/> tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A parameter is out of range.</exception>
    public Sampler(SamplingParams parameters, int vocabSize)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        parameters.Validate();
        _params = parameters;
        _vocabSize = vocabSize;
        _candidateIds = new int[vocabSize];
        _candidateValues = new float[vocabSize];
        _tokenCounts = new int[vocabSize];
        Seed = parameters.Seed ?? BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(sizeof(ulong)));
        _rng = new Xoshiro256StarStar(Seed);
    }

    /// <summary>The seed in use (the given one, or the one drawn when none was given), for reproducing a run.</summary>
    public ulong Seed { get; }

    public SamplingParams Parameters => _params;

    /// <summary>
    /// Picks the next token. <paramref name="logits"/> (vocab) is modified in place (penalties).
    /// <paramref name="history"/> is the sequence so far, prompt first; tokens from <paramref name="promptLength"/>
    /// on count as generated for the presence and frequency penalties (0: all of them).
    /// </summary>
    public int Sample(Span<float> logits, ReadOnlySpan<int> history, int promptLength = 0)
    {
        if (logits.Length != _vocabSize)
        {
            ThrowLogitsLength(logits.Length, _vocabSize);
        }

        ApplyPenalties(logits, history, Math.Clamp(promptLength, 0, history.Length));
        if (_params.IsGreedy)
        {
            return ArgMax(logits);
        }

        int count = BuildDistribution(logits);
        return Draw(count);
    }

    /// <summary>Index of the largest logit; the lowest index on ties (NaN never wins).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        Debug.Assert(!logits.IsEmpty);
        int best = 0;
        float bestValue = logits[0];
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > bestValue)
            {
                bestValue = logits[i];
                best = i;
            }
        }

        return best;
    }

    /// <summary>Candidates left by the last <see cref="BuildDistribution"/> (ids and probabilities, not renormalised).</summary>
    internal ReadOnlySpan<int> CandidateIds(int count) => _candidateIds.AsSpan(0, count);

    internal ReadOnlySpan<float> CandidateProbabilities(int count) => _candidateValues.AsSpan(0, count);

    /// <summary>Draws one candidate in proportion to its probability (the kept set need not sum to 1).</summary>
    private int Draw(int count)
    {
        Debug.Assert(count > 0);
        double total = 0;
        for (int i = 0; i < count; i++)
        {
            total += _candidateValues[i];
        }

        double target = _rng.NextDouble() * total;
        double cumulative = 0;
        for (int i = 0; i < count; i++)
        {
            cumulative += _candidateValues[i];
            if (target < cumulative)
            {
                return _candidateIds[i];
            }
        }

        return _candidateIds[count - 1]; // rounding left target at the very top
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void ThrowLogitsLength(int actual, int expected) =>
        throw new ArgumentException($"logits has {actual} entries; the sampler was built for a vocabulary of {expected}", "logits");
}
