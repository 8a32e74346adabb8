using System.Net;
using System.Security.Cryptography;
using RawInfer.Engine;
using RawInfer.Protocol;
using RawInfer.Safety.Access;

namespace RawInfer.Server;

/// <summary>A server-side admission verdict: allow, or refuse with an error code, message and retry hint.</summary>
public readonly record struct AdmissionDecision(bool IsAllowed, ErrorCode Code, string? Message, TimeSpan? RetryAfter)
{
    public static AdmissionDecision Allow => new(true, default, null, null);

    public static AdmissionDecision Refuse(ErrorCode code, string message, TimeSpan? retryAfter = null) =>
        new(false, code, message, retryAfter);
}

/// <summary>
/// Decides whether an authenticated request may start (rate limits, quotas). Called on the connection's reader
/// thread for every SUBMIT that passed the server's own limits: must be fast and thread-safe.
/// </summary>
public interface IAdmissionControl
{
    AdmissionDecision TryAdmit(Principal principal, GenerationRequest request);

    /// <summary>
    /// An admitted request ended; <paramref name="usage"/> is null when the engine reported none (the request never
    /// ran, or ended early), and <paramref name="deliveredTokens"/> is how many tokens it streamed to the client — what
    /// a cancelled request is charged for (refunds).
    /// </summary>
    void Complete(Principal principal, GenerationRequest request, RequestUsage? usage, int deliveredTokens = 0);

    /// <summary>The client cancelled an admitted request (frequent cancels are an abuse signal). Default: ignored.</summary>
    void ClientCancelled(Principal principal, GenerationRequest request)
    {
    }
}

/// <summary>The default: admits everything.</summary>
public sealed class PermissiveAdmissionControl : IAdmissionControl
{
    public static PermissiveAdmissionControl Instance { get; } = new();

    public AdmissionDecision TryAdmit(Principal principal, GenerationRequest request) => AdmissionDecision.Allow;

    public void Complete(Principal principal, GenerationRequest request, RequestUsage? usage, int deliveredTokens = 0)
    {
    }
}

/// <summary>Receives connection events (for an audit log). Must be thread-safe and must not block.</summary>
public interface IConnectionEventSink
{
    void OnEvent(ConnectionEvent connectionEvent);
}

/// <summary>The default sink: drops every event.</summary>
public sealed class NullConnectionEventSink : IConnectionEventSink
{
    public static NullConnectionEventSink Instance { get; } = new();

    public void OnEvent(ConnectionEvent connectionEvent)
    {
    }
}

/// <summary>Base of connection events.</summary>
public abstract record ConnectionEvent(long ConnectionId, EndPoint? Remote, DateTimeOffset Timestamp);

public sealed record ConnectionOpened(long ConnectionId, EndPoint? Remote, DateTimeOffset Timestamp)
    : ConnectionEvent(ConnectionId, Remote, Timestamp);

public sealed record ConnectionAuthenticated(long ConnectionId, EndPoint? Remote, DateTimeOffset Timestamp, string KeyId)
    : ConnectionEvent(ConnectionId, Remote, Timestamp);

/// <summary>The connection was refused (bad key, too many connections) or closed for a broken rule.</summary>
public sealed record ConnectionRefused(long ConnectionId, EndPoint? Remote, DateTimeOffset Timestamp, ErrorCode Code, string Reason)
    : ConnectionEvent(ConnectionId, Remote, Timestamp);

public sealed record MalformedFrameReceived(long ConnectionId, EndPoint? Remote, DateTimeOffset Timestamp, string Detail)
    : ConnectionEvent(ConnectionId, Remote, Timestamp);

public sealed record ConnectionClosed(long ConnectionId, EndPoint? Remote, DateTimeOffset Timestamp, string Reason)
    : ConnectionEvent(ConnectionId, Remote, Timestamp);

/// <summary>
/// A fixed set of keys (e.g. from the command line): SHA-256 of each key, compared in constant time. A stand-in until
/// the safety project's key store is wired in.
/// </summary>
public sealed class StaticApiKeyAuthenticator : IApiKeyAuthenticator
{
    private readonly (byte[] Hash, Principal Principal)[] _keys;

    public StaticApiKeyAuthenticator(IEnumerable<(string Key, Principal Principal)> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        _keys = [.. keys.Select(k => (SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(k.Key)), k.Principal))];
    }

    public Principal? Authenticate(ReadOnlySpan<byte> presentedKey)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(presentedKey, hash);
        Principal? match = null;
        foreach (var (expected, principal) in _keys)
        {
            // every key is compared, so timing does not reveal which one (or whether one) matched
            if (CryptographicOperations.FixedTimeEquals(hash, expected))
            {
                match = principal;
            }
        }

        return match;
    }
}
