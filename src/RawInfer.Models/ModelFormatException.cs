namespace RawInfer.Models;

/// <summary>
/// A model file is malformed. The message names the file, the field and the byte offset where reading failed.
/// </summary>
public sealed class ModelFormatException : Exception
{
    public ModelFormatException(string message)
        : base(message)
    {
    }

    public ModelFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ModelFormatException()
    {
    }

    /// <summary>Name of the offending field (header field, tensor name), when known.</summary>
    public string? Field { get; init; }

    /// <summary>Byte offset in the file where the offending field starts, when known.</summary>
    public long? Offset { get; init; }
}
