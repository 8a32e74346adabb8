using System.Diagnostics;
using RawInfer.Engine.Scheduling;
using RawInfer.KvCache;

namespace RawInfer.Engine;

// The engine thread: wait for work, then step until idle.
public sealed partial class InferenceEngine
{
    private readonly List<EngineRequest> _ending = []; // scratch: requests cancelled or expired this step
    private bool _executeFailed;
    private string? _executeError;

    /// <summary>
    /// One iteration: take in new requests and cancellations, schedule, run the model on the batch, postprocess
    /// (sample, append, check stops, stream tokens out, free finished requests).
    /// </summary>
    internal void Step()
    {
        Intake();
        _scheduler.Schedule();
        Execute();
        Postprocess();
    }

    private void Loop()
    {
        try
        {
            WarmUp();
            _warmedUp.TrySetResult();
            while (true)
            {
                if (!_scheduler.HasWork && !_incoming.Reader.TryPeek(out _))
                {
                    OnIdle();
                    // Nothing to do: block (no spinning) until a request arrives or the engine is shut down.
                    if (!_incoming.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
                    {
                        break;
                    }
                }

                Step();
            }
        }
#pragma warning disable CA1031 // a broken invariant stops the loop; every request still gets a final chunk
        catch (Exception e)
#pragma warning restore CA1031
        {
            _fault = e;
            _warmedUp.TrySetException(e);
            _incoming.Writer.TryComplete();
            FailEverything(FinishReason.Error, "engine stopped: " + e.Message);
        }
        finally
        {
            _stopped.TrySetResult();
        }
    }

    /// <summary>Audits the allocator when idle if asked: no request is alive, so every block must be free.</summary>
    private void OnIdle()
    {
        if (!_options.CheckInvariantsWhenIdle)
        {
            return;
        }

        var blocks = _scheduler.Blocks;
        blocks.CheckInvariants();
        if (blocks.FreeBlocks != blocks.TotalBlocks || blocks.NumSequences != 0)
        {
            throw new KvCacheInvariantException(
                $"idle engine holds {blocks.UsedBlocks} blocks of {blocks.NumSequences} sequences");
        }
    }

    /// <summary>New requests join the waiting queue; cancelled and expired ones end (freeing their blocks).</summary>
    private void Intake()
    {
        while (_incoming.Reader.TryRead(out var request))
        {
            _scheduler.AddWaiting(request);
        }

        if (_abort)
        {
            FailEverything(FinishReason.Aborted, "the engine shut down");
            return;
        }

        var now = _time.GetTimestamp();
        _ending.Clear();
        CollectEnding(_scheduler.Waiting, now);
        CollectEnding(_scheduler.Running, now);
        foreach (var request in _ending)
        {
            if (request.CancelRequested)
            {
                var stage = request.Status == RequestStatus.Waiting ? "queued"
                    : request.NumGenerated == 0 ? "prefill" : "decode";
                _options.EventSink.OnEvent(new RequestCancelled(request.Context, _time.GetUtcNow(), stage));
                Finish(request, FinishReason.Cancelled, "cancelled while " + stage);
            }
            else
            {
                var which = now >= request.TotalDeadline ? "total" : "first-token";
                Finish(request, FinishReason.Timeout, which + " deadline passed");
            }
        }
    }

    private void CollectEnding(IReadOnlyList<EngineRequest> requests, long now)
    {
        for (var i = 0; i < requests.Count; i++) // indexed: foreach over the interface would box an enumerator per step
        {
            var request = requests[i];
            if (request.CancelRequested
                || now >= request.TotalDeadline
                || (request.FirstTokenTimestamp == 0 && now >= request.FirstTokenDeadline))
            {
                _ending.Add(request);
            }
        }
    }

    /// <summary>Flattens the scheduled work into the forward batch and runs the model on it.</summary>
    private void Execute()
    {
        _executeFailed = false;
        var scheduled = _scheduler.Scheduled;
        if (scheduled.Count == 0)
        {
            if (_scheduler.HasWork)
            {
                // Submit-time checks guarantee that an idle pool admits the head request; if not, stop loudly.
                throw new InvalidOperationException("the scheduler found work but scheduled nothing");
            }

            return;
        }

        var batch = _batch;
        var blocks = _scheduler.Blocks;
        batch.Clear();
        var row = 0;
        for (var s = 0; s < scheduled.Count; s++)
        {
            var (request, start, count) = scheduled[s];
            if (request.CountsAsQueued)
            {
                // First admission: the request leaves the waiting-queue bound.
                request.CountsAsQueued = false;
                request.FirstScheduledTimestamp = _time.GetTimestamp();
                ReleaseQueueSlot(request.PromptLength);
                _metrics.OnFirstScheduled(_time.GetElapsedTime(request.ArrivalTimestamp, request.FirstScheduledTimestamp));
            }

            batch.QueryStart[s] = row;
            for (var k = 0; k < count; k++)
            {
                batch.TokenIds[row + k] = request.Tokens[start + k];
                batch.Positions[row + k] = start + k;
            }

            blocks.WriteSlotMapping(request.SequenceId, start, batch.SlotMapping.AsSpan(row, count));
            var table = blocks.BlockTable(request.SequenceId);
            Debug.Assert(table.Length <= batch.MaxBlocksPerSequence, "a sequence never outgrows the model's context");
            table.CopyTo(batch.BlockTable(s));
            batch.ContextLengths[s] = start + count;
            row += count;
            if (scheduled[s].NeedsLogits)
            {
                batch.LogitRows[batch.NumLogitRows++] = row - 1;
            }
        }

        batch.QueryStart[scheduled.Count] = row;
        batch.NumTokens = row;
        batch.NumSequences = scheduled.Count;
        foreach (var copy in _scheduler.Copies)
        {
            _runner.CopyBlock(copy.Source, copy.Destination);
        }

        var started = _time.GetTimestamp();
        try
        {
            _runner.Execute(batch, _logits.AsSpan(0, batch.NumLogitRows * _vocabSize));
        }
        catch (Exception e) when (e is not KvCacheInvariantException and not OutOfMemoryException)
        {
            // A failing forward pass ends the requests in it, not the engine.
            _executeFailed = true;
            _executeError = "model runner failed: " + e.Message;
        }

        _metrics.OnForward(batch.NumTokens, _time.GetElapsedTime(started));
    }

    /// <summary>Ends every request (abort, or the loop stopping).</summary>
    private void FailEverything(FinishReason reason, string detail)
    {
        while (_incoming.Reader.TryRead(out var request))
        {
            _scheduler.AddWaiting(request);
        }

        _ending.Clear();
        _ending.AddRange(_scheduler.Waiting);
        _ending.AddRange(_scheduler.Running);
        foreach (var request in _ending)
        {
            try
            {
                Finish(request, reason, detail);
            }
#pragma warning disable CA1031 // best effort while stopping: the caller's stream must still end
            catch (Exception)
#pragma warning restore CA1031
            {
                request.Outbox.Abandon();
            }
        }
    }
}
