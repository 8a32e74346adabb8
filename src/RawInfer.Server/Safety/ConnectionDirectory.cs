using System.Collections.Concurrent;
using System.Globalization;
using System.Net;

namespace RawInfer.Server.Safety;

/// <summary>
/// What the safety adapters know about open connections: the client address (for audit records and the address
/// throttle) and, once authenticated, the key id (for abuse signals). Fed by <see cref="AuditConnectionEvents"/>;
/// read by the admission control and the engine's audit sink, which only see request ids.
/// </summary>
public sealed class ConnectionDirectory
{
    private readonly ConcurrentDictionary<long, Entry> _connections = new();

    /// <summary>Connections known now.</summary>
    public int Count => _connections.Count;

    /// <summary>The address a throttle and an audit record use: the IP alone (the port changes per connection).</summary>
    public static string? AddressOf(EndPoint? remote) => remote switch
    {
        null => null,
        IPEndPoint ip => (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString(),
        _ => remote.ToString(),
    };

    /// <summary>
    /// The connection a server request id belongs to. The server names requests <c>c{connection}-r{request}</c>
    /// (RequestMapping); anything else (an in-process request) has none.
    /// </summary>
    public static bool TryGetConnectionId(string? requestId, out long connectionId)
    {
        connectionId = 0;
        if (requestId is null || requestId.Length < 4 || requestId[0] != 'c')
        {
            return false;
        }

        var dash = requestId.IndexOf("-r", StringComparison.Ordinal);
        return dash > 1 && long.TryParse(requestId.AsSpan(1, dash - 1), NumberStyles.None, CultureInfo.InvariantCulture, out connectionId);
    }

    public void Opened(long connectionId, EndPoint? remote) => _connections[connectionId] = new Entry(AddressOf(remote), null);

    public void Authenticated(long connectionId, EndPoint? remote, string keyId) =>
        _connections[connectionId] = new Entry(AddressOf(remote), keyId);

    public void Closed(long connectionId) => _connections.TryRemove(connectionId, out _);

    /// <summary>The client address of an open connection, or null.</summary>
    public string? AddressOfConnection(long connectionId) => _connections.TryGetValue(connectionId, out var e) ? e.Address : null;

    /// <summary>The key a connection authenticated as, or null.</summary>
    public string? KeyOfConnection(long connectionId) => _connections.TryGetValue(connectionId, out var e) ? e.KeyId : null;

    /// <summary>The client address of a server request (by its id), or null.</summary>
    public string? AddressOfRequest(string? requestId) =>
        TryGetConnectionId(requestId, out var connectionId) ? AddressOfConnection(connectionId) : null;

    private sealed record Entry(string? Address, string? KeyId);
}
