namespace RawInfer.Cli;

/// <summary>An expected failure (bad input, missing file, network): printed as one line, no stack trace.</summary>
internal sealed class CliException : Exception
{
    public CliException(string message)
        : base(message)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public CliException()
    {
    }
}
