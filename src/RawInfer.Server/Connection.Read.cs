using System.Buffers;
using System.Globalization;
using RawInfer.Protocol;

namespace RawInfer.Server;

// The reader loop: frames out of the pipe, the handshake, and dispatch by type.
internal sealed partial class Connection
{
    private long _bytesReceived;
    private long _bytesAtPartialStart;
    private long _partialSince;

    /// <summary>Reads and handles frames until the client closes or a rule is broken; returns why it ended.</summary>
    private async Task<string> ReadLoopAsync()
    {
        long unconsumed = 0;
        while (true)
        {
            var result = await _input.ReadAsync().ConfigureAwait(false);
            if (result.IsCanceled)
            {
                return OnCloseRequested();
            }

            var buffer = result.Buffer;
            Interlocked.Add(ref _bytesReceived, buffer.Length - unconsumed);
            var reader = new SequenceReader<byte>(buffer);
            string? stop = null;
            while (stop is null)
            {
                var max = _principal is null ? ProtocolConstants.HandshakeMaxPayloadBytes : _options.MaxFrameBytes;
                var status = FrameReader.TryReadFrame(ref reader, max, out var frame, out var violation);
                if (status == OperationStatus.NeedMoreData)
                {
                    break;
                }

                if (status == OperationStatus.InvalidData)
                {
                    stop = Violation(violation!);
                    break;
                }

                Volatile.Write(ref _lastFrameAt, _server.Time.GetTimestamp());
                stop = Handle(frame);
            }

            unconsumed = reader.Remaining;
            TrackPartialFrame(unconsumed);
            _input.AdvanceTo(reader.Position, buffer.End);
            if (stop is not null)
            {
                return stop;
            }

            if (result.IsCompleted)
            {
                return unconsumed == 0 ? "client closed" : "client closed inside a frame";
            }
        }
    }

    /// <summary>A partial frame starts the data-rate clock; a completed one stops it.</summary>
    private void TrackPartialFrame(long unconsumed)
    {
        if (unconsumed == 0)
        {
            Volatile.Write(ref _partialSince, 0);
        }
        else if (Volatile.Read(ref _partialSince) == 0)
        {
            Volatile.Write(ref _bytesAtPartialStart, Volatile.Read(ref _bytesReceived) - unconsumed);
            Volatile.Write(ref _partialSince, _server.Time.GetTimestamp());
        }
    }

    /// <summary>Handles one frame; returns null to go on, or why the connection must close.</summary>
    private string? Handle(in RawFrame frame)
    {
        FramePayload payload;
        try
        {
            payload = FrameDecoder.DecodeFromClient(frame);
        }
        catch (ProtocolException e)
        {
            return Violation(e.Message);
        }

        if (_principal is null)
        {
            return payload is HelloFrame hello
                ? Handshake(hello)
                : Violation($"expected HELLO before any other frame, got {frame.Type}");
        }

        switch (payload)
        {
            case SubmitFrame submit:
                return Submit(frame.RequestId, submit);
            case EmptyFrame { FrameKind: FrameType.Cancel }:
                CancelRequest(frame.RequestId, CancelReason.Client);
                return null;
            case EmptyFrame { FrameKind: FrameType.Stats } stats:
                SendStats(frame.RequestId, (stats.Flags & EmptyFrame.StatsDetailed) != 0);
                return null;
            case AdminFrame admin:
                _ = AdminAsync(frame.RequestId, admin);
                return null;
            case PingFrame { FrameKind: FrameType.Ping } ping:
                Enqueue(frame.RequestId, new PingFrame(FrameType.Pong, ping.Opaque));
                return null;
            case PingFrame:
                return null; // a PONG to a ping we never send needs no answer
            default:
                return Violation($"{frame.Type} is not allowed after the handshake");
        }
    }

    private string? Handshake(HelloFrame hello)
    {
        if (hello.Version < 1)
        {
            return Violation(string.Create(CultureInfo.InvariantCulture, $"protocol version {hello.Version} is not supported (server speaks {ProtocolConstants.Version})"));
        }

        var principal = _server.Authenticator.Authenticate(hello.ApiKey.Span);
        if (principal is null)
        {
            return Refuse(ErrorCode.Unauthorized, "unknown API key");
        }

        _principal = principal;
        var version = Math.Min(hello.Version, ProtocolConstants.Version);
        Enqueue(0, new WelcomeFrame(
            version, _options.MaxFrameBytes, _options.MaxInFlightPerConnection, RawInferServer.NewSessionId(Id),
            _options.MaxPromptTokens, _options.MaxTokens));
        _options.Events.OnEvent(new ConnectionAuthenticated(Id, Remote, _server.Time.GetUtcNow(), principal.KeyId));
        ServerLog.Authenticated(Logger, Id, principal.KeyId);
        return null;
    }

    private string Violation(string detail)
    {
        _options.Events.OnEvent(new MalformedFrameReceived(Id, Remote, _server.Time.GetUtcNow(), detail));
        return Refuse(ErrorCode.ProtocolViolation, detail);
    }

    private string OnCloseRequested()
    {
        var reason = (CloseReason)Volatile.Read(ref _closeReason);
        switch (reason)
        {
            case CloseReason.HandshakeTimeout:
                return Refuse(ErrorCode.ProtocolViolation, $"no HELLO within {_options.HandshakeTimeout.TotalSeconds:0.###} s");
            case CloseReason.SlowClient:
                return Refuse(ErrorCode.ProtocolViolation, $"a partial frame arrived slower than {_options.MinDataRateBytesPerSecond} bytes/s");
            case CloseReason.Idle:
                Enqueue(0, new GoAwayFrame(LastRequestId, TimeSpan.Zero, "idle timeout"));
                return "idle timeout";
            case CloseReason.WriterStopped:
                return "client stopped receiving";
            default:
                return "server shutdown";
        }
    }
}
