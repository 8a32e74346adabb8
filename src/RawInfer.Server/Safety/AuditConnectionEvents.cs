using System.Globalization;
using RawInfer.Safety.Audit;
using RawInfer.Safety.Limits;

namespace RawInfer.Server.Safety;

/// <summary>
/// Connection events into the audit log, and into the per-address throttle and the abuse monitor: an unknown key or
/// a malformed frame (the server closes the connection for either) makes the address wait longer before it is
/// served again; a malformed frame on an authenticated connection also counts against the key, which may suspend
/// it (audited). Only queues records, so it never blocks the connection's reader loop.
/// </summary>
public sealed class AuditConnectionEvents : IConnectionEventSink
{
    private readonly AuditLog _log;
    private readonly AddressThrottle _throttle;
    private readonly AbuseMonitor _abuse;

    public AuditConnectionEvents(AuditLog log, AddressThrottle throttle, AbuseMonitor abuse, ConnectionDirectory? directory = null)
    {
        ArgumentNullException.ThrowIfNull(log);
        ArgumentNullException.ThrowIfNull(throttle);
        ArgumentNullException.ThrowIfNull(abuse);
        _log = log;
        _throttle = throttle;
        _abuse = abuse;
        Connections = directory ?? new ConnectionDirectory();
    }

    /// <summary>Open connections' addresses and keys (the admission control and the engine sink look requests up here).</summary>
    public ConnectionDirectory Connections { get; }

    public void OnEvent(ConnectionEvent connectionEvent)
    {
        ArgumentNullException.ThrowIfNull(connectionEvent);
        var id = connectionEvent.ConnectionId;
        var address = ConnectionDirectory.AddressOf(connectionEvent.Remote);
        switch (connectionEvent)
        {
            case ConnectionOpened:
                Connections.Opened(id, connectionEvent.Remote);
                Record(AuditEventType.ConnectionOpened, null, address, id);
                break;
            case ConnectionAuthenticated authenticated:
                Connections.Authenticated(id, connectionEvent.Remote, authenticated.KeyId);
                if (address is not null)
                {
                    _throttle.RecordSuccess(address);
                }

                Record(AuditEventType.ConnectionAuthenticated, authenticated.KeyId, address, id);
                break;
            case ConnectionRefused refused:
                var delay = refused.Code == Protocol.ErrorCode.Unauthorized && address is not null
                    ? _throttle.RecordFailure(address)
                    : TimeSpan.Zero;
                Record(AuditEventType.ConnectionRefused, Connections.KeyOfConnection(id), address, id,
                    ("code", refused.Code.ToString()), ("reason", refused.Reason), ("address_delay_ms", Milliseconds(delay)));
                break;
            case MalformedFrameReceived malformed:
                OnMalformed(id, address, malformed.Detail);
                break;
            case ConnectionClosed closed:
                Record(AuditEventType.Custom, Connections.KeyOfConnection(id), address, id, ("event", "connection_closed"), ("reason", closed.Reason));
                Connections.Closed(id);
                break;
            default:
                Record(AuditEventType.Custom, null, address, id, ("event", connectionEvent.GetType().Name));
                break;
        }
    }

    private void OnMalformed(long id, string? address, string detail)
    {
        var delay = address is not null ? _throttle.RecordFailure(address) : TimeSpan.Zero;
        var keyId = Connections.KeyOfConnection(id);
        Record(AuditEventType.MalformedFrame, keyId, address, id, ("detail", detail), ("address_delay_ms", Milliseconds(delay)));
        if (keyId is not null && _abuse.Record(keyId, AbuseSignal.MalformedFrame) is { } suspension)
        {
            Record(AuditEventType.KeySuspended, keyId, address, id,
                ("since", suspension.Since.ToString("O", CultureInfo.InvariantCulture)),
                ("until", suspension.Until.ToString("O", CultureInfo.InvariantCulture)),
                ("signals", string.Join(",", suspension.Signals.Select(s => s.Key + "=" + s.Value.ToString(CultureInfo.InvariantCulture)))));
        }
    }

    private static string Milliseconds(TimeSpan delay) => ((long)delay.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);

    private void Record(AuditEventType type, string? keyId, string? address, long connectionId, params (string Name, string Value)[] fields)
    {
        var list = new KeyValuePair<string, string>[fields.Length + 1];
        list[0] = new("connection", connectionId.ToString(CultureInfo.InvariantCulture));
        for (var i = 0; i < fields.Length; i++)
        {
            list[i + 1] = new(fields[i].Name, fields[i].Value);
        }

        try
        {
            _log.Enqueue(new AuditEvent(type, keyId, address, null, list));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // A connection event with no record is the lesser loss; request records fail their own requests.
        }
    }
}
