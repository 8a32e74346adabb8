using System.Globalization;
using RawInfer.Engine;
using RawInfer.Protocol;

namespace RawInfer.Server;

/// <summary>Why a request's token was cancelled, which decides its last frame.</summary>
internal enum CancelReason
{
    None,
    Client,
    Disconnect,
    Shutdown,
    Backpressure,
}

// Requests in flight: SUBMIT → limits → admission → engine stream → TOKENS … DONE | ERROR.
internal sealed partial class Connection
{
    private readonly Dictionary<uint, ActiveRequest> _requests = [];
    private volatile bool _draining;
    private uint _lastRequestId;

    /// <summary>Requests in flight on this connection.</summary>
    public int InFlight
    {
        get
        {
            lock (_requests)
            {
                return _requests.Count;
            }
        }
    }

    private uint LastRequestId => Volatile.Read(ref _lastRequestId);

    private string? Submit(uint requestId, SubmitFrame submit)
    {
        if (requestId == 0)
        {
            return Violation("SUBMIT needs a nonzero request id");
        }

        var principal = _principal!;
        if (_draining)
        {
            RefuseRequest(requestId, RequestMapping.RequestIdOf(Id, requestId), new ErrorFrame(ErrorCode.ShuttingDown, "the server is shutting down"), record: true);
            return null;
        }

        var request = RequestMapping.ToGenerationRequest(submit, principal, _options, _server.Tokenizer, Id, requestId, out var invalid);
        if (request is null)
        {
            RefuseRequest(requestId, RequestMapping.RequestIdOf(Id, requestId), new ErrorFrame(ErrorCode.BadRequest, invalid!), record: true);
            return null;
        }

        var active = new ActiveRequest(requestId, submit.Stream, request);
        lock (_requests)
        {
            if (_requests.ContainsKey(requestId))
            {
                return Violation(string.Create(CultureInfo.InvariantCulture, $"request id {requestId} is already in flight"));
            }

            if (_requests.Count >= _options.MaxInFlightPerConnection)
            {
                RefuseRequest(requestId, request.RequestId!, new ErrorFrame(ErrorCode.Overloaded,
                    $"this connection already has its maximum of {_options.MaxInFlightPerConnection} requests in flight", TimeSpan.FromSeconds(1)), record: true);
                return null;
            }

            if (!_server.TryEnterKey(principal))
            {
                RefuseRequest(requestId, request.RequestId!, new ErrorFrame(ErrorCode.Overloaded,
                    $"key {principal.KeyId} already has its maximum of requests in flight", TimeSpan.FromSeconds(1)), record: true);
                return null;
            }

            var decision = _options.Admission.TryAdmit(principal, request);
            if (!decision.IsAllowed)
            {
                // The admission control recorded its own refusal (which check, why).
                _server.ExitKey(principal);
                RefuseRequest(requestId, request.RequestId!, new ErrorFrame(decision.Code, decision.Message ?? "refused", decision.RetryAfter), record: false);
                return null;
            }

            _requests.Add(requestId, active);
            if (requestId > _lastRequestId)
            {
                Volatile.Write(ref _lastRequestId, requestId);
            }
        }

        active.Task = RunRequestAsync(active);
        return null;
    }

    private async Task RunRequestAsync(ActiveRequest active)
    {
        await Task.Yield(); // leave the reader loop at once
        RequestUsage? usage = null;
        FramePayload? last = null;
        try
        {
            (last, usage) = await StreamAsync(active).ConfigureAwait(false);
        }
        catch (EngineOverloadedException e)
        {
            last = new ErrorFrame(ErrorCode.Overloaded, e.Message, e.RetryAfter);
        }
        catch (ArgumentException e)
        {
            last = new ErrorFrame(ErrorCode.BadRequest, e.Message);
        }
        catch (OperationCanceledException) when (active.Cancellation.IsCancellationRequested)
        {
            last = active.Reason switch
            {
                CancelReason.Client => new ErrorFrame(ErrorCode.Cancelled, "cancelled by the client"),
                CancelReason.Shutdown => new ErrorFrame(ErrorCode.ShuttingDown, "the server shut down before the request finished"),
                CancelReason.Backpressure => new ErrorFrame(ErrorCode.Overloaded, "the client is not reading its output", TimeSpan.FromSeconds(1)),
                _ => null, // the client is gone
            };
        }
        catch (InvalidOperationException) when (_server.IsShuttingDown || _server.Engine.Fault is null)
        {
            last = new ErrorFrame(ErrorCode.ShuttingDown, "the engine is shutting down");
        }
        catch (Exception e)
        {
            ServerLog.RequestFailed(Logger, Id, active.Id, e);
            last = new ErrorFrame(ErrorCode.Internal, "internal error");
        }
        finally
        {
            // The durability barrier: the request's records reach the disk before its final frame is queued. Only this
            // request's task waits; the writer loop and the other streams go on. Still in the table meanwhile, so a
            // closing connection waits for it.
            var auditId = active.Request.RequestId!;
            if (last is not null)
            {
                last = await DurableAsync(auditId, last).ConfigureAwait(false);
            }

            // Out of the table before the last frame goes out, so the client may reuse the id once it sees it.
            lock (_requests)
            {
                _requests.Remove(active.Id);
            }

            _server.ExitKey(_principal!);
            if (active.Reason == CancelReason.Client)
            {
                _options.Admission.ClientCancelled(_principal!, active.Request);
            }

            _options.Admission.Complete(_principal!, active.Request, usage, active.DeliveredTokens);
            if (last is not null)
            {
                Enqueue(active.Id, last);
            }

            _options.Audit.Release(auditId);
            active.Cancellation.Dispose();
        }
    }

    /// <summary>A request refused before it started: its ERROR is queued once its audit record is on disk.</summary>
    private void RefuseRequest(uint requestId, string auditId, ErrorFrame error, bool record)
    {
        if (record)
        {
            _options.Audit.RecordRefusal(Id, _principal!, auditId, error.Code, error.Message);
        }

        _ = SendWhenDurableAsync(requestId, auditId, error); // completes at once when there is nothing to wait for
    }

    private async Task SendWhenDurableAsync(uint requestId, string auditId, FramePayload frame)
    {
        Enqueue(requestId, await DurableAsync(auditId, frame).ConfigureAwait(false));
        _options.Audit.Release(auditId);
    }

    /// <summary>
    /// Waits until the request's audit records are durable. A final frame whose records could not be written is not
    /// sent as it was: the client gets ERROR INTERNAL instead.
    /// </summary>
    private async Task<FramePayload> DurableAsync(string auditId, FramePayload frame)
    {
        try
        {
            await _options.Audit.WaitDurableAsync(auditId, CancellationToken.None).ConfigureAwait(false);
            return frame;
        }
        catch (Exception e) when (e is IOException or ArgumentOutOfRangeException or ObjectDisposedException)
        {
            ServerLog.AuditFailed(Logger, Id, auditId, e);
            return new ErrorFrame(ErrorCode.Internal, "the request's audit record could not be written");
        }
    }

    /// <summary>Pumps the engine's stream into frames; returns the terminal frame and the usage.</summary>
    private async Task<(FramePayload Last, RequestUsage? Usage)> StreamAsync(ActiveRequest active)
    {
        var token = active.Cancellation.Token;
        var collected = active.Stream ? null : new TokenCollector();
        await foreach (var chunk in _server.Engine.StreamAsync(active.Request, token).ConfigureAwait(false))
        {
            if (chunk.TokenIds.Count > 0 || chunk.Text.Length > 0 || chunk.Logprobs is { Count: > 0 })
            {
                active.DeliveredTokens += chunk.TokenIds.Count;
                if (collected is not null)
                {
                    collected.Add(chunk);
                }
                else if (!await EnqueueBoundedAsync(active.Id, RequestMapping.ToTokensFrame(chunk), token).ConfigureAwait(false))
                {
                    active.Cancel(CancelReason.Backpressure);
                    token.ThrowIfCancellationRequested();
                }
            }

            if (chunk.IsFinal)
            {
                if (collected is not null)
                {
                    Enqueue(active.Id, collected.ToFrame());
                }

                return (RequestMapping.ToTerminalFrame(chunk), chunk.Usage);
            }
        }

        throw new InvalidOperationException("the engine ended a stream without a final chunk");
    }

    private void CancelRequest(uint requestId, CancelReason reason)
    {
        ActiveRequest? active;
        lock (_requests)
        {
            _requests.TryGetValue(requestId, out active);
        }

        active?.Cancel(reason); // not in flight: it may have just finished; ignored by contract
    }

    /// <summary>Cancels every request in the engine and waits until each has ended (blocks freed).</summary>
    private async Task CancelAllRequestsAsync()
    {
        var reason = (CloseReason)Volatile.Read(ref _closeReason) == CloseReason.Shutdown ? CancelReason.Shutdown : CancelReason.Disconnect;
        List<Task> tasks;
        lock (_requests)
        {
            tasks = new List<Task>(_requests.Count);
            foreach (var active in _requests.Values)
            {
                active.Cancel(reason);
                tasks.Add(active.Task);
            }
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private sealed class ActiveRequest(uint id, bool stream, GenerationRequest request)
    {
        private int _reason;

        public uint Id { get; } = id;

        public bool Stream { get; } = stream;

        public GenerationRequest Request { get; } = request;

        public CancellationTokenSource Cancellation { get; } = new();

        public Task Task { get; set; } = Task.CompletedTask;

        /// <summary>Token ids streamed (or collected) for the client so far; written by the request's own task only.</summary>
        public int DeliveredTokens { get; set; }

        public CancelReason Reason => (CancelReason)Volatile.Read(ref _reason);

        public void Cancel(CancelReason reason)
        {
            if (Interlocked.CompareExchange(ref _reason, (int)reason, 0) == 0)
            {
                try
                {
                    Cancellation.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // finished concurrently
                }
            }
        }
    }
}
