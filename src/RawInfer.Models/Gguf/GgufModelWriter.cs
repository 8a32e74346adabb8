namespace RawInfer.Models.Gguf;

/// <summary>Writes synthetic llama-architecture GGUF models (random weights) for tests, benchmarks and demos.</summary>
public static class GgufModelWriter
{
    /// <summary>
    /// Writes a model of shape <paramref name="config"/> with weights drawn from a seeded generator: matrices
    /// uniform in ±1/sqrt(cols) stored as <paramref name="dtype"/>, norms near 1 in F32. The vocabulary comes from
    /// a llama2.c tokenizer file when <paramref name="tokenizerPath"/> is given (its first VocabSize tokens),
    /// otherwise it is &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte tokens and filler pieces, so llama.cpp can load the
    /// file and any text encodes.
    /// </summary>
    /// <exception cref="ArgumentException">VocabSize below 259 without a tokenizer file.</exception>
    public static void WriteSynthetic(string path, ModelConfig config, int seed, TensorType dtype, string? tokenizerPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(config);
        var vocab = tokenizerPath is null
            ? SyntheticVocabulary(config.VocabSize)
            : Llama2cToGguf.ReadTokenizer(tokenizerPath, config.VocabSize);
        var random = new Random(seed);
        GgufLlamaWriter.Write(path, config, dtype, $"synthetic-{seed}", vocab, (tensor, _, _, dst) =>
        {
            bool isNorm = tensor is LlamaTensor.AttentionNorm or LlamaTensor.FfnNorm or LlamaTensor.FinalNorm;
            float scale = isNorm ? 0.1f : 1f / MathF.Sqrt(dst.Length);
            for (int i = 0; i < dst.Length; i++)
            {
                float u = (2 * random.NextSingle()) - 1;
                dst[i] = isNorm ? 1 + (scale * u) : scale * u;
            }
        });
    }

    /// <summary>
    /// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, &lt;0x00&gt;..&lt;0xFF&gt;, then printable ASCII characters and two-character
    /// pieces (with and without a leading U+2581) until <paramref name="vocabSize"/> pieces exist.
    /// </summary>
    internal static GgufLlamaVocabulary SyntheticVocabulary(int vocabSize)
    {
        const int fixedTokens = 3 + 256;
        if (vocabSize < fixedTokens)
        {
            throw new ArgumentException($"a synthetic vocabulary needs at least {fixedTokens} tokens (3 special + 256 bytes), not {vocabSize}", nameof(vocabSize));
        }

        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { GgufLlamaVocabulary.TypeUnknown, GgufLlamaVocabulary.TypeControl, GgufLlamaVocabulary.TypeControl };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(GgufLlamaVocabulary.TypeByte);
        }

        foreach (string piece in FillerPieces())
        {
            if (tokens.Count == vocabSize)
            {
                break;
            }

            tokens.Add(piece);
            types.Add(GgufLlamaVocabulary.TypeNormal);
        }

        var scores = new float[tokens.Count];
        for (int i = fixedTokens; i < scores.Length; i++)
        {
            // Longer (later) pieces score lower, as in a trained SentencePiece vocabulary; ties never occur.
            scores[i] = -(i - fixedTokens);
        }

        return new GgufLlamaVocabulary([.. tokens], scores, [.. types]);
    }

    private static IEnumerable<string> FillerPieces()
    {
        const string space = "\u2581";
        yield return space;
        for (char c = '!'; c <= '~'; c++)
        {
            yield return c.ToString();
        }

        for (char a = '!'; a <= '~'; a++)
        {
            yield return space + a;
        }

        for (int n = 2; ; n++)
        {
            foreach (string s in Words(n))
            {
                yield return s;
                yield return space + s;
            }
        }
    }

    private static IEnumerable<string> Words(int length)
    {
        if (length == 0)
        {
            yield return "";
            yield break;
        }

        foreach (string prefix in Words(length - 1))
        {
            for (char c = 'a'; c <= 'z'; c++)
            {
                yield return prefix + c;
            }
        }
    }
}
