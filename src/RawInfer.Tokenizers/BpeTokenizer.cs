using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Text;

namespace RawInfer.Tokenizers;

/// <summary>
/// Byte-level BPE (GPT-2 style, tokenizer.ggml.model = gpt2): text is split into words by the vocabulary's
/// pre-tokenizer, each word's UTF-8 bytes are spelled with GPT-2's byte characters, then adjacent symbols are
/// merged by merge rank (lowest first, leftmost on ties) until no listed merge applies. Special tokens are
/// not recognised inside text (like llama.cpp with parse_special off); they are added as ids.
/// </summary>
public sealed partial class BpeTokenizer : ITokenizer
{
    /// <summary>llama.cpp's token type of control tokens (decode to nothing).</summary>
    public const int TokenTypeControl = 3;

    private readonly string[] _tokens;                            // (vocab) pieces in GPT-2 byte characters
    private readonly byte[][] _outputBytes;                       // (vocab) bytes each token decodes to
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<(string Left, string Right), int> _mergeRanks;
    private readonly BpePreTokenizer _preTokenizer;

    /// <summary>Builds the tokenizer from GGUF vocabulary arrays.</summary>
    /// <param name="tokens">(vocab) pieces.</param>
    /// <param name="tokenTypes">(vocab) llama.cpp token types, or null (all normal).</param>
    /// <param name="merges">Merges, highest priority first, each "left right".</param>
    /// <param name="preTokenizer">tokenizer.ggml.pre, e.g. "gpt-2", "llama-bpe", "smollm".</param>
    /// <param name="bosId">BOS id or -1.</param>
    /// <param name="eosId">EOS id or -1.</param>
    /// <exception cref="TokenizerFormatException">Unknown pre-tokenizer, mismatched arrays, malformed merge, bad id.</exception>
    public BpeTokenizer(string[] tokens, int[]? tokenTypes, string[] merges, string preTokenizer, int bosId, int eosId)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        ArgumentNullException.ThrowIfNull(preTokenizer);
        _preTokenizer = BpePreTokenizer.ForName(preTokenizer) ?? throw new TokenizerFormatException(
            $"pre-tokenizer '{preTokenizer}' is not supported (known: {BpePreTokenizer.KnownNames})");
        if (tokens.Length == 0 || (tokenTypes is not null && tokenTypes.Length != tokens.Length))
        {
            throw new TokenizerFormatException($"{tokens.Length} tokens but {tokenTypes?.Length} token types");
        }

        foreach (var (name, id) in new[] { ("bos", bosId), ("eos", eosId) })
        {
            if (id < -1 || id >= tokens.Length)
            {
                throw new TokenizerFormatException($"{name} id {id} is outside -1..{tokens.Length - 1}");
            }
        }

        _tokens = tokens;
        BosId = bosId;
        EosId = eosId;
        _ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        _outputBytes = new byte[tokens.Length][];
        for (int id = 0; id < tokens.Length; id++)
        {
            _ids.TryAdd(tokens[id], id);
            bool control = tokenTypes?[id] == TokenTypeControl || id == bosId || id == eosId;
            _outputBytes[id] = control ? [] : PieceBytes(tokens[id]);
        }

        _mergeRanks = new Dictionary<(string, string), int>(merges.Length);
        for (int rank = 0; rank < merges.Length; rank++)
        {
            string merge = merges[rank];
            int space = merge.Length > 1 ? merge.IndexOf(' ', 1) : -1;
            if (space < 0 || space == merge.Length - 1)
            {
                throw new TokenizerFormatException($"merge {rank} '{merge}' is not two pieces separated by a space") { TokenIndex = rank };
            }

            _mergeRanks.TryAdd((merge[..space], merge[(space + 1)..]), rank);
        }
    }

    public int VocabSize => _tokens.Length;

    public int BosId { get; }

    public int EosId { get; }

    /// <summary>The pre-tokenizer name the vocabulary asked for.</summary>
    public string PreTokenizer => _preTokenizer.Name;

    public ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId)
    {
        if ((uint)tokenId >= (uint)_outputBytes.Length)
        {
            ThrowTokenOutOfRange(tokenId, _outputBytes.Length);
        }

        return _outputBytes[tokenId];
    }

    /// <summary>Bytes a piece stands for: GPT-2 byte characters map back to bytes, anything else is UTF-8.</summary>
    private static byte[] PieceBytes(string piece)
    {
        var bytes = new List<byte>(piece.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in piece.EnumerateRunes())
        {
            if (rune.IsBmp && BpeByteMapping.TryToByte((char)rune.Value, out byte b))
            {
                bytes.Add(b);
            }
            else
            {
                bytes.AddRange(utf8[..rune.EncodeToUtf8(utf8)]);
            }
        }

        return [.. bytes];
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTokenOutOfRange(int tokenId, int vocab) =>
        throw new ArgumentOutOfRangeException(nameof(tokenId), tokenId, $"token id outside 0..{vocab - 1}");

    private static string ToByteCharacters(string word)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(word);
        return string.Create(utf8.Length, utf8, static (chars, bytes) =>
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                chars[i] = BpeByteMapping.ToChar(bytes[i]);
            }
        });
    }
}
