namespace RawInfer.Engine;

/// <summary>
/// The waiting queue is full (requests or tokens): the request was refused at once, before any work. Retry after
/// <see cref="RetryAfter"/>.
/// </summary>
public sealed class EngineOverloadedException : Exception
{
    public EngineOverloadedException()
        : this("the engine's waiting queue is full", TimeSpan.FromSeconds(1))
    {
    }

    public EngineOverloadedException(string message)
        : this(message, TimeSpan.FromSeconds(1))
    {
    }

    public EngineOverloadedException(string message, Exception innerException)
        : base(message, innerException)
    {
        RetryAfter = TimeSpan.FromSeconds(1);
    }

    public EngineOverloadedException(string message, TimeSpan retryAfter)
        : base(message)
    {
        RetryAfter = retryAfter;
    }

    /// <summary>A hint: roughly when the queue will have room again (from the recent drain rate).</summary>
    public TimeSpan RetryAfter { get; }
}
