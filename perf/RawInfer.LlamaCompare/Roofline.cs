using RawInfer.Models;

namespace RawInfer.LlamaCompare;

/// <summary>
/// The work each test does, counted the same way for both engines, so a rate can be put against the machine's
/// limit. Decode is bandwidth-bound (every weight is read once per token); prefill and batched decode are
/// FMA-bound (one multiply-add, 2 FLOPs, per weight per row, plus attention).
/// </summary>
internal static class Roofline
{
    /// <summary>
    /// Weight bytes one decoded token reads: every layer matrix and norm, the final norm, the whole classifier and a
    /// single embedding row (the embedding table is indexed, not multiplied).
    /// </summary>
    public static long WeightBytesPerToken(LlamaWeights w)
    {
        ArgumentNullException.ThrowIfNull(w);
        long total = 0;
        foreach (var layer in w.Layers)
        {
            total += Bytes(layer.AttentionNorm) + Bytes(layer.Wq) + Bytes(layer.Wk) + Bytes(layer.Wv) + Bytes(layer.Wo)
                + Bytes(layer.FfnNorm) + Bytes(layer.W1) + Bytes(layer.W2) + Bytes(layer.W3);
        }

        var embedding = w.TokenEmbedding;
        return total + Bytes(w.FinalNorm) + Bytes(w.Classifier) + (Bytes(embedding) / embedding.Rows);
    }

    /// <summary>
    /// FLOPs of one row through the layer matrices (2 per weight): wq, wk, wv, wo, w1, w2, w3 of every layer.
    /// </summary>
    public static double LayerMatrixFlopsPerRow(ModelConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        double perLayer = (2.0 * c.Dim * c.Dim) + (2.0 * c.Dim * c.KvDim) + (3.0 * c.Dim * c.HiddenDim);
        return 2 * perLayer * c.NumLayers;
    }

    /// <summary>FLOPs of one row's logits (2 per classifier weight).</summary>
    public static double ClassifierFlopsPerRow(ModelConfig c) => 2.0 * c.VocabSize * c.Dim;

    /// <summary>
    /// Attention FLOPs of one query row that sees <paramref name="contextTokens"/> keys: q·k and the weighted sum of
    /// v, 2 FLOPs per element each, over every head of every layer (softmax not counted).
    /// </summary>
    public static double AttentionFlopsPerRow(ModelConfig c, int contextTokens) =>
        4.0 * c.NumLayers * c.NumHeads * c.HeadDim * contextTokens;

    /// <summary>FLOPs of prefilling <paramref name="tokens"/> tokens into an empty cache, logits for the last row only.</summary>
    public static double PrefillFlops(ModelConfig c, int tokens)
    {
        double attention = 0;
        for (var i = 0; i < tokens; i++)
        {
            attention += AttentionFlopsPerRow(c, i + 1); // causal: row i sees keys 0..i
        }

        return (tokens * LayerMatrixFlopsPerRow(c)) + attention + ClassifierFlopsPerRow(c);
    }

    /// <summary>
    /// FLOPs of <paramref name="steps"/> decode steps of <paramref name="sequences"/> sequences after prompts of
    /// <paramref name="promptTokens"/>, logits for every row.
    /// </summary>
    public static double BatchedDecodeFlops(ModelConfig c, int sequences, int promptTokens, int steps)
    {
        double total = 0;
        for (var t = 0; t < steps; t++)
        {
            total += sequences * (LayerMatrixFlopsPerRow(c) + ClassifierFlopsPerRow(c) + AttentionFlopsPerRow(c, promptTokens + t + 1));
        }

        return total;
    }

    private static long Bytes(in WeightTensor t) => t.Type switch
    {
        TensorType.F32 => t.ElementCount * 4,
        TensorType.F16 or TensorType.BF16 => t.ElementCount * 2,
        TensorType.Q8_0 => t.ElementCount / 32 * 34, // 32 int8 values and one f16 scale per block
        _ => throw new NotSupportedException($"no byte count for tensor type {t.Type}"),
    };
}
