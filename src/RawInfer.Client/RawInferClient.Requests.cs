using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using RawInfer.Protocol;

namespace RawInfer.Client;

// Requests: ids, the routing loop, streaming, cancellation.
public sealed partial class RawInferClient
{
    /// <summary>
    /// Submits a request and streams its output. The last chunk carries DONE. Cancelling the token sends CANCEL and
    /// throws <see cref="OperationCanceledException"/> once the server confirms; leaving the loop early cancels too.
    /// </summary>
    /// <exception cref="RawInferException">The server ended the request with ERROR.</exception>
    /// <exception cref="IOException">The connection closed first.</exception>
    public async IAsyncEnumerable<StreamChunk> StreamAsync(
        SubmitFrame request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var pending = await StartAsync(request, cancellationToken).ConfigureAwait(false);
        var registration = cancellationToken.UnsafeRegister(static s => ((PendingRequest)s!).Owner.SendCancel((PendingRequest)s!), pending);
        try
        {
            while (await pending.Frames.Reader.WaitToReadAsync(CancellationToken.None).ConfigureAwait(false))
            {
                while (pending.Frames.Reader.TryRead(out var frame))
                {
                    switch (frame)
                    {
                        case TokensFrame tokens:
                            yield return new StreamChunk(tokens.TokenIds, tokens.Text, tokens.Logprobs, null);
                            break;
                        case DoneFrame done:
                            pending.Finished = true;
                            yield return new StreamChunk([], string.Empty, null, done);
                            yield break;
                        case ErrorFrame error:
                            pending.Finished = true;
                            if (error.Code == ErrorCode.Cancelled)
                            {
                                cancellationToken.ThrowIfCancellationRequested();
                            }

                            throw new RawInferException(error.Code, error.Message, error.RetryAfter);
                        default:
                            throw new RawInferException(ErrorCode.ProtocolViolation, $"unexpected {frame.Type} for a request");
                    }
                }
            }

            await pending.Frames.Reader.Completion.ConfigureAwait(false); // rethrows the connection's failure
            throw new IOException("the connection closed before the request finished");
        }
        finally
        {
            await registration.DisposeAsync().ConfigureAwait(false);
            if (!pending.Finished && IsConnected)
            {
                // The caller stopped early: cancel on the server; the slot frees when its last frame arrives.
                pending.Abandoned = true;
                SendCancel(pending);
            }
            else
            {
                Finish(pending);
            }
        }
    }

    /// <summary>Runs a request to the end and returns the whole completion.</summary>
    public async Task<Completion> CompleteAsync(SubmitFrame request, CancellationToken cancellationToken = default)
    {
        var text = new StringBuilder();
        var ids = new List<int>();
        List<PositionLogprobEntry>? logprobs = null;
        await foreach (var chunk in StreamAsync(request, cancellationToken).ConfigureAwait(false))
        {
            if (chunk.Done is { } done)
            {
                return new Completion(text.ToString(), ids, logprobs, done);
            }

            text.Append(chunk.Text);
            ids.AddRange(chunk.TokenIds);
            if (chunk.Logprobs is { } lp)
            {
                (logprobs ??= []).AddRange(lp);
            }
        }

        throw new IOException("the stream ended without DONE");
    }

    /// <summary>Blocking form of <see cref="CompleteAsync"/> for synchronous callers.</summary>
    public Completion Complete(SubmitFrame request, CancellationToken cancellationToken = default) =>
        CompleteAsync(request, cancellationToken).GetAwaiter().GetResult();

    private async Task<FramePayload> RoundTripAsync(FramePayload frame, CancellationToken cancellationToken)
    {
        var pending = await StartAsync(frame, cancellationToken).ConfigureAwait(false);
        try
        {
            var reply = await pending.Frames.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return reply is ErrorFrame error ? throw new RawInferException(error.Code, error.Message, error.RetryAfter) : reply;
        }
        catch (ChannelClosedException e)
        {
            throw new IOException("the connection closed", e.InnerException ?? e);
        }
        finally
        {
            Finish(pending);
        }
    }

    private async Task<PendingRequest> StartAsync(FramePayload frame, CancellationToken cancellationToken)
    {
        ThrowIfClosed();
        await _inFlight.WaitAsync(cancellationToken).ConfigureAwait(false);
        uint id;
        do
        {
            id = (uint)Interlocked.Increment(ref _nextRequestId);
        }
        while (id == 0 || _pending.ContainsKey(id));

        var pending = new PendingRequest(this, id);
        _pending[id] = pending;
        try
        {
            await SendAsync(id, frame, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Finish(pending);
            throw;
        }

        return pending;
    }

    private void Finish(PendingRequest pending)
    {
        if (_pending.TryRemove(pending.Id, out _))
        {
            _inFlight.Release();
        }
    }

    private void SendCancel(PendingRequest pending) =>
        _ = SendAsync(pending.Id, new EmptyFrame(FrameType.Cancel), CancellationToken.None).AsTask()
            .ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);

    private async ValueTask SendAsync(uint requestId, FramePayload frame, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ThrowIfClosed();
            FrameWriter.Write(_output, requestId, frame);
            await _output.FlushAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Routes every frame to its request until the connection closes.</summary>
    private async Task ReadLoopAsync()
    {
        Exception reason = new IOException("the server closed the connection");
        try
        {
            while (true)
            {
                var result = await _input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                var reader = new SequenceReader<byte>(buffer);
                OperationStatus status;
                string? violation;
                while ((status = FrameReader.TryReadFrame(ref reader, _options.MaxReceiveFrameBytes, out var frame, out violation)) == OperationStatus.Done)
                {
                    Route(frame.RequestId, FrameDecoder.DecodeFromServer(frame));
                }

                _input.AdvanceTo(reader.Position, buffer.End);
                if (status == OperationStatus.InvalidData)
                {
                    throw new ProtocolException("from the server: " + violation);
                }

                if (result.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or System.Net.Sockets.SocketException or ProtocolException or RawInferException)
        {
            reason = e is IOException or RawInferException ? e : new IOException("connection failed: " + e.Message, e);
        }
        finally
        {
            Fail(reason);
            await _input.CompleteAsync().ConfigureAwait(false);
        }
    }

    private void Route(uint requestId, FramePayload frame)
    {
        if (requestId == 0)
        {
            switch (frame)
            {
                case GoAwayFrame goAway:
                    GoAway = goAway;
                    return;
                case ErrorFrame error:
                    throw new RawInferException(error.Code, error.Message, error.RetryAfter);
                case PingFrame { FrameKind: FrameType.Ping } ping:
                    _ = SendAsync(0, new PingFrame(FrameType.Pong, ping.Opaque), CancellationToken.None);
                    return;
            }
        }

        if (!_pending.TryGetValue(requestId, out var pending))
        {
            return; // a request this client gave up on
        }

        var terminal = frame is DoneFrame or ErrorFrame or StatsFrame or AdminResultFrame or PingFrame;
        if (pending.Abandoned)
        {
            if (terminal)
            {
                Finish(pending);
            }

            return;
        }

        pending.Frames.Writer.TryWrite(frame);
        if (terminal)
        {
            pending.Frames.Writer.TryComplete();
        }
    }

    private void Fail(Exception reason)
    {
        if (Interlocked.CompareExchange(ref _closed, reason, null) is not null)
        {
            return;
        }

        foreach (var pending in _pending.Values)
        {
            pending.Frames.Writer.TryComplete(reason);
        }
    }

    private void ThrowIfClosed()
    {
        if (_closed is { } reason)
        {
            throw reason is RawInferException refused
                ? new RawInferException(refused.Code, refused.ServerMessage ?? refused.Message, refused.RetryAfter)
                : new IOException("the connection is closed: " + reason.Message, reason);
        }
    }

    private sealed class PendingRequest(RawInferClient owner, uint id)
    {
        public RawInferClient Owner { get; } = owner;

        public uint Id { get; } = id;

        public Channel<FramePayload> Frames { get; } = Channel.CreateUnbounded<FramePayload>(
            new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        public volatile bool Finished;

        public volatile bool Abandoned;
    }
}
