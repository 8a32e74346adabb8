namespace RawInfer.Safety.Audit;

public sealed partial class AuditLog
{
    /// <summary>
    /// Group commit: wait for work, take the whole queue, write it with one fsync, then wake every waiter of that batch.
    /// Records are encoded here, in sequence order, so the chain hash needs no lock.
    /// </summary>
    private async Task WriteLoopAsync()
    {
        while (true)
        {
            try
            {
                await _signal.WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Closing: drain what is queued, then leave.
            }

            List<(long Sequence, DateTimeOffset Timestamp, AuditEvent Event)> batch;
            TaskCompletionSource done;
            lock (_lock)
            {
                if (_open.Count == 0)
                {
                    if (_closed)
                    {
                        return;
                    }

                    continue;
                }

                batch = _open;
                _open = [];
                done = _openDone;
                _openDone = NewCompletion();
                _inFlightDone = done;
                _inFlightLast = batch[^1].Sequence;
            }

            try
            {
                WriteBatch(batch);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                TaskCompletionSource open;
                lock (_lock)
                {
                    _fault = e;
                    _inFlightDone = null;
                    open = _openDone;
                }

                done.TrySetException(e);
                open.TrySetException(e);
                return;
            }

            lock (_lock)
            {
                _durableSequence = batch[^1].Sequence;
                _inFlightDone = null;
            }

            done.TrySetResult();
        }
    }

    private void WriteBatch(List<(long Sequence, DateTimeOffset Timestamp, AuditEvent Event)> batch)
    {
        foreach (var (sequence, timestamp, e) in batch)
        {
            var record = AuditFormat.EncodeRecord(sequence, timestamp, e, _lastHash);
            if (_segment.Length > AuditFormat.HeaderSize && _segment.Length + record.Length > _options.SegmentBytes)
            {
                // Rotate: the old segment is made durable before the new one, whose header carries the chain on.
                _segment.Flush(flushToDisk: true);
                _segment.Dispose();
                _segment = CreateSegment(sequence, _lastHash);
            }

            _segment.Write(record);
            _lastHash = record[^AuditFormat.HashSize..];
            _sinceCheckpoint++;
        }

        _segment.Flush(flushToDisk: true);
        if (_sinceCheckpoint >= _options.CheckpointEvery)
        {
            AuditCheckpoints.Append(_directory, "checkpoint", batch[^1].Sequence, _lastHash);
            _sinceCheckpoint = 0;
        }
    }

    private FileStream CreateSegment(long firstSequence, byte[] previousHash)
    {
        var path = Path.Combine(_directory, AuditFormat.SegmentName(firstSequence));
        var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        stream.Write(AuditFormat.EncodeHeader(firstSequence, previousHash));
        stream.Flush(flushToDisk: true);
        return stream;
    }
}
