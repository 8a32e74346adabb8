namespace RawInfer.Tokenizers;

/// <summary>
/// How a SentencePiece-style (score-merged BPE with byte fallback) vocabulary is to be read. The defaults are
/// llama2.c's: id 0 unknown, 1 BOS, 2 EOS, byte tokens &lt;0x00&gt;..&lt;0xFF&gt; at ids 3..258, a dummy space
/// prefix, and pieces that spell a space as a plain ' '.
/// </summary>
public sealed record LlamaTokenizerOptions
{
    /// <summary>llama2.c's layout (tok512.bin, tokenizer.bin).</summary>
    public static LlamaTokenizerOptions Llama2c { get; } = new();

    /// <summary>Beginning-of-sequence id, or -1 when the vocabulary has none. Decodes to nothing.</summary>
    public int BosId { get; init; } = 1;

    /// <summary>End-of-sequence id, or -1 when the vocabulary has none. Decodes to nothing.</summary>
    public int EosId { get; init; } = 2;

    /// <summary>The unknown-piece id, or -1. Never produced by merging.</summary>
    public int UnknownId { get; init; }

    /// <summary>
    /// Id of the piece &lt;0x00&gt;; the 256 byte tokens follow it in order. -1 when the vocabulary has no byte
    /// fallback (characters missing from it are then encoded as <see cref="UnknownId"/>).
    /// </summary>
    public int ByteFallbackBaseId { get; init; } = 3;

    /// <summary>Prepend one space to non-empty text before encoding (SentencePiece's add_dummy_prefix).</summary>
    public bool AddDummyPrefix { get; init; } = true;

    /// <summary>
    /// The character the vocabulary's pieces use for a space: ' ' in llama2.c files, U+2581 '▁' in SentencePiece
    /// vocabularies (GGUF). Input spaces are mapped to it before encoding and back to ' ' when decoding.
    /// </summary>
    public char SpaceSymbol { get; init; } = ' ';

    /// <summary>
    /// Further ids that are control tokens (decode to nothing, never produced by merging), e.g. from a GGUF
    /// token-type array. BOS and EOS are control tokens whether listed or not.
    /// </summary>
    public IReadOnlyCollection<int>? ControlIds { get; init; }
}
