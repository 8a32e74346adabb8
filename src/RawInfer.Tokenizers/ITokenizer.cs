namespace RawInfer.Tokenizers;

/// <summary>
/// Text ↔ token ids. Decoding goes through raw bytes (<see cref="TokenBytes"/>) so that an incremental
/// detokenizer can hold back incomplete UTF-8 whatever the vocabulary's byte convention.
/// </summary>
public interface ITokenizer
{
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id, or -1 when the vocabulary has none.</summary>
    int BosId { get; }

    /// <summary>End-of-sequence id, or -1 when the vocabulary has none.</summary>
    int EosId { get; }

    /// <summary>Encodes text; BOS/EOS added when asked and the vocabulary has them.</summary>
    int[] Encode(string text, bool addBos, bool addEos);

    /// <summary>
    /// The bytes token <paramref name="tokenId"/> contributes to the output when it follows
    /// <paramref name="previousTokenId"/> (-1 at the start); empty for control tokens such as BOS/EOS.
    /// </summary>
    ReadOnlySpan<byte> TokenBytes(int previousTokenId, int tokenId);
}
