using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RawInfer.Engine;
using RawInfer.Protocol;
using RawInfer.Safety.Access;
using RawInfer.Tokenizers;

namespace RawInfer.Server;

/// <summary>
/// Serves the binary protocol (docs/protocol.md) over TCP for one <see cref="InferenceEngine"/>: an accept loop, one
/// <see cref="Connection"/> per client (reader and writer loops over pipes), one heartbeat timer for every deadline.
/// The engine and tokenizer belong to the caller, who shuts the engine down after <see cref="ShutdownAsync"/>.
/// </summary>
public sealed class RawInferServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<long, Connection> _connections = new();
    private readonly ConcurrentDictionary<string, StrongBox> _keyInFlight = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopAccepting = new();
    private Socket? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private ITimer? _heartbeat;
    // Connection ids (= WELCOME session ids, and part of every request id in the audit trail) start at a random
    // 52-bit base, so ids from different server runs on one audit log do not collide.
    private long _nextConnectionId = (long)(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)) >> 12);
    private int _shutdown;

    /// <summary>Creates a server; nothing listens until <see cref="Start"/>.</summary>
    public RawInferServer(
        InferenceEngine engine, ITokenizer tokenizer, IApiKeyAuthenticator authenticator,
        ServerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(authenticator);
        options ??= new ServerOptions();
        options.Validate();
        Engine = engine;
        Tokenizer = tokenizer;
        Authenticator = authenticator;
        Options = options;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("RawInfer.Server");
        Time = options.TimeProvider;
    }

    public ServerOptions Options { get; }

    /// <summary>The bound address (the real port when the options asked for port 0).</summary>
    public IPEndPoint? LocalEndPoint => (IPEndPoint?)_listener?.LocalEndPoint;

    /// <summary>Connections open now.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>Requests in flight on all connections.</summary>
    public int InFlightRequests
    {
        get
        {
            var total = 0;
            foreach (var connection in _connections.Values)
            {
                total += connection.InFlight;
            }

            return total;
        }
    }

    /// <summary>The largest output backlog of any connection now (tests of the buffer bound).</summary>
    internal long MaxPendingOutputBytes
    {
        get
        {
            long max = 0;
            foreach (var connection in _connections.Values)
            {
                max = Math.Max(max, connection.PendingOutputBytes);
            }

            return max;
        }
    }

    internal InferenceEngine Engine { get; }

    internal ITokenizer Tokenizer { get; }

    internal IApiKeyAuthenticator Authenticator { get; }

    internal ILogger Logger { get; }

    internal TimeProvider Time { get; }

    internal bool IsShuttingDown => Volatile.Read(ref _shutdown) != 0;

    /// <summary>Binds, listens and starts accepting.</summary>
    /// <exception cref="SocketException">The address cannot be bound.</exception>
    public void Start()
    {
        if (_listener is not null)
        {
            throw new InvalidOperationException("the server is already started");
        }

        var listener = new Socket(Options.Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(Options.Endpoint);
            listener.Listen(Options.ListenBacklog);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        _listener = listener;
        ServerLog.Listening(Logger, listener.LocalEndPoint!);
        _heartbeat = Time.CreateTimer(static s => ((RawInferServer)s!).Heartbeat(), this, Options.HeartbeatInterval, Options.HeartbeatInterval);
        _acceptLoop = AcceptLoopAsync(listener, _stopAccepting.Token);
    }

    /// <summary>
    /// Graceful shutdown: stop accepting, send GOAWAY, let in-flight requests finish for up to
    /// <paramref name="drainTimeout"/>, end the rest with ERROR SHUTTING_DOWN, flush and close every connection.
    /// Returns how many requests were cancelled at the deadline.
    /// </summary>
    public async Task<int> ShutdownAsync(TimeSpan drainTimeout, CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0)
        {
            return 0;
        }

        await _stopAccepting.CancelAsync().ConfigureAwait(false);
        _listener?.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        ServerLog.ShutdownStarted(Logger, _connections.Count, InFlightRequests, drainTimeout.TotalSeconds);
        foreach (var connection in _connections.Values)
        {
            connection.BeginDrain(drainTimeout);
        }

        var deadline = Time.GetTimestamp() + (long)(drainTimeout.TotalSeconds * Time.TimestampFrequency);
        while (InFlightRequests > 0 && Time.GetTimestamp() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), Time, cancellationToken).ConfigureAwait(false);
        }

        var cancelled = InFlightRequests;
        var closing = new List<Task>();
        foreach (var connection in _connections.Values)
        {
            connection.Close(CloseReason.Shutdown);
            closing.Add(connection.Completion);
        }

        await Task.WhenAll(closing).WaitAsync(cancellationToken).ConfigureAwait(false);
        if (_heartbeat is not null)
        {
            await _heartbeat.DisposeAsync().ConfigureAwait(false);
        }

        ServerLog.ShutdownFinished(Logger, cancelled);
        return cancelled;
    }

    /// <summary>Shuts down with no drain time.</summary>
    public async ValueTask DisposeAsync()
    {
        await ShutdownAsync(TimeSpan.Zero).ConfigureAwait(false);
        _stopAccepting.Dispose();
    }

    internal static ulong NewSessionId(long connectionId) => (ulong)connectionId;

    /// <summary>Counts a request against its key's in-flight limit; false when the limit is reached.</summary>
    internal bool TryEnterKey(Principal principal)
    {
        var limit = principal.Limits.MaxInFlight ?? Options.MaxInFlightPerKey;
        var counter = _keyInFlight.GetOrAdd(principal.KeyId, static _ => new StrongBox());
        if (Interlocked.Increment(ref counter.Value) <= limit)
        {
            return true;
        }

        Interlocked.Decrement(ref counter.Value);
        return false;
    }

    internal void ExitKey(Principal principal)
    {
        if (_keyInFlight.TryGetValue(principal.KeyId, out var counter))
        {
            Interlocked.Decrement(ref counter.Value);
        }
    }

    internal void Remove(Connection connection) => _connections.TryRemove(connection.Id, out _);

    private async Task AcceptLoopAsync(Socket listener, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException
                || (e is SocketException && cancellationToken.IsCancellationRequested))
            {
                return;
            }
            catch (SocketException e)
            {
                ServerLog.AcceptFailed(Logger, e); // e.g. out of file descriptors: keep serving the others
                await Task.Delay(TimeSpan.FromMilliseconds(50), Time, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            socket.NoDelay = true; // tokens are small and latency-bound
            var id = Interlocked.Increment(ref _nextConnectionId);
            if (_connections.Count >= Options.MaxConnections)
            {
                RefuseAtAccept(socket, id, ErrorCode.Overloaded, $"the server holds its maximum of {Options.MaxConnections} connections", TimeSpan.FromSeconds(1));
                continue;
            }

            // An address that failed authentication or sent malformed frames waits before it is served again.
            var wait = Options.Audit.ConnectionDelay(socket.RemoteEndPoint);
            if (wait > TimeSpan.Zero)
            {
                RefuseAtAccept(socket, id, ErrorCode.RateLimited, "too many failed attempts from this address", wait);
                continue;
            }

            var connection = new Connection(this, socket, id);
            _connections[id] = connection;
            connection.Start();
        }
    }

    private void RefuseAtAccept(Socket socket, long id, ErrorCode code, string message, TimeSpan retryAfter)
    {
        Options.Events.OnEvent(new ConnectionRefused(id, socket.RemoteEndPoint, Time.GetUtcNow(), code, message));
        ServerLog.Refused(Logger, id, code, message);
        try
        {
            socket.Send(FrameWriter.ToArray(0, new ErrorFrame(code, message, retryAfter)), SocketFlags.None);
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // the client is already gone
        }
        finally
        {
            socket.Dispose();
        }
    }

    private void Heartbeat()
    {
        var now = Time.GetTimestamp();
        foreach (var connection in _connections.Values)
        {
            connection.OnHeartbeat(now);
        }
    }

    internal sealed class StrongBox
    {
        public int Value;
    }
}
