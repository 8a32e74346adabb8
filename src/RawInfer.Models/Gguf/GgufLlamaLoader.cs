namespace RawInfer.Models.Gguf;

/// <summary>
/// Opens Llama-architecture GGUF files (general.architecture = llama: Llama 2/3, TinyLlama, SmolLM-style) as a
/// <see cref="LoadedModel"/> whose weights point into the mapping, in their stored type (F32, F16, BF16, Q8_0).
/// </summary>
/// <remarks>
/// RoPE layout. llama.cpp runs the llama architecture with its "normal" RoPE, which rotates consecutive pairs
/// (2i, 2i+1) of each head: the layout of Meta's original checkpoints and of llama2.c (export.py reverses the
/// Hugging Face permutation with permute_reverse before writing a .bin). llama.cpp's Hugging Face converter
/// applies the very same reversal (LlamaModel.permute on q_proj/k_proj), and its llama2.c converter
/// (convert-llama2c-to-ggml) copies wq/wk unchanged. So GGUF llama Q/K rows and llama2.c Q/K rows share one
/// layout and the loader hands them over as stored; the "permutation llama.cpp expects" when converting a
/// llama2.c checkpoint is the identity. Only a model taken directly from Hugging Face safetensors would need
/// the permutation, and that is the converters' business, not this loader's.
/// </remarks>
public static class GgufLlamaLoader
{
    /// <summary>Format name reported by <see cref="LoadedModel.Format"/>.</summary>
    public const string FormatName = "gguf";

    /// <summary>Maps the file at <paramref name="path"/> and returns the model (dispose it to unmap).</summary>
    /// <exception cref="ModelFormatException">Not GGUF, not llama, a missing or misshapen tensor, or an unsupported type (named).</exception>
    public static LoadedModel Load(string path)
    {
        var file = GgufFile.Open(path);
        try
        {
            return Load(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Builds the model from an opened file; the model takes ownership of <paramref name="file"/>.</summary>
    public static LoadedModel Load(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var config = ReadConfig(file);
        var weights = ReadWeights(file, config);
        return new LoadedModel(Path.GetFullPath(file.Source), FormatName, config, weights, file);
    }

    /// <summary>Reads and validates the model shape from the llama.* metadata and the embedding tensor.</summary>
    public static ModelConfig ReadConfig(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        string arch = file.GetString("general.architecture");
        if (arch != "llama")
        {
            throw Invalid(file, "general.architecture", $"architecture '{arch}' is not supported (RawInfer runs 'llama')");
        }

        int dim = ReadCount(file, "llama.embedding_length", ModelLimits.MaxDim);
        int hidden = ReadCount(file, "llama.feed_forward_length", ModelLimits.MaxHiddenDim);
        int layers = ReadCount(file, "llama.block_count", ModelLimits.MaxLayers);
        int heads = ReadCount(file, "llama.attention.head_count", dim);
        int kvHeads = file.ContainsKey("llama.attention.head_count_kv")
            ? ReadCount(file, "llama.attention.head_count_kv", heads)
            : heads;
        int seqLen = ReadCount(file, "llama.context_length", ModelLimits.MaxSeqLen);
        if (dim % heads != 0 || (dim / heads) % 2 != 0)
        {
            throw Invalid(file, "llama.attention.head_count", $"{heads} heads do not split embedding_length {dim} into even-sized heads");
        }

        if (heads % kvHeads != 0)
        {
            throw Invalid(file, "llama.attention.head_count_kv", $"{kvHeads} does not divide head_count {heads}");
        }

        int headDim = dim / heads;
        CheckOptional(file, "llama.rope.dimension_count", headDim, "partial rotary embeddings are not supported");
        CheckOptional(file, "llama.attention.key_length", headDim, "head size must be embedding_length / head_count");
        CheckOptional(file, "llama.attention.value_length", headDim, "head size must be embedding_length / head_count");
        if (file.GetUInt32("llama.expert_count", 0) > 0)
        {
            throw Invalid(file, "llama.expert_count", "mixture-of-experts llama models are not supported");
        }

        string? scaling = file.GetStringOrNull("llama.rope.scaling.type");
        if (scaling is not null and not "none")
        {
            throw Invalid(file, "llama.rope.scaling.type", $"RoPE scaling '{scaling}' is not supported");
        }

        if (file.FindTensor("rope_freqs.weight") is not null)
        {
            throw new ModelFormatException($"{file.Source}: tensor rope_freqs.weight (Llama 3.1 RoPE frequency scaling) is not supported")
            { Field = "rope_freqs.weight" };
        }

        var embedding = file.FindTensor("token_embd.weight")
            ?? throw new ModelFormatException($"{file.Source}: tensor token_embd.weight is missing") { Field = "token_embd.weight" };
        long vocab = embedding.Dimensions.Count > 1 ? embedding.Dimensions[1] : 0;
        if (vocab <= 0 || vocab > ModelLimits.MaxVocab)
        {
            throw new ModelFormatException($"{file.Source}: token_embd.weight has shape {embedding.ShapeText}; expected [{dim}, vocab]")
            { Field = "token_embd.weight", Offset = embedding.InfoOffset };
        }

        float theta = file.GetFloat32("llama.rope.freq_base", 10000f);
        float eps = file.GetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
        if (!(theta > 0) || float.IsInfinity(theta))
        {
            throw Invalid(file, "llama.rope.freq_base", $"{theta} is not a positive finite number");
        }

        if (!(eps > 0) || eps >= 1)
        {
            throw Invalid(file, "llama.attention.layer_norm_rms_epsilon", $"{eps} is outside (0, 1)");
        }

        bool shared = file.FindTensor("output.weight") is null;
        return new ModelConfig(dim, hidden, layers, heads, kvHeads, (int)vocab, seqLen, shared, theta, eps);
    }

    private static LlamaWeights ReadWeights(GgufFile file, ModelConfig c)
    {
        var layers = new LayerWeights[c.NumLayers];
        for (int l = 0; l < layers.Length; l++)
        {
            string p = $"blk.{l}.";
            layers[l] = new LayerWeights
            {
                AttentionNorm = Weight(file, p + "attn_norm.weight", 1, c.Dim),
                Wq = Weight(file, p + "attn_q.weight", c.NumHeads * c.HeadDim, c.Dim),
                Wk = Weight(file, p + "attn_k.weight", c.KvDim, c.Dim),
                Wv = Weight(file, p + "attn_v.weight", c.KvDim, c.Dim),
                Wo = Weight(file, p + "attn_output.weight", c.Dim, c.NumHeads * c.HeadDim),
                FfnNorm = Weight(file, p + "ffn_norm.weight", 1, c.Dim),
                W1 = Weight(file, p + "ffn_gate.weight", c.HiddenDim, c.Dim),
                W2 = Weight(file, p + "ffn_down.weight", c.Dim, c.HiddenDim),
                W3 = Weight(file, p + "ffn_up.weight", c.HiddenDim, c.Dim),
            };
        }

        var embedding = Weight(file, "token_embd.weight", c.VocabSize, c.Dim);
        return new LlamaWeights
        {
            TokenEmbedding = embedding,
            Layers = layers,
            FinalNorm = Weight(file, "output_norm.weight", 1, c.Dim),
            Classifier = c.SharedClassifier ? embedding : Weight(file, "output.weight", c.VocabSize, c.Dim),
        };
    }

    private static WeightTensor Weight(GgufFile file, string name, int rows, int cols)
    {
        var w = file.GetWeight(name);
        bool normIsF32 = rows != 1 || w.Type == TensorType.F32;
        if (w.Rows != rows || w.Cols != cols || !normIsF32)
        {
            var info = file.FindTensor(name)!;
            throw new ModelFormatException(
                $"{file.Source}: tensor {name} is {info.TypeName} {info.ShapeText}; expected [{cols}, {rows}]{(rows == 1 ? " F32" : "")}")
            { Field = name, Offset = info.InfoOffset };
        }

        return w;
    }

    private static int ReadCount(GgufFile file, string key, int max)
    {
        uint value = file.GetUInt32(key);
        return value >= 1 && value <= max ? (int)value : throw Invalid(file, key, $"{value} is outside 1..{max}");
    }

    private static void CheckOptional(GgufFile file, string key, int expected, string reason)
    {
        if (file.ContainsKey(key) && file.GetUInt32(key) != expected)
        {
            throw Invalid(file, key, $"{file.GetUInt32(key)} differs from {expected}: {reason}");
        }
    }

    private static ModelFormatException Invalid(GgufFile file, string key, string reason)
    {
        long? at = file.MetadataOffset(key);
        return new ModelFormatException($"{file.Source}: {key} at offset {at}: {reason}") { Field = key, Offset = at };
    }
}
