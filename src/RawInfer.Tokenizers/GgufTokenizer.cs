using System.Text;

namespace RawInfer.Tokenizers;

/// <summary>
/// Builds the tokenizer a GGUF file describes in its tokenizer.ggml.* metadata: "llama" (SentencePiece-style,
/// scores and byte fallback, spaces spelled U+2581) becomes a <see cref="LlamaTokenizer"/>, "gpt2" (byte-level
/// BPE with merges and a named pre-tokenizer) a <see cref="BpeTokenizer"/>. The metadata is passed as the
/// plain key → value dictionary GgufFile.Metadata exposes (CLR primitives, strings and typed arrays), so this
/// project needs no reference to the model reader.
/// </summary>
public static class GgufTokenizer
{
    // llama.cpp's token types.
    private const int TypeUnknown = 2;
    private const int TypeControl = 3;
    private const int TypeUnused = 5;
    private const int TypeByte = 6;

    /// <summary>Creates the tokenizer for <paramref name="metadata"/>.</summary>
    /// <exception cref="TokenizerFormatException">Missing or malformed keys, or a tokenizer model/pre-tokenizer RawInfer does not know (named).</exception>
    public static ITokenizer FromMetadata(IReadOnlyDictionary<string, object> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        string model = Get<string>(metadata, "tokenizer.ggml.model");
        string[] tokens = Get<string[]>(metadata, "tokenizer.ggml.tokens");
        int[]? types = metadata.ContainsKey("tokenizer.ggml.token_type") ? IntArray(metadata, "tokenizer.ggml.token_type") : null;
        if (types is not null && types.Length != tokens.Length)
        {
            throw new TokenizerFormatException($"tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");
        }

        int bos = OptionalId(metadata, "tokenizer.ggml.bos_token_id");
        int eos = OptionalId(metadata, "tokenizer.ggml.eos_token_id");
        return model switch
        {
            "llama" => CreateLlama(metadata, tokens, types, bos, eos),
            "gpt2" => new BpeTokenizer(
                tokens, types, Get<string[]>(metadata, "tokenizer.ggml.merges"),
                metadata.TryGetValue("tokenizer.ggml.pre", out object? pre) && pre is string name ? name : "default",
                bos, eos),
            _ => throw new TokenizerFormatException($"tokenizer.ggml.model '{model}' is not supported (RawInfer reads 'llama' and 'gpt2')"),
        };
    }

    /// <summary>
    /// Whether prompts get BOS: tokenizer.ggml.add_bos_token when present, else true for SentencePiece
    /// vocabularies and false for byte-level BPE (llama.cpp's defaults).
    /// </summary>
    public static bool AddBosByDefault(IReadOnlyDictionary<string, object> metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        return metadata.TryGetValue("tokenizer.ggml.add_bos_token", out object? v) && v is bool b
            ? b
            : metadata.TryGetValue("tokenizer.ggml.model", out object? m) && m is "llama";
    }

    private static LlamaTokenizer CreateLlama(IReadOnlyDictionary<string, object> metadata, string[] tokens, int[]? types, int bos, int eos)
    {
        float[] scores = Get<float[]>(metadata, "tokenizer.ggml.scores");
        int byteBase = Array.IndexOf(tokens, "<0x00>");
        if (byteBase >= 0 && types is not null && types[byteBase] != TypeByte)
        {
            byteBase = -1;
        }

        var control = new List<int>();
        int unknown = metadata.ContainsKey("tokenizer.ggml.unknown_token_id") ? OptionalId(metadata, "tokenizer.ggml.unknown_token_id") : -1;
        for (int id = 0; types is not null && id < types.Length; id++)
        {
            if (types[id] is TypeControl or TypeUnused)
            {
                control.Add(id);
            }
            else if (types[id] == TypeUnknown && unknown < 0)
            {
                unknown = id;
            }
        }

        var options = new LlamaTokenizerOptions
        {
            BosId = bos,
            EosId = eos,
            UnknownId = unknown,
            ByteFallbackBaseId = byteBase,
            AddDummyPrefix = !metadata.TryGetValue("tokenizer.ggml.add_space_prefix", out object? prefix) || prefix is not false,
            SpaceSymbol = '\u2581',
            ControlIds = control,
        };
        var pieces = new byte[tokens.Length][];
        for (int i = 0; i < tokens.Length; i++)
        {
            pieces[i] = Encoding.UTF8.GetBytes(tokens[i]);
        }

        return new LlamaTokenizer(pieces, scores, options);
    }

    private static T Get<T>(IReadOnlyDictionary<string, object> metadata, string key) =>
        !metadata.TryGetValue(key, out object? value)
            ? throw new TokenizerFormatException($"metadata key {key} is missing")
            : value is T typed
                ? typed
                : throw new TokenizerFormatException($"metadata key {key} is a {value.GetType().Name}, expected {typeof(T).Name}");

    private static int OptionalId(IReadOnlyDictionary<string, object> metadata, string key)
    {
        if (!metadata.TryGetValue(key, out object? value))
        {
            return -1;
        }

        long id = value switch
        {
            uint v => v,
            int v => v,
            ulong v => v > int.MaxValue ? -2 : (long)v,
            long v => v,
            ushort v => v,
            short v => v,
            byte v => v,
            sbyte v => v,
            _ => throw new TokenizerFormatException($"metadata key {key} is a {value.GetType().Name}, expected an integer"),
        };

        // llama.cpp writes LLAMA_TOKEN_NULL (-1, or 0xFFFFFFFF as UINT32) for "none".
        return id is -1 or uint.MaxValue ? -1
            : id is >= 0 and <= int.MaxValue ? (int)id
            : throw new TokenizerFormatException($"metadata key {key} = {id} is not a token id");
    }

    private static int[] IntArray(IReadOnlyDictionary<string, object> metadata, string key) => metadata[key] switch
    {
        int[] a => a,
        uint[] a => Array.ConvertAll(a, v => unchecked((int)v)),
        var other => throw new TokenizerFormatException($"metadata key {key} is a {other.GetType().Name}, expected INT32 array"),
    };
}
