namespace RawInfer.Engine.Scheduling;

// Ordering of the queues, preemption and releasing blocks.
internal sealed partial class Scheduler
{
    /// <summary>
    /// Sorts running requests best first: by priority (priority policy), then arrival. Preemption takes victims from
    /// the end, so the lowest priority, latest arrival goes first. Insertion sort: the list is nearly sorted already.
    /// </summary>
    private void SortRunning()
    {
        for (var i = 1; i < _running.Count; i++)
        {
            var item = _running[i];
            var j = i - 1;
            while (j >= 0 && RanksBefore(item, _running[j]))
            {
                _running[j + 1] = _running[j];
                j--;
            }

            _running[j + 1] = item;
        }
    }

    private bool RanksBefore(EngineRequest a, EngineRequest b)
    {
        if (_policy == SchedulingPolicy.Priority && a.Request.Priority != b.Request.Priority)
        {
            return a.Request.Priority > b.Request.Priority;
        }

        return a.ArrivalTimestamp < b.ArrivalTimestamp
            || (a.ArrivalTimestamp == b.ArrivalTimestamp && a.SequenceId < b.SequenceId);
    }

    /// <summary>
    /// The waiting request to admit next. FCFS: the head (preempted requests are put back there). Priority: the
    /// highest priority aged by time waited, preempted requests first among equals, then the earliest arrival.
    /// </summary>
    private int NextWaitingIndex()
    {
        if (_policy == SchedulingPolicy.Fcfs)
        {
            return 0;
        }

        var now = _time.GetTimestamp();
        var frequency = _time.TimestampFrequency;
        var best = 0;
        var bestPriority = _waiting[0].EffectivePriority(now, _agingPerSecond, frequency);
        for (var i = 1; i < _waiting.Count; i++)
        {
            var candidate = _waiting[i];
            var priority = candidate.EffectivePriority(now, _agingPerSecond, frequency);
            var current = _waiting[best];
            var better = priority > bestPriority
                || (priority == bestPriority && candidate.Preemptions > 0 && current.Preemptions == 0)
                || (priority == bestPriority && (candidate.Preemptions > 0) == (current.Preemptions > 0)
                    && RanksBefore(candidate, current));
            if (better)
            {
                best = i;
                bestPriority = priority;
            }
        }

        return best;
    }

    /// <summary>Recompute preemption: drop the request's blocks and requeue it at the front.</summary>
    private void Preempt(EngineRequest victim)
    {
        _running.Remove(victim);
        ReleaseBlocks(victim);
        victim.Preemptions++;
        victim.Status = RequestStatus.Waiting;
        _waiting.Insert(0, victim);
        Preempted.Add(victim);
    }

    private void ReleaseBlocks(EngineRequest request)
    {
        if (request.HasBlocks)
        {
            _blocks.Free(request.SequenceId);
            request.HasBlocks = false;
        }

        request.NumComputedTokens = 0;
    }
}
