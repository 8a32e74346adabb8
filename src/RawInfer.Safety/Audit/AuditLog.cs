using System.Globalization;

namespace RawInfer.Safety.Audit;

/// <summary>
/// The append-only, hash-chained audit log of one directory. <see cref="Enqueue"/> never blocks on I/O (the engine
/// thread uses it); a background writer takes everything queued, writes it, fsyncs once (group commit) and then
/// completes the waiters of <see cref="WaitDurableAsync"/>. A request's final frame is sent only after its records
/// are durable. Opening recovers a torn tail and refuses damage in the middle (<see cref="AuditLogCorruptException"/>).
/// </summary>
public sealed partial class AuditLog : IAsyncDisposable
{
    private readonly string _directory;
    private readonly AuditLogOptions _options;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Task _writer;
    private readonly CancellationTokenSource _stop = new();
    private readonly FileStream _directoryLock;
    private List<(long Sequence, DateTimeOffset Timestamp, AuditEvent Event)> _open = [];
    private TaskCompletionSource _openDone = NewCompletion();
    private TaskCompletionSource? _inFlightDone;
    private long _inFlightLast;
    private long _nextSequence;
    private long _durableSequence;
    private Exception? _fault;
    private bool _closed;

    // Writer-thread state.
    private FileStream _segment;
    private byte[] _lastHash;
    private long _sinceCheckpoint;

    private AuditLog(string directory, AuditLogOptions options, AuditWalkResult state, FileStream directoryLock)
    {
        _directoryLock = directoryLock;
        _directory = directory;
        _options = options;
        _nextSequence = state.NextSequence;
        _durableSequence = state.NextSequence - 1;
        _lastHash = state.LastHash;
        _segment = state.LastSegment is null
            ? CreateSegment(state.NextSequence, state.LastHash)
            : new FileStream(state.LastSegment, FileMode.Open, FileAccess.Write, FileShare.Read);
        _segment.Seek(0, SeekOrigin.End);
        Content = new AuditContentProtector(options.DataKeyFile ?? Path.Combine(directory, "datakeys.json"), options.Retention);
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>The directory the log lives in.</summary>
    public string Directory => _directory;

    /// <summary>Highest sequence number known to be on disk.</summary>
    public long DurableSequence
    {
        get
        {
            lock (_lock)
            {
                return _durableSequence;
            }
        }
    }

    /// <summary>
    /// Sequence number of this opening's <see cref="AuditEventType.LogOpened"/> record (after any recovery records):
    /// a server waits for it to be durable (<see cref="WaitDurableAsync"/>) before it accepts connections.
    /// </summary>
    public long OpenedSequence { get; private set; }

    /// <summary>Turns prompts and outputs into record fields under the retention setting; decrypts; forgets keys.</summary>
    public AuditContentProtector Content { get; }

    /// <summary>
    /// Opens (or creates) the log in <paramref name="directory"/>: verifies the chain, truncates a torn last record
    /// (and appends a <see cref="AuditEventType.Recovery"/> record saying so), and refuses damage in the middle unless
    /// <see cref="AuditLogOptions.StartNewChainOnDamage"/>.
    /// </summary>
    public static AuditLog Open(string directory, AuditLogOptions? options = null)
    {
        options ??= new AuditLogOptions();
        options.Validate();
        System.IO.Directory.CreateDirectory(directory);
        var directoryLock = LockDirectory(directory);
        AuditLog log;
        List<AuditEvent> recovery;
        try
        {
            (var state, recovery) = Recover(directory, options);
            log = new AuditLog(directory, options, state, directoryLock);
        }
        catch
        {
            directoryLock.Dispose();
            throw;
        }

        foreach (var e in recovery)
        {
            log.Enqueue(e);
        }

        log.OpenedSequence = log.Enqueue(new AuditEvent(AuditEventType.LogOpened, Fields:
        [
            new("recovery_events", recovery.Count.ToString(CultureInfo.InvariantCulture)),
        ]));
        return log;
    }

    /// <summary>
    /// Queues a record and returns its sequence number at once (never waits for I/O; safe on the engine thread).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The log is closed.</exception>
    /// <exception cref="IOException">An earlier write failed; the log accepts nothing more.</exception>
    public long Enqueue(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        var timestamp = _options.TimeProvider.GetUtcNow();
        long sequence;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_fault is not null)
            {
                throw new IOException("the audit log failed to write an earlier batch and accepts no more records", _fault);
            }

            sequence = _nextSequence++;
            _open.Add((sequence, timestamp, auditEvent));
        }

        _signal.Release();
        return sequence;
    }

    /// <summary>Completes once record <paramref name="sequence"/> (and all before it) is written and fsynced.</summary>
    public Task WaitDurableAsync(long sequence, CancellationToken cancellationToken = default)
    {
        Task task;
        lock (_lock)
        {
            if (sequence <= _durableSequence)
            {
                return Task.CompletedTask;
            }

            if (_fault is not null)
            {
                return Task.FromException(new IOException("the audit log failed to write", _fault));
            }

            if (sequence >= _nextSequence)
            {
                return Task.FromException(new ArgumentOutOfRangeException(
                    nameof(sequence), sequence, "no record with this sequence number was queued (it may have failed to queue)"));
            }

            task = _inFlightDone is not null && sequence <= _inFlightLast ? _inFlightDone.Task : _openDone.Task;
        }

        return task.WaitAsync(cancellationToken);
    }

    /// <summary>Appends a record and returns its sequence number once it is durable.</summary>
    public async ValueTask<long> AppendAsync(AuditEvent auditEvent, CancellationToken cancellationToken = default)
    {
        var sequence = Enqueue(auditEvent);
        await WaitDurableAsync(sequence, cancellationToken).ConfigureAwait(false);
        return sequence;
    }

    /// <summary>Writes everything queued, then closes the files.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
        }

        _signal.Release();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _writer.ConfigureAwait(false);
        }
        catch (IOException)
        {
            // Already reported to every waiter; closing must not throw.
        }

        await _segment.DisposeAsync().ConfigureAwait(false);
        await _directoryLock.DisposeAsync().ConfigureAwait(false);
        _signal.Dispose();
        _stop.Dispose();
    }

    /// <summary>One writer per directory: an exclusive lock file held while open (released by the OS if the process dies).</summary>
    private static FileStream LockDirectory(string directory)
    {
        var path = Path.Combine(directory, "LOCK");
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"audit log {directory} is open in another process ({path} is locked)", e);
        }
    }

    private static TaskCompletionSource NewCompletion() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
