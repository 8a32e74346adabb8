using System.Threading.Tasks.Sources;

namespace RawInfer.Engine.Output;

/// <summary>
/// Wakes one request's reader from the engine thread without allocating there. A bounded channel's TryWrite
/// allocated now and then (32 B) when it completed a waiting reader; here the waiter is a reusable value-task
/// source, and the engine thread only queues this object (a preallocated <see cref="IThreadPoolWorkItem"/>) to the
/// thread pool, which completes the reader's await on a pool thread. A signal raised while nobody waits is kept
/// (one pending wake-up at most), so none is lost. One reader, one signalling thread.
/// </summary>
internal sealed class ReaderWakeSignal : IValueTaskSource<bool>, IThreadPoolWorkItem
{
    private const int Idle = 0;      // no wake-up pending, nobody waiting
    private const int Signaled = 1;  // a wake-up is pending
    private const int Waiting = 2;   // the reader waits on _core

    private ManualResetValueTaskSourceCore<bool> _core; // continuations run on the pool thread that completes it
    private int _state;
    private volatile bool _closed;

    /// <summary>Engine thread: wakes the reader (now, or at its next wait).</summary>
    public void Signal()
    {
        while (true)
        {
            var state = Volatile.Read(ref _state);
            if (state == Signaled
                || (state == Idle && Interlocked.CompareExchange(ref _state, Signaled, Idle) == Idle))
            {
                return;
            }

            if (state == Waiting && Interlocked.CompareExchange(ref _state, Idle, Waiting) == Waiting)
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
                return;
            }
        }
    }

    /// <summary>Ends the stream: waits return false once no wake-up is pending.</summary>
    public void Close()
    {
        _closed = true;
        Signal();
    }

    /// <summary>
    /// Reader: true after a signal (the reader then looks for chunks); false once closed with no signal pending.
    /// </summary>
    public ValueTask<bool> WaitAsync()
    {
        if (Interlocked.CompareExchange(ref _state, Idle, Signaled) == Signaled)
        {
            return new ValueTask<bool>(true);
        }

        if (_closed)
        {
            return new ValueTask<bool>(false);
        }

        _core.Reset();
        if (Interlocked.CompareExchange(ref _state, Waiting, Idle) != Idle)
        {
            // A signal arrived between the two exchanges: take it now.
            Interlocked.Exchange(ref _state, Idle);
            return new ValueTask<bool>(true);
        }

        return new ValueTask<bool>(this, _core.Version);
    }

    void IThreadPoolWorkItem.Execute() => _core.SetResult(true);

    bool IValueTaskSource<bool>.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
