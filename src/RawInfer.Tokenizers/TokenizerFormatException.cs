namespace RawInfer.Tokenizers;

/// <summary>
/// A tokenizer file or vocabulary is malformed. The message names the file, the token index and the byte offset
/// where reading failed.
/// </summary>
public sealed class TokenizerFormatException : Exception
{
    public TokenizerFormatException(string message)
        : base(message)
    {
    }

    public TokenizerFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public TokenizerFormatException()
    {
    }

    /// <summary>Index of the offending token, when known.</summary>
    public int? TokenIndex { get; init; }

    /// <summary>Byte offset in the file where the offending field starts, when known.</summary>
    public long? Offset { get; init; }
}
