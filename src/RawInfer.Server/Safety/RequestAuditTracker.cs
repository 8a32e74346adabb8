using System.Collections.Concurrent;
using RawInfer.Engine;
using RawInfer.Safety.Audit;

namespace RawInfer.Server.Safety;

/// <summary>
/// The durability barrier's bookkeeping. Engine events go to the <see cref="AuditEventSink"/> as they are; on top of
/// it this remembers, per request, the last record queued at the edge (admission refusals) and whether the engine
/// still owes the request's terminal record. The engine writes a request's final chunk to its stream a moment
/// before it raises <see cref="RequestFinished"/>, so a server that looked up the last sequence as soon as it saw
/// the final chunk could wait on the admission record only; <see cref="WaitDurableAsync"/> first waits for the
/// terminal record to be queued, then for the disk.
/// </summary>
internal sealed class RequestAuditTracker : IEngineEventSink
{
    private readonly AuditLog _log;
    private readonly ConcurrentDictionary<string, RequestState> _requests = new(StringComparer.Ordinal);

    public RequestAuditTracker(AuditLog log, Func<RequestContext, string?> addressOf)
    {
        _log = log;
        Sink = new AuditEventSink(log, addressOf);
    }

    /// <summary>Longest wait for the engine's terminal event after the server saw the final chunk.</summary>
    public static TimeSpan TerminalRecordTimeout { get; } = TimeSpan.FromSeconds(10);

    /// <summary>The engine audit sink behind this one.</summary>
    public AuditEventSink Sink { get; }

    /// <summary>Requests with bookkeeping (tests check that <see cref="Release"/> leaves none behind).</summary>
    public int TrackedRequests => _requests.Count;

    public void OnEvent(EngineEvent engineEvent)
    {
        ArgumentNullException.ThrowIfNull(engineEvent);
        var requestId = engineEvent.Request.RequestId;
        if (engineEvent is RequestAdmitted)
        {
            // Events of one request arrive in order, so the terminal completion exists before it is needed.
            _requests.GetOrAdd(requestId, static _ => new RequestState()).Terminal ??= NewCompletion();
        }

        Sink.OnEvent(engineEvent);
        if (engineEvent is RequestFinished or RequestRefused && _requests.TryGetValue(requestId, out var state))
        {
            bool released;
            lock (state)
            {
                state.Terminal?.TrySetResult();
                released = state.Released;
            }

            if (released)
            {
                // The server let go of the request (its client left) before the engine finished it.
                Forget(requestId);
            }
        }
    }

    /// <summary>A record about <paramref name="requestId"/> queued outside the engine (at admission).</summary>
    public void Note(string requestId, long sequence)
    {
        var state = _requests.GetOrAdd(requestId, static _ => new RequestState());
        long seen;
        while ((seen = Volatile.Read(ref state.EdgeSequence)) < sequence
            && Interlocked.CompareExchange(ref state.EdgeSequence, sequence, seen) != seen)
        {
        }
    }

    /// <summary>
    /// Completes when every record queued for the request (at the edge and in the engine, terminal included) is on
    /// disk. Throws <see cref="IOException"/> when one of them could not be queued or written.
    /// </summary>
    public async Task WaitDurableAsync(string requestId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requestId);
        _requests.TryGetValue(requestId, out var state);
        if (state?.Terminal is { } terminal)
        {
            try
            {
                await terminal.Task.WaitAsync(TerminalRecordTimeout, TimeProvider.System, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException e)
            {
                // The engine raises the terminal event right after the final chunk; this long means it never will.
                throw new IOException($"the engine raised no terminal event for request {requestId} within {TerminalRecordTimeout.TotalSeconds} s", e);
            }
        }

        var sequence = Math.Max(Sink.LastSequenceOf(requestId), state is null ? 0 : Volatile.Read(ref state.EdgeSequence));
        if (sequence == long.MaxValue)
        {
            throw new IOException($"an audit record of request {requestId} could not be queued (the audit log is closed or failed)");
        }

        if (sequence > 0)
        {
            await _log.WaitDurableAsync(sequence, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Forgets a request once its final frame is out (or it will never get one).</summary>
    public void Release(string requestId)
    {
        if (_requests.TryGetValue(requestId, out var state))
        {
            lock (state)
            {
                if (state.Terminal is { Task.IsCompleted: false })
                {
                    state.Released = true; // the terminal record still comes; forget it then
                    return;
                }
            }
        }

        Forget(requestId);
    }

    private void Forget(string requestId)
    {
        _requests.TryRemove(requestId, out _);
        Sink.Release(requestId);
    }

    private static TaskCompletionSource NewCompletion() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private sealed class RequestState
    {
        public long EdgeSequence;

        public TaskCompletionSource? Terminal;

        public bool Released;
    }
}
