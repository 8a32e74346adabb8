using RawInfer.Protocol;

namespace RawInfer.Client;

/// <summary>The server answered ERROR: <see cref="Code"/> says what to do (docs/protocol.md, "Error codes").</summary>
public sealed class RawInferException : Exception
{
    public RawInferException()
        : this(ErrorCode.Internal, "error")
    {
    }

    public RawInferException(string message)
        : this(ErrorCode.Internal, message)
    {
    }

    public RawInferException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = ErrorCode.Internal;
    }

    public RawInferException(ErrorCode code, string message, TimeSpan? retryAfter = null)
        : base($"{code}: {message}")
    {
        Code = code;
        ServerMessage = message;
        RetryAfter = retryAfter;
    }

    public ErrorCode Code { get; }

    /// <summary>The server's message, without the code prefix.</summary>
    public string? ServerMessage { get; }

    /// <summary>When to retry (rate limited, overloaded); null when the server gave no hint.</summary>
    public TimeSpan? RetryAfter { get; }
}

/// <summary>A piece of a streamed completion; the last one carries <see cref="Done"/> and no tokens.</summary>
public sealed record StreamChunk(IReadOnlyList<int> TokenIds, string Text, IReadOnlyList<PositionLogprobEntry>? Logprobs, DoneFrame? Done)
{
    public bool IsFinal => Done is not null;
}

/// <summary>A whole completion.</summary>
public sealed record Completion(string Text, IReadOnlyList<int> TokenIds, IReadOnlyList<PositionLogprobEntry>? Logprobs, DoneFrame Done);

/// <summary>Client settings.</summary>
public sealed record RawInferClientOptions
{
    /// <summary>Name sent in HELLO (server logs).</summary>
    public string ClientName { get; init; } = "RawInfer.Client";

    /// <summary>Largest frame payload the client accepts from the server.</summary>
    public int MaxReceiveFrameBytes { get; init; } = 16 << 20;

    /// <summary>Time allowed for connect plus handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}
