using System.Net;

namespace RawInfer.Server;

/// <summary>What a stream does when its client stops reading and the connection's output buffer is full.</summary>
public enum BackpressureMode
{
    /// <summary>The client's streams pause (the engine keeps the tokens) until the buffer drains.</summary>
    Pause,

    /// <summary>The stream that would overflow ends with ERROR OVERLOADED and is cancelled in the engine.</summary>
    Fail,
}

/// <summary>Limits and seams of a <see cref="RawInferServer"/>. Defaults suit one machine serving many clients.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to listen on; loopback by default (port 0 picks a free port).</summary>
    public IPEndPoint Endpoint { get; init; } = new(IPAddress.Loopback, 7070);

    /// <summary>Pending connections the OS queues before accept.</summary>
    public int ListenBacklog { get; init; } = 4096;

    /// <summary>Open connections; more are answered ERROR OVERLOADED and closed.</summary>
    public int MaxConnections { get; init; } = 10_000;

    /// <summary>Requests in flight on one connection (also announced in WELCOME).</summary>
    public int MaxInFlightPerConnection { get; init; } = 64;

    /// <summary>Requests in flight per API key across connections, unless the key's own limit says otherwise.</summary>
    public int MaxInFlightPerKey { get; init; } = 256;

    /// <summary>Largest frame payload after the handshake (announced in WELCOME).</summary>
    public int MaxFrameBytes { get; init; } = 1 << 20;

    /// <summary>Time from accept to a valid HELLO.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A connection with nothing in flight and no frame for this long gets GOAWAY and is closed.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>A partial frame must arrive at least this fast (slowloris guard), after <see cref="MinDataRateGrace"/>.</summary>
    public double MinDataRateBytesPerSecond { get; init; } = 240;

    /// <summary>How long a partial frame may arrive slower than <see cref="MinDataRateBytesPerSecond"/>.</summary>
    public TimeSpan MinDataRateGrace { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most prompt tokens per request (announced in WELCOME).</summary>
    public int MaxPromptTokens { get; init; } = 8192;

    /// <summary>Largest SUBMIT max tokens (announced in WELCOME).</summary>
    public int MaxTokens { get; init; } = 4096;

    /// <summary>Bytes queued for one client before its streams pause or fail (see <see cref="Backpressure"/>).</summary>
    public int MaxOutputBufferBytes { get; init; } = 1 << 20;

    public BackpressureMode Backpressure { get; init; } = BackpressureMode.Pause;

    /// <summary>The sockets' kernel send buffer in bytes; null = the OS default (auto-tuned).</summary>
    public int? SocketSendBufferBytes { get; init; }

    /// <summary>How often deadlines (handshake, idle, data rate) are checked.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Time a closing connection gets to flush its last frames to a client that may not be reading.</summary>
    public TimeSpan CloseFlushTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Admission (rate limits, quotas); permissive by default.</summary>
    public IAdmissionControl Admission { get; init; } = PermissiveAdmissionControl.Instance;

    /// <summary>Connection events (audit); dropped by default.</summary>
    public IConnectionEventSink Events { get; init; } = NullConnectionEventSink.Instance;

    /// <summary>Audit hooks: the durability barrier before final frames, admin decisions, the per-address wait.</summary>
    public IRequestAudit Audit { get; init; } = NullRequestAudit.Instance;

    /// <summary>Admin operations (ADMIN frames) and the suspensions STATS shows; none by default.</summary>
    public IAdminOperations Admin { get; init; } = NullAdminOperations.Instance;

    /// <summary>Clock for deadlines (tests may substitute one).</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the first field out of range.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Endpoint, nameof(Endpoint));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ListenBacklog, nameof(ListenBacklog));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxConnections, nameof(MaxConnections));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxInFlightPerConnection, nameof(MaxInFlightPerConnection));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxInFlightPerKey, nameof(MaxInFlightPerKey));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFrameBytes, 4096, nameof(MaxFrameBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HandshakeTimeout, TimeSpan.Zero, nameof(HandshakeTimeout));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(IdleTimeout, TimeSpan.Zero, nameof(IdleTimeout));
        ArgumentOutOfRangeException.ThrowIfNegative(MinDataRateBytesPerSecond, nameof(MinDataRateBytesPerSecond));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxPromptTokens, nameof(MaxPromptTokens));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxTokens, nameof(MaxTokens));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(MaxOutputBufferBytes, nameof(MaxOutputBufferBytes));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(HeartbeatInterval, TimeSpan.Zero, nameof(HeartbeatInterval));
        ArgumentNullException.ThrowIfNull(Admission, nameof(Admission));
        ArgumentNullException.ThrowIfNull(Events, nameof(Events));
        ArgumentNullException.ThrowIfNull(Audit, nameof(Audit));
        ArgumentNullException.ThrowIfNull(Admin, nameof(Admin));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }
}
