namespace RawInfer.Models.Gguf;

/// <summary>A SentencePiece-style vocabulary as GGUF's tokenizer.ggml.* keys hold it.</summary>
/// <param name="Tokens">(vocab) pieces, spaces spelled U+2581.</param>
/// <param name="Scores">(vocab) merge scores.</param>
/// <param name="TokenTypes">(vocab) llama.cpp token types (1 normal, 2 unknown, 3 control, 6 byte).</param>
internal sealed record GgufLlamaVocabulary(string[] Tokens, float[] Scores, int[] TokenTypes)
{
    public const int TypeNormal = 1;
    public const int TypeUnknown = 2;
    public const int TypeControl = 3;
    public const int TypeByte = 6;
}

/// <summary>The weight matrices of a Llama model in the order the writer emits them.</summary>
internal enum LlamaTensor
{
    TokenEmbedding,
    AttentionNorm,
    Wq,
    Wk,
    Wv,
    Wo,
    FfnNorm,
    W1,
    W2,
    W3,
    FinalNorm,
    Classifier,
}

/// <summary>
/// Writes a llama-architecture GGUF file (the metadata llama.cpp needs to run it, and the tensors under
/// llama.cpp's names) from any row source. Matrices are stored in the requested type, norms stay F32 (as
/// llama.cpp's converters keep them); a Q8_0 request falls back to F16 for matrices whose row length is not a
/// multiple of 32 (llama.cpp's quantizer also falls back for such rows).
/// </summary>
internal static class GgufLlamaWriter
{
    /// <summary>Fills <c>dst</c> with row <c>row</c> of a tensor of layer <c>layer</c> (0 for global tensors).</summary>
    public delegate void RowSource(LlamaTensor tensor, int layer, int row, Span<float> dst);

    public static void Write(string path, ModelConfig c, TensorType dtype, string name, GgufLlamaVocabulary vocab, RowSource source)
    {
        if (vocab.Tokens.Length != c.VocabSize)
        {
            throw new ArgumentException($"vocabulary has {vocab.Tokens.Length} tokens, the model {c.VocabSize}", nameof(vocab));
        }

        var plan = Plan(c, dtype);
        using var writer = GgufWriter.Create(path);
        writer.AddMetadata("general.architecture", "llama");
        writer.AddMetadata("general.name", name);
        writer.AddMetadata("general.file_type", FileType(dtype));
        writer.AddMetadata("llama.vocab_size", (uint)c.VocabSize);
        writer.AddMetadata("llama.context_length", (uint)c.MaxSeqLen);
        writer.AddMetadata("llama.embedding_length", (uint)c.Dim);
        writer.AddMetadata("llama.feed_forward_length", (uint)c.HiddenDim);
        writer.AddMetadata("llama.block_count", (uint)c.NumLayers);
        writer.AddMetadata("llama.attention.head_count", (uint)c.NumHeads);
        writer.AddMetadata("llama.attention.head_count_kv", (uint)c.NumKvHeads);
        writer.AddMetadata("llama.rope.dimension_count", (uint)c.HeadDim);
        writer.AddMetadata("llama.rope.freq_base", c.RopeTheta);
        writer.AddMetadata("llama.attention.layer_norm_rms_epsilon", c.NormEpsilon);
        writer.AddMetadata("tokenizer.ggml.model", "llama");
        writer.AddMetadata("tokenizer.ggml.pre", "default");
        writer.AddMetadata("tokenizer.ggml.tokens", vocab.Tokens);
        writer.AddMetadata("tokenizer.ggml.scores", vocab.Scores);
        writer.AddMetadata("tokenizer.ggml.token_type", vocab.TokenTypes);
        writer.AddMetadata("tokenizer.ggml.unknown_token_id", 0u);
        writer.AddMetadata("tokenizer.ggml.bos_token_id", 1u);
        writer.AddMetadata("tokenizer.ggml.eos_token_id", 2u);
        writer.AddMetadata("tokenizer.ggml.add_bos_token", true);
        writer.AddMetadata("tokenizer.ggml.add_eos_token", false);
        foreach (var t in plan)
        {
            writer.AddTensor(t.Name, t.Type, t.Cols, t.Rows);
        }

        writer.WriteHeader();
        int maxCols = Math.Max(c.Dim, c.HiddenDim);
        var row = new float[maxCols];
        var encoded = new byte[TensorEncoding.RowBytes(TensorType.F32, maxCols)];
        foreach (var t in plan)
        {
            int bytes = TensorEncoding.RowBytes(t.Type, t.Cols);
            for (int r = 0; r < t.Rows; r++)
            {
                var dst = row.AsSpan(0, t.Cols);
                source(t.Tensor, t.Layer, r, dst);
                TensorEncoding.EncodeRow(dst, t.Type, encoded);
                writer.WriteTensorData(encoded.AsSpan(0, bytes));
            }
        }

        writer.Finish();
    }

    private static List<(string Name, LlamaTensor Tensor, int Layer, int Rows, int Cols, TensorType Type)> Plan(ModelConfig c, TensorType dtype)
    {
        var plan = new List<(string, LlamaTensor, int, int, int, TensorType)>();
        void Add(string name, LlamaTensor tensor, int layer, int rows, int cols)
        {
            var type = rows == 1 ? TensorType.F32
                : dtype == TensorType.Q8_0 && cols % GgmlTypes.Q8_0BlockElements != 0 ? TensorType.F16
                : dtype;
            plan.Add((name, tensor, layer, rows, cols, type));
        }

        Add("token_embd.weight", LlamaTensor.TokenEmbedding, 0, c.VocabSize, c.Dim);
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"blk.{l}.";
            Add(p + "attn_norm.weight", LlamaTensor.AttentionNorm, l, 1, c.Dim);
            Add(p + "attn_q.weight", LlamaTensor.Wq, l, c.NumHeads * c.HeadDim, c.Dim);
            Add(p + "attn_k.weight", LlamaTensor.Wk, l, c.KvDim, c.Dim);
            Add(p + "attn_v.weight", LlamaTensor.Wv, l, c.KvDim, c.Dim);
            Add(p + "attn_output.weight", LlamaTensor.Wo, l, c.Dim, c.NumHeads * c.HeadDim);
            Add(p + "ffn_norm.weight", LlamaTensor.FfnNorm, l, 1, c.Dim);
            Add(p + "ffn_gate.weight", LlamaTensor.W1, l, c.HiddenDim, c.Dim);
            Add(p + "ffn_down.weight", LlamaTensor.W2, l, c.Dim, c.HiddenDim);
            Add(p + "ffn_up.weight", LlamaTensor.W3, l, c.HiddenDim, c.Dim);
        }

        Add("output_norm.weight", LlamaTensor.FinalNorm, 0, 1, c.Dim);
        if (!c.SharedClassifier)
        {
            Add("output.weight", LlamaTensor.Classifier, 0, c.VocabSize, c.Dim);
        }

        return plan;
    }

    // llama.cpp's llama_ftype: ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7, MOSTLY_BF16 = 32.
    private static uint FileType(TensorType dtype) => dtype switch
    {
        TensorType.F32 => 0,
        TensorType.F16 => 1,
        TensorType.Q8_0 => 7,
        TensorType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
