using System.Threading.Channels;
using RawInfer.Protocol;

namespace RawInfer.Server;

// The writer loop and the bounded output buffer. Frames are queued by any thread and encoded straight into the
// pipe by the one writer loop, which flushes once per batch. A client that does not read fills its own buffer only.
internal sealed partial class Connection
{
    /// <summary>Frames encoded into the pipe before one flush.</summary>
    private const int BatchBytes = 64 * 1024;

    private readonly Channel<Outbound> _queue = Channel.CreateUnbounded<Outbound>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = false });
    private readonly CancellationTokenSource _writeAbort = new();
    private readonly Lock _roomLock = new();
    private TaskCompletionSource? _room;
    private long _pendingBytes;
    private volatile bool _writerDone;

    /// <summary>Bytes queued or written but not yet flushed to the socket.</summary>
    public long PendingOutputBytes => Volatile.Read(ref _pendingBytes);

    /// <summary>Announces the drain: GOAWAY now; SUBMITs from here on are refused.</summary>
    public void BeginDrain(TimeSpan drain)
    {
        _draining = true;
        Enqueue(0, new GoAwayFrame(LastRequestId, drain, "server shutting down"));
    }

    /// <summary>Queues a frame regardless of the buffer bound (control and terminal frames are small).</summary>
    private void Enqueue(uint requestId, FramePayload payload)
    {
        var size = FrameWriter.Measure(payload);
        Interlocked.Add(ref _pendingBytes, size);
        if (!_queue.Writer.TryWrite(new Outbound(requestId, payload, size)))
        {
            Interlocked.Add(ref _pendingBytes, -size); // the connection is closing
        }
    }

    /// <summary>
    /// Queues a stream's frame within the buffer bound: waits for room (pause) or returns false (fail mode, or the
    /// writer is gone).
    /// </summary>
    private async ValueTask<bool> EnqueueBoundedAsync(uint requestId, FramePayload payload, CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _pendingBytes) > _options.MaxOutputBufferBytes)
        {
            if (_options.Backpressure == BackpressureMode.Fail || _writerDone)
            {
                return false;
            }

            Task room;
            lock (_roomLock)
            {
                if (Volatile.Read(ref _pendingBytes) <= _options.MaxOutputBufferBytes || _writerDone)
                {
                    continue;
                }

                _room ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                room = _room.Task;
            }

            await room.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        Enqueue(requestId, payload);
        return true;
    }

    private async Task WriteLoopAsync()
    {
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                long batch = 0;
                while (batch < BatchBytes && reader.TryRead(out var frame))
                {
                    FrameWriter.Write(_output, frame.RequestId, frame.Payload);
                    batch += frame.Size;
                }

                var result = await _output.FlushAsync(_writeAbort.Token).ConfigureAwait(false);
                ReleaseOutput(batch);
                if (result.IsCompleted || result.IsCanceled)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException
            or System.Net.Sockets.SocketException or InvalidOperationException)
        {
            // the client is gone or would not read within the close timeout: nothing more can be delivered
        }
        finally
        {
            _writerDone = true;
            ReleaseOutput(0);
            Close(CloseReason.WriterStopped); // a dead writer ends the reader too (no-op when already closing)
        }
    }

    private void ReleaseOutput(long bytes)
    {
        var pending = Interlocked.Add(ref _pendingBytes, -bytes);
        if (pending > _options.MaxOutputBufferBytes && !_writerDone)
        {
            return;
        }

        lock (_roomLock)
        {
            _room?.TrySetResult();
            _room = null;
        }
    }

    private readonly record struct Outbound(uint RequestId, FramePayload Payload, int Size);
}
