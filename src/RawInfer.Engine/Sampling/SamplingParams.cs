namespace RawInfer.Engine.Sampling;

/// <summary>
/// How the next token is chosen from the logits. Every filter has an "off" value, which is its default.
/// Order of application: penalties, temperature, top-k, softmax, top-p, min-p, draw.
/// </summary>
public sealed record SamplingParams
{
    /// <summary>Greedy decoding: argmax, no randomness.</summary>
    public static SamplingParams Greedy { get; } = new();

    /// <summary>Softmax temperature; 0 means greedy (argmax, lowest id on ties).</summary>
    public float Temperature { get; init; }

    /// <summary>Keep only the K most likely tokens; 0 = off.</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest most-likely set whose probability reaches P (nucleus); 1 = off.</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Drop tokens less likely than MinP times the most likely one; 0 = off.</summary>
    public float MinP { get; init; }

    /// <summary>
    /// CTRL-style penalty on tokens seen in the last <see cref="RepetitionWindow"/> tokens (prompt included):
    /// positive logits are divided by it, negative ones multiplied, once per distinct token; 1 = off.
    /// </summary>
    public float RepetitionPenalty { get; init; } = 1f;

    /// <summary>How many of the most recent tokens <see cref="RepetitionPenalty"/> looks at.</summary>
    public int RepetitionWindow { get; init; } = 64;

    /// <summary>OpenAI-style: subtracted once from the logit of every token generated so far; 0 = off.</summary>
    public float PresencePenalty { get; init; }

    /// <summary>OpenAI-style: subtracted per occurrence from the logit of every token generated so far; 0 = off.</summary>
    public float FrequencyPenalty { get; init; }

    /// <summary>Seed of the sampler's generator; the same seed and inputs give the same tokens. Null = random.</summary>
    public ulong? Seed { get; init; }

    /// <summary>True when no randomness is involved.</summary>
    public bool IsGreedy => Temperature == 0f;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        Check(float.IsFinite(Temperature) && Temperature >= 0f, nameof(Temperature), Temperature, "a finite value >= 0");
        Check(TopK >= 0, nameof(TopK), TopK, ">= 0");
        Check(TopP > 0f && TopP <= 1f, nameof(TopP), TopP, "in (0, 1]");
        Check(MinP >= 0f && MinP <= 1f, nameof(MinP), MinP, "in [0, 1]");
        Check(float.IsFinite(RepetitionPenalty) && RepetitionPenalty > 0f, nameof(RepetitionPenalty), RepetitionPenalty, "a finite value > 0");
        Check(RepetitionWindow >= 0, nameof(RepetitionWindow), RepetitionWindow, ">= 0");
        Check(float.IsFinite(PresencePenalty), nameof(PresencePenalty), PresencePenalty, "finite");
        Check(float.IsFinite(FrequencyPenalty), nameof(FrequencyPenalty), FrequencyPenalty, "finite");
    }

    private static void Check(bool ok, string name, object value, string range)
    {
        if (!ok)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be {range}");
        }
    }
}
