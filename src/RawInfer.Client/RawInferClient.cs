using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;
using RawInfer.Protocol;

namespace RawInfer.Client;

/// <summary>
/// A connection to a RawInfer server. Thread-safe: many requests may stream at once on one connection, each with
/// its own id; a background loop routes the server's frames to them. Waits for a free slot when the server's
/// in-flight limit is reached, so the client never breaks it.
/// </summary>
/// <example>
/// <code>
/// await using var client = await RawInferClient.ConnectAsync("127.0.0.1", 7070, apiKey);
/// await foreach (var chunk in client.StreamAsync(new SubmitFrame { Prompt = "Once upon a time", MaxTokens = 64 }))
///     Console.Write(chunk.Text);
/// </code>
/// </example>
public sealed partial class RawInferClient : IAsyncDisposable, IDisposable
{
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly RawInferClientOptions _options;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<uint, PendingRequest> _pending = new();
    private SemaphoreSlim _inFlight = new(1, 1);
    private Task _readLoop = Task.CompletedTask;
    private volatile Exception? _closed;
    private int _nextRequestId;

    private RawInferClient(Socket socket, RawInferClientOptions options)
    {
        _socket = socket;
        _options = options;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
    }

    /// <summary>The server's WELCOME: accepted version, limits, session id.</summary>
    public WelcomeFrame Welcome { get; private set; } = null!;

    /// <summary>The GOAWAY the server sent, or null.</summary>
    public GoAwayFrame? GoAway { get; private set; }

    /// <summary>True until the connection closes.</summary>
    public bool IsConnected => _closed is null;

    /// <summary>Completes when the connection has closed.</summary>
    public Task Completion => _readLoop;

    /// <summary>Connects and performs the handshake.</summary>
    /// <exception cref="RawInferException">The server refused (UNAUTHORIZED, OVERLOADED, ...).</exception>
    public static async Task<RawInferClient> ConnectAsync(
        string host, int port, string apiKey, RawInferClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        var addresses = await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
        var address = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.First();
        return await ConnectAsync(new IPEndPoint(address, port), apiKey, options, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc cref="ConnectAsync(string, int, string, RawInferClientOptions?, CancellationToken)"/>
    public static async Task<RawInferClient> ConnectAsync(
        IPEndPoint endPoint, string apiKey, RawInferClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endPoint);
        ArgumentNullException.ThrowIfNull(apiKey);
        options ??= new RawInferClientOptions();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, timeout.Token).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new RawInferClient(socket, options);
        try
        {
            await client.HandshakeAsync(Encoding.UTF8.GetBytes(apiKey), timeout.Token).ConfigureAwait(false);
        }
        catch
        {
            await client.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        client._readLoop = client.ReadLoopAsync();
        return client;
    }

    /// <summary>
    /// Asks for the server's counters; <paramref name="detailed"/> needs an admin key (else FORBIDDEN).
    /// <see cref="StatsFrame.Suspensions"/> lists every key suspension to a detailed request, else this key's own.
    /// </summary>
    public async Task<StatsFrame> GetStatsAsync(bool detailed = false, CancellationToken cancellationToken = default)
    {
        var reply = await RoundTripAsync(new EmptyFrame(FrameType.Stats, detailed ? EmptyFrame.StatsDetailed : (byte)0), cancellationToken).ConfigureAwait(false);
        return reply as StatsFrame ?? throw new RawInferException(ErrorCode.ProtocolViolation, $"expected STATS, got {reply.Type}");
    }

    /// <summary>Round-trip time of a PING.</summary>
    public async Task<TimeSpan> PingAsync(CancellationToken cancellationToken = default)
    {
        var start = TimeProvider.System.GetTimestamp();
        var reply = await RoundTripAsync(new PingFrame(FrameType.Ping, (ulong)start), cancellationToken).ConfigureAwait(false);
        return reply is PingFrame ? TimeProvider.System.GetElapsedTime(start) : throw new RawInferException(ErrorCode.ProtocolViolation, $"expected PONG, got {reply.Type}");
    }

    public async ValueTask DisposeAsync()
    {
        Fail(new ObjectDisposedException(nameof(RawInferClient)));
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
            // already closed
        }

        _socket.Dispose();
        try
        {
            await _readLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException or OperationCanceledException)
        {
            // closing
        }

        await _stream.DisposeAsync().ConfigureAwait(false);
        _writeLock.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task HandshakeAsync(byte[] apiKey, CancellationToken cancellationToken)
    {
        FrameWriter.Write(_output, 0, new HelloFrame(ProtocolConstants.Version, apiKey, _options.ClientName));
        await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        var reply = await ReadOneAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new IOException("the server closed the connection during the handshake");
        switch (reply.Payload)
        {
            case WelcomeFrame welcome:
                Welcome = welcome;
                _inFlight = new SemaphoreSlim(Math.Max(welcome.MaxInFlightRequests, 1));
                return;
            case ErrorFrame error:
                throw new RawInferException(error.Code, error.Message, error.RetryAfter);
            default:
                throw new RawInferException(ErrorCode.ProtocolViolation, $"expected WELCOME, got {reply.Payload.Type}");
        }
    }

    /// <summary>Reads one frame (handshake, before the loop runs); null at end of stream.</summary>
    private async Task<(uint RequestId, FramePayload Payload)?> ReadOneAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var reader = new SequenceReader<byte>(buffer);
            var status = FrameReader.TryReadFrame(ref reader, _options.MaxReceiveFrameBytes, out var frame, out var violation);
            if (status == OperationStatus.InvalidData)
            {
                throw new ProtocolException(violation!);
            }

            if (status == OperationStatus.Done)
            {
                var payload = FrameDecoder.DecodeFromServer(frame);
                _input.AdvanceTo(reader.Position);
                return (frame.RequestId, payload);
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }
}
