using Microsoft.Extensions.Logging;

namespace RawInfer.Server;

/// <summary>The server's structured log messages.</summary>
internal static partial class ServerLog
{
    [LoggerMessage(1, LogLevel.Information, "Listening on {Endpoint}")]
    public static partial void Listening(ILogger logger, System.Net.EndPoint endpoint);

    [LoggerMessage(2, LogLevel.Debug, "Connection {ConnectionId} opened from {Remote}")]
    public static partial void Opened(ILogger logger, long connectionId, System.Net.EndPoint? remote);

    [LoggerMessage(3, LogLevel.Information, "Connection {ConnectionId} authenticated as key {KeyId}")]
    public static partial void Authenticated(ILogger logger, long connectionId, string keyId);

    [LoggerMessage(4, LogLevel.Warning, "Connection {ConnectionId} refused: {Code} {Reason}")]
    public static partial void Refused(ILogger logger, long connectionId, Protocol.ErrorCode code, string reason);

    [LoggerMessage(5, LogLevel.Debug, "Connection {ConnectionId} closed: {Reason}")]
    public static partial void Closed(ILogger logger, long connectionId, string reason);

    [LoggerMessage(6, LogLevel.Error, "Connection {ConnectionId} request {RequestId} failed")]
    public static partial void RequestFailed(ILogger logger, long connectionId, uint requestId, Exception exception);

    [LoggerMessage(7, LogLevel.Information, "Shutting down: {Connections} connections, {InFlight} requests in flight, drain {DrainSeconds} s")]
    public static partial void ShutdownStarted(ILogger logger, int connections, int inFlight, double drainSeconds);

    [LoggerMessage(8, LogLevel.Information, "Shut down; {Cancelled} requests were cancelled at the drain deadline")]
    public static partial void ShutdownFinished(ILogger logger, int cancelled);

    [LoggerMessage(9, LogLevel.Error, "Connection {ConnectionId} failed")]
    public static partial void ConnectionFailed(ILogger logger, long connectionId, Exception exception);

    [LoggerMessage(10, LogLevel.Error, "Accept loop failed")]
    public static partial void AcceptFailed(ILogger logger, Exception exception);

    [LoggerMessage(11, LogLevel.Error, "Connection {ConnectionId} request {RequestId}: its audit records could not be written; answering INTERNAL")]
    public static partial void AuditFailed(ILogger logger, long connectionId, string requestId, Exception exception);

    [LoggerMessage(12, LogLevel.Error, "Connection {ConnectionId}: admin action {Action} failed; answering INTERNAL")]
    public static partial void AdminFailed(ILogger logger, long connectionId, string action, Exception exception);
}
