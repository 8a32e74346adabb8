using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RawInfer.Protocol;
using RawInfer.Safety.Access;

namespace RawInfer.Server;

/// <summary>Why the server is closing a connection (the reader loop is told through CancelPendingRead).</summary>
internal enum CloseReason
{
    None,
    HandshakeTimeout,
    Idle,
    SlowClient,
    Shutdown,
    WriterStopped,
}

/// <summary>
/// One client: a reader loop that parses frames and starts requests, a writer loop that batches their frames into
/// the socket, and the requests in flight. Read <c>Connection.Read.cs</c> first.
/// </summary>
internal sealed partial class Connection
{
    private readonly RawInferServer _server;
    private readonly ServerOptions _options;
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly long _openedAt;
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Principal? _principal;
    private int _closeReason;
    private long _lastFrameAt;

    public Connection(RawInferServer server, Socket socket, long id)
    {
        _server = server;
        _options = server.Options;
        _socket = socket;
        Id = id;
        Remote = socket.RemoteEndPoint;
        if (_options.SocketSendBufferBytes is { } sendBuffer)
        {
            socket.SendBufferSize = sendBuffer;
        }

        _stream = new NetworkStream(socket, ownsSocket: true);
        // Zero-byte reads: an idle connection holds no receive buffer until data arrives.
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true));
        _openedAt = server.Time.GetTimestamp();
        _lastFrameAt = _openedAt;
    }

    public long Id { get; }

    public EndPoint? Remote { get; }

    /// <summary>Completes when both loops have ended and the socket is closed.</summary>
    public Task Completion => _completion.Task;

    private ILogger Logger => _server.Logger;

    public void Start()
    {
        _options.Events.OnEvent(new ConnectionOpened(Id, Remote, _server.Time.GetUtcNow()));
        ServerLog.Opened(Logger, Id, Remote);
        _ = RunAsync();
    }

    /// <summary>Asks the reader loop to stop for <paramref name="reason"/>; the first reason wins.</summary>
    public void Close(CloseReason reason)
    {
        if (Interlocked.CompareExchange(ref _closeReason, (int)reason, (int)CloseReason.None) == (int)CloseReason.None)
        {
            _input.CancelPendingRead();
        }
    }

    /// <summary>Checks the handshake, idle and data-rate deadlines (heartbeat timer thread).</summary>
    public void OnHeartbeat(long now)
    {
        var time = _server.Time;
        if (_principal is null)
        {
            if (time.GetElapsedTime(_openedAt, now) > _options.HandshakeTimeout)
            {
                Close(CloseReason.HandshakeTimeout);
            }

            return;
        }

        if (InFlight == 0 && time.GetElapsedTime(Volatile.Read(ref _lastFrameAt), now) > _options.IdleTimeout)
        {
            Close(CloseReason.Idle);
            return;
        }

        var partialSince = Volatile.Read(ref _partialSince);
        if (partialSince != 0)
        {
            var elapsed = time.GetElapsedTime(partialSince, now);
            var bytes = Volatile.Read(ref _bytesReceived) - Volatile.Read(ref _bytesAtPartialStart);
            if (elapsed > _options.MinDataRateGrace && bytes / elapsed.TotalSeconds < _options.MinDataRateBytesPerSecond)
            {
                Close(CloseReason.SlowClient);
            }
        }
    }

    private async Task RunAsync()
    {
        var closeDetail = "client closed";
        var writer = WriteLoopAsync();
        try
        {
            closeDetail = await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            closeDetail = "connection reset";
        }
        catch (Exception e)
        {
            ServerLog.ConnectionFailed(Logger, Id, e);
            closeDetail = "internal error";
        }

        try
        {
            // Requests end first (in the engine, within a step), so their last frames can still be flushed.
            await CancelAllRequestsAsync().ConfigureAwait(false);
            _queue.Writer.TryComplete();
            _writeAbort.CancelAfter(_options.CloseFlushTimeout);
            await writer.ConfigureAwait(false);
        }
        finally
        {
            // The socket goes first: completing the output pipe would otherwise try to flush leftovers to a peer
            // that is gone or not reading, without a timeout.
            _socket.Dispose();
            await _input.CompleteAsync().ConfigureAwait(false);
            try
            {
                await _output.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException)
            {
                // leftovers could not be delivered; the connection is closed either way
            }

            await _stream.DisposeAsync().ConfigureAwait(false);
            _writeAbort.Dispose();
            _server.Remove(this);
            _options.Events.OnEvent(new ConnectionClosed(Id, Remote, _server.Time.GetUtcNow(), closeDetail));
            ServerLog.Closed(Logger, Id, closeDetail);
            _completion.TrySetResult();
        }
    }

    /// <summary>Ends the connection for a broken rule: one ERROR on request id 0, then close.</summary>
    private string Refuse(ErrorCode code, string reason)
    {
        _options.Events.OnEvent(new ConnectionRefused(Id, Remote, _server.Time.GetUtcNow(), code, reason));
        ServerLog.Refused(Logger, Id, code, reason);
        Enqueue(0, new ErrorFrame(code, reason));
        return reason;
    }
}
