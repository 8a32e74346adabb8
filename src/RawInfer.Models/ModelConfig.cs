namespace RawInfer.Models;

/// <summary>
/// The shape of a Llama-architecture decoder. Every backend and the KV-cache allocator size themselves from this.
/// </summary>
/// <param name="Dim">Model (residual stream) width.</param>
/// <param name="HiddenDim">SwiGLU FFN inner width.</param>
/// <param name="NumLayers">Transformer blocks.</param>
/// <param name="NumHeads">Query heads.</param>
/// <param name="NumKvHeads">Key/value heads (grouped-query attention when fewer than query heads).</param>
/// <param name="VocabSize">Vocabulary size (always positive here; the checkpoint's sign is decoded into <paramref name="SharedClassifier"/>).</param>
/// <param name="MaxSeqLen">Longest sequence the model was trained for (positions 0 .. MaxSeqLen-1).</param>
/// <param name="SharedClassifier">True when the classifier reuses the token-embedding matrix.</param>
/// <param name="RopeTheta">RoPE base frequency (10,000 for Llama 2 and llama2.c).</param>
/// <param name="NormEpsilon">RMSNorm epsilon (llama2.c uses 1e-5).</param>
public sealed record ModelConfig(
    int Dim,
    int HiddenDim,
    int NumLayers,
    int NumHeads,
    int NumKvHeads,
    int VocabSize,
    int MaxSeqLen,
    bool SharedClassifier,
    float RopeTheta = 10000f,
    float NormEpsilon = 1e-5f)
{
    /// <summary>Width of one attention head.</summary>
    public int HeadDim => Dim / NumHeads;

    /// <summary>Width of the K (or V) projection: kvHeads * headDim.</summary>
    public int KvDim => NumKvHeads * HeadDim;

    /// <summary>Query heads that share one KV head.</summary>
    public int QueriesPerKvHead => NumHeads / NumKvHeads;

    /// <summary>Bytes of K and V one token occupies across all layers at the given element size.</summary>
    public long KvBytesPerToken(int bytesPerElement = sizeof(float)) => 2L * NumLayers * KvDim * bytesPerElement;

    /// <summary>Parameter count of all weights (classifier counted once when shared).</summary>
    public long ParameterCount
    {
        get
        {
            long perLayer = 2L * Dim                          // attention and FFN rmsnorm
                + (long)Dim * Dim                            // wq
                + 2L * Dim * KvDim                           // wk, wv
                + (long)Dim * Dim                            // wo
                + 3L * Dim * HiddenDim;                      // w1, w2, w3
            long total = (long)VocabSize * Dim + NumLayers * perLayer + Dim;
            if (!SharedClassifier)
            {
                total += (long)VocabSize * Dim;
            }

            return total;
        }
    }
}
