using System.Globalization;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tokenizers;

namespace RawInfer.Cli;

/// <summary>Opening model files by format, and the figures <c>model info</c> reports.</summary>
internal static class ModelFiles
{
    /// <summary>Opens a model, choosing the reader by the file's content (GGUF magic, else a llama2.c checkpoint).</summary>
    /// <exception cref="CliException">The file does not exist.</exception>
    public static LoadedModel Load(string path) =>
        IsGguf(path) ? GgufLlamaLoader.Load(path) : Llama2cCheckpoint.Load(path);

    /// <summary>True when the file starts with the GGUF magic.</summary>
    /// <exception cref="CliException">The file does not exist.</exception>
    public static bool IsGguf(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"model file not found: {path}");
        }

        Span<byte> magic = stackalloc byte[4];
        using (var stream = File.OpenRead(path))
        {
            stream.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
        }

        return magic.SequenceEqual("GGUF"u8);
    }

    /// <summary>
    /// The tokenizer for a model: an explicit llama2.c tokenizer file wins; a GGUF model otherwise carries its own
    /// vocabulary in its metadata; a llama2.c checkpoint needs a tokenizer file found by <see cref="ModelLocator"/>.
    /// </summary>
    public static ITokenizer LoadTokenizer(string? explicitTokenizer, string modelPath, ModelConfig config, CliContext context)
    {
        if (explicitTokenizer is null && IsGguf(modelPath))
        {
            using var file = GgufFile.Open(modelPath);
            return GgufTokenizer.FromMetadata(file.Metadata);
        }

        var tokenizerPath = ModelLocator.ResolveTokenizer(explicitTokenizer, modelPath, config.VocabSize, context);
        return LlamaTokenizer.Load(tokenizerPath, config.VocabSize);
    }

    /// <summary>The shape in <see cref="ModelShapes.Parse"/> syntax, so it can be fed back to <c>model create</c>.</summary>
    public static string ShapeText(ModelConfig c) => string.Create(
        CultureInfo.InvariantCulture,
        $"dim={c.Dim},hidden={c.HiddenDim},layers={c.NumLayers},heads={c.NumHeads},kv_heads={c.NumKvHeads},vocab={c.VocabSize},seq={c.MaxSeqLen}{(c.SharedClassifier ? "" : ",shared=false")}");

    /// <summary>Bytes a tensor occupies in the file.</summary>
    public static long TensorBytes(in WeightTensor t) => t.Type switch
    {
        TensorType.F32 => t.ElementCount * 4,
        TensorType.F16 or TensorType.BF16 => t.ElementCount * 2,
        TensorType.Q8_0 => t.ElementCount / 32 * 34, // 32 int8 values and one f16 scale per block
        _ => throw new CliException($"unknown tensor type {t.Type}"),
    };

    /// <summary>
    /// Weight bytes one decoded token reads: every layer matrix and norm, the final norm, the whole classifier and a
    /// single embedding row (the embedding table is indexed, not multiplied).
    /// </summary>
    public static long WeightBytesPerToken(LlamaWeights w)
    {
        long total = 0;
        foreach (var layer in w.Layers)
        {
            total += TensorBytes(layer.AttentionNorm) + TensorBytes(layer.Wq) + TensorBytes(layer.Wk)
                + TensorBytes(layer.Wv) + TensorBytes(layer.Wo) + TensorBytes(layer.FfnNorm)
                + TensorBytes(layer.W1) + TensorBytes(layer.W2) + TensorBytes(layer.W3);
        }

        var embedding = w.TokenEmbedding;
        return total + TensorBytes(w.FinalNorm) + TensorBytes(w.Classifier) + (TensorBytes(embedding) / embedding.Rows);
    }

    /// <summary>Bytes of all distinct weight tensors (a shared classifier counted once).</summary>
    public static long WeightBytes(LlamaWeights w, ModelConfig config)
    {
        long total = TensorBytes(w.TokenEmbedding) + TensorBytes(w.FinalNorm);
        if (!config.SharedClassifier)
        {
            total += TensorBytes(w.Classifier);
        }

        foreach (var layer in w.Layers)
        {
            total += TensorBytes(layer.AttentionNorm) + TensorBytes(layer.Wq) + TensorBytes(layer.Wk)
                + TensorBytes(layer.Wv) + TensorBytes(layer.Wo) + TensorBytes(layer.FfnNorm)
                + TensorBytes(layer.W1) + TensorBytes(layer.W2) + TensorBytes(layer.W3);
        }

        return total;
    }
}
