namespace RawInfer.Engine.Scheduling;

// The per-step budget rules (decodes before prefill chunks, chunk sizes) and priority preemption of running work.
internal sealed partial class Scheduler
{
    private bool _preemptedForMemory; // this step preempted because blocks ran out: admit nobody new
    private int _decodesAhead; // running decodes not yet visited this step; their tokens are kept out of prefill chunks

    /// <summary>Running requests with exactly one token to compute (decodes, and one-token prompts).</summary>
    private int CountDecodes()
    {
        var decodes = 0;
        foreach (var request in _running)
        {
            decodes += request.NumTokens - request.NumComputedTokens == 1 ? 1 : 0;
        }

        return decodes;
    }

    /// <summary>Tokens of a prefill chunk: what remains, within the room left and the per-request cap.</summary>
    private int ChunkSize(int remaining, int room, bool continuous)
    {
        var numTokens = Math.Min(remaining, room);
        return continuous && _longPrefillThreshold > 0 ? Math.Min(numTokens, _longPrefillThreshold) : numTokens;
    }

    /// <summary>
    /// Priority policy: when the waiting request that ranks first is kept out by the sequence budget or by blocks,
    /// preempts running requests of strictly lower base priority (the lowest ranked first) until it fits, if that
    /// can make it fit at all. Base priorities, not aged ones, decide: a victim can never preempt its preemptor back,
    /// so requests do not trade places step after step. Returns the request to admit first this step, or null.
    /// </summary>
    private EngineRequest? PreemptForPriority()
    {
        if (_waiting.Count == 0 || _running.Count == 0)
        {
            return null;
        }

        var candidate = _waiting[NextWaitingIndex()];
        var priority = candidate.Request.Priority;
        if (_running[^1].Request.Priority >= priority || !IsKeptOut(candidate))
        {
            return null;
        }

        if (!_blocks.CanAllocate(candidate.History) && !FitsAfterPreempting(candidate))
        {
            return null; // even every lower-priority victim would not make room: preempt nobody for nothing
        }

        while (_running.Count > 0 && _running[^1].Request.Priority < priority && IsKeptOut(candidate))
        {
            Preempt(_running[^1]);
        }

        return candidate;
    }

    private bool IsKeptOut(EngineRequest candidate) =>
        _running.Count >= _maxRunning || !_blocks.CanAllocate(candidate.History);

    /// <summary>
    /// Whether the candidate's prompt would fit once every running request of lower priority is gone: the blocks
    /// only they hold come back. Ignores prefix hits, which only make it fit better.
    /// </summary>
    private bool FitsAfterPreempting(EngineRequest candidate)
    {
        long free = _blocks.FreeBlocks;
        for (var i = _running.Count - 1; i >= 0 && _running[i].Request.Priority < candidate.Request.Priority; i--)
        {
            free += _blocks.CountBlocksReleasedBy(_running[i].SequenceId);
        }

        var needed = ((long)candidate.NumTokens + _blocks.BlockSize - 1) / _blocks.BlockSize;
        return free - needed >= _blocks.WatermarkBlocks;
    }
}
