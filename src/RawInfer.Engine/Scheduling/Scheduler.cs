using System.Diagnostics;
using RawInfer.KvCache;

namespace RawInfer.Engine.Scheduling;

/// <summary>
/// Decides, at every step, which requests run and how many tokens each computes (Orca iteration-level scheduling,
/// vLLM v1 style): running requests first, then waiting ones, within a token budget and a sequence budget. Decode
/// tokens and prefill chunks share a step; long prompts are split across steps. Every running decode is served
/// before any prefill chunk, and prefill chunks share a smaller budget of their own (Sarathi-style), so a step that
/// takes in prompts delays the decodes in it by a bounded amount. When blocks run out, the lowest priority, latest
/// arrival running request is preempted (recompute: blocks freed, requeued at the front); under the priority policy a
/// waiting request may also preempt running ones of lower priority. Owned by the engine thread.
/// </summary>
internal sealed partial class Scheduler
{
    private readonly BlockManager _blocks;
    private readonly int _maxBatchedTokens;
    private readonly int _maxRunning;
    private readonly int _maxPrefillTokens; // 0: no budget of its own
    private readonly int _longPrefillThreshold; // 0: no per-request cap
    private readonly bool _priorityPreemption;
    private readonly SchedulingPolicy _policy;
    private readonly BatchingMode _batching;
    private readonly double _agingPerSecond;
    private readonly TimeProvider _time;

    // (blocks) true once every slot of the block has K/V. The allocator publishes a full block to the prefix cache
    // as soon as its token ids are known; a prefix hit only skips blocks whose K/V has actually been computed.
    private readonly bool[] _computed;

    private readonly List<EngineRequest> _waiting = [];
    private readonly List<EngineRequest> _running = [];

    // StaticPadded: finished requests whose rows the batch keeps computing until its last running request ends.
    private readonly List<EngineRequest> _padRows = [];

    public Scheduler(BlockManager blocks, EngineOptions options)
    {
        _blocks = blocks;
        _maxBatchedTokens = options.MaxBatchedTokens;
        _maxRunning = options.MaxRunningSequences;
        _maxPrefillTokens = options.MaxPrefillTokensPerStep;
        _longPrefillThreshold = options.LongPrefillTokenThreshold;
        _priorityPreemption = options.PriorityPreemption;
        _policy = options.Policy;
        _batching = options.Batching;
        _agingPerSecond = options.AgingPerSecond;
        _time = options.TimeProvider;
        _computed = new bool[blocks.TotalBlocks];
    }

    /// <summary>This step's work, in batch order; refilled by <see cref="Schedule"/>.</summary>
    public List<ScheduledSequence> Scheduled { get; } = [];

    /// <summary>Requests preempted by the last <see cref="Schedule"/>.</summary>
    public List<EngineRequest> Preempted { get; } = [];

    /// <summary>Copy-on-write block copies the runner must do before this step's forward pass.</summary>
    public List<BlockCopy> Copies { get; } = [];

    public IReadOnlyList<EngineRequest> Waiting => _waiting;

    public IReadOnlyList<EngineRequest> Running => _running;

    /// <summary>Finished rows a <see cref="BatchingMode.StaticPadded"/> batch still computes (empty otherwise).</summary>
    public IReadOnlyList<EngineRequest> PadRows => _padRows;

    public BlockManager Blocks => _blocks;

    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;

    /// <summary>Prompt tokens looked up at admission, and those whose computed K/V was reused.</summary>
    public long PrefixQueryTokens { get; private set; }

    public long PrefixHitTokens { get; private set; }

    /// <summary>Queues a new request behind the others.</summary>
    public void AddWaiting(EngineRequest request)
    {
        request.Status = RequestStatus.Waiting;
        _waiting.Add(request);
    }

    /// <summary>Picks this step's work: fills <see cref="Scheduled"/>, <see cref="Preempted"/> and <see cref="Copies"/>.</summary>
    public void Schedule()
    {
        Scheduled.Clear();
        Preempted.Clear();
        Copies.Clear();
        _preemptedForMemory = false;
        SortRunning();
        var continuous = _batching == BatchingMode.Continuous;
        var admitFirst = continuous && _priorityPreemption && _policy == SchedulingPolicy.Priority ? PreemptForPriority() : null;
        var budget = _maxBatchedTokens;
        var prefillBudget = continuous && _maxPrefillTokens > 0 ? _maxPrefillTokens : int.MaxValue;
        _decodesAhead = CountDecodes();

        // Running requests first, in rank order. A decode takes its one token; a prefill chunk takes what is left
        // after the prefill budget and the tokens kept for the decodes ranked below it.
        for (var i = 0; i < _running.Count && budget > 0;)
        {
            var request = _running[i];
            var remaining = request.NumTokens - request.NumComputedTokens;
            Debug.Assert(remaining > 0, "a running request always has a token to compute");
            int numTokens;
            if (remaining == 1)
            {
                _decodesAhead--;
                numTokens = 1;
            }
            else
            {
                numTokens = ChunkSize(remaining, Math.Min(prefillBudget, budget - _decodesAhead), continuous);
                if (numTokens <= 0)
                {
                    i++;
                    continue; // no room this step; it keeps its blocks and its rank
                }
            }

            if (!ReserveSlots(request, request.NumComputedTokens + numTokens))
            {
                continue; // the request preempted itself; the list shifted under i
            }

            Scheduled.Add(new ScheduledSequence(request, request.NumComputedTokens, numTokens));
            budget -= numTokens;
            prefillBudget -= remaining > 1 ? numTokens : 0;
            i++;
        }

        SchedulePadRows(ref budget);

        // Then waiting requests, unless this step had to preempt (memory is short) or a static batch is in flight.
        if (_preemptedForMemory || (!continuous && _running.Count > 0))
        {
            return;
        }

        // A static batch takes in every request it has room for at once, whatever the step's token budget: those past
        // the budget start their prompts in the next steps (as running requests), and nobody joins until it ends.
        while ((!continuous || (budget > 0 && prefillBudget > 0)) && _running.Count < _maxRunning && _waiting.Count > 0)
        {
            var index = admitFirst is null ? NextWaitingIndex() : _waiting.IndexOf(admitFirst);
            admitFirst = null;
            var request = _waiting[index];
            if (!_blocks.CanAllocate(request.History))
            {
                break; // keep the order: nobody overtakes the request at the head
            }

            _waiting.RemoveAt(index);
            Admit(request);
            var remaining = request.NumTokens - request.NumComputedTokens;
            var numTokens = remaining == 1 ? Math.Min(1, budget) : ChunkSize(remaining, Math.Min(prefillBudget, budget), continuous);
            if (numTokens == 0)
            {
                continue; // admitted to the static batch; its prompt starts when a step has room
            }

            Scheduled.Add(new ScheduledSequence(request, request.NumComputedTokens, numTokens));
            budget -= numTokens;
            prefillBudget -= remaining > 1 ? numTokens : 0;
        }
    }

    /// <summary>Records the step's computed tokens and marks blocks whose K/V is now complete.</summary>
    public void OnExecuted()
    {
        var blockSize = _blocks.BlockSize;
        foreach (var step in Scheduled)
        {
            var request = step.Request;
            if (request.IsPadRow)
            {
                continue; // it recomputed a position it already had
            }

            var computed = step.StartPosition + step.NumTokens;
            var table = _blocks.BlockTable(request.SequenceId);
            for (var b = step.StartPosition / blockSize; b < computed / blockSize; b++)
            {
                _computed[table[b]] = true;
            }

            request.NumComputedTokens = computed;
        }
    }

    /// <summary>
    /// Takes a finished request out of the queues and frees its blocks; in a <see cref="BatchingMode.StaticPadded"/>
    /// batch that is still running, a request that has K/V up to its last token keeps its row (and blocks) instead.
    /// </summary>
    public void Remove(EngineRequest request)
    {
        var wasRunning = request.Status == RequestStatus.Running;
        if (wasRunning)
        {
            _running.Remove(request);
        }
        else if (request.Status == RequestStatus.Waiting)
        {
            _waiting.Remove(request);
        }

        request.Status = RequestStatus.Finished;
        if (wasRunning && _batching == BatchingMode.StaticPadded && _running.Count > 0 && request.HasBlocks
            && request.NumComputedTokens == request.NumTokens - 1)
        {
            request.IsPadRow = true;
            _padRows.Add(request);
            return;
        }

        ReleaseBlocks(request);
        if (_running.Count == 0)
        {
            ReleasePadRows(); // the batch is over
        }
    }

    private void Admit(EngineRequest request)
    {
        var cached = _blocks.Allocate(request.SequenceId, request.History, expectedTokens: request.Tokens.Length);
        request.HasBlocks = true;
        var table = _blocks.BlockTable(request.SequenceId);
        var hitBlocks = cached / _blocks.BlockSize;

        // Reuse hit blocks only up to the first one whose K/V is not computed yet (its writer may still be in
        // prefill, or was preempted before computing it); from there this request computes the blocks itself.
        var usable = 0;
        while (usable < hitBlocks && _computed[table[usable]])
        {
            usable++;
        }

        for (var b = hitBlocks; b < table.Length; b++)
        {
            _computed[table[b]] = false; // fresh blocks hold nothing yet
        }

        request.NumComputedTokens = usable * _blocks.BlockSize;
        if (request.Preemptions == 0)
        {
            request.CachedPromptTokens = request.NumComputedTokens;
            PrefixQueryTokens += request.NumTokens;
            PrefixHitTokens += request.NumComputedTokens;
        }

        request.Status = RequestStatus.Running;
        _running.Add(request);
    }

    /// <summary>
    /// Makes the block manager hold the request's tokens up to <paramref name="tokens"/>, preempting the lowest-ranked
    /// running requests while blocks are short. False when the request itself had to be preempted.
    /// </summary>
    private bool ReserveSlots(EngineRequest request, int tokens)
    {
        var held = _blocks.NumTokens(request.SequenceId);
        var missing = tokens - held;
        if (missing <= 0)
        {
            return true;
        }

        while (!_blocks.CanAppend(request.SequenceId, missing))
        {
            if (_padRows.Count > 0)
            {
                DropPadRow(_padRows.Count - 1); // a padded batch's finished rows give way to live ones
                continue;
            }

            var victim = _running[^1]; // running is sorted best first; the last has not been scheduled yet
            if (!ReferenceEquals(victim, request) && victim.NumTokens - victim.NumComputedTokens == 1)
            {
                _decodesAhead--; // its reserved token is free again
            }

            _preemptedForMemory = true;
            Preempt(victim);
            if (ReferenceEquals(victim, request))
            {
                return false;
            }
        }

        AppendSlots(request, held, missing);
        return true;
    }

    /// <summary>Appends <paramref name="missing"/> token slots (blocks known to be free) and records their copies.</summary>
    private void AppendSlots(EngineRequest request, int held, int missing)
    {
        var before = _blocks.BlockTable(request.SequenceId).Length;
        var copy = _blocks.Append(request.SequenceId, request.Tokens.AsSpan(held, missing));
        if (copy.IsNeeded)
        {
            Copies.Add(copy);
        }

        var table = _blocks.BlockTable(request.SequenceId);
        for (var b = before; b < table.Length; b++)
        {
            _computed[table[b]] = false;
        }
    }

    /// <summary>
    /// StaticPadded: every finished row of the batch computes its last position again (same token, same K/V), as a
    /// fixed-shape batch computes each row until the batch ends. A row that would need a block the pool lacks is
    /// dropped rather than preempting a live request for it, and live requests short of blocks drop pad rows first.
    /// </summary>
    private void SchedulePadRows(ref int budget)
    {
        if (_padRows.Count == 0)
        {
            return;
        }

        if (_running.Count == 0)
        {
            ReleasePadRows(); // preemption emptied the batch
            return;
        }

        for (var i = 0; i < _padRows.Count && budget > 0;)
        {
            var row = _padRows[i];
            var held = _blocks.NumTokens(row.SequenceId);
            if (held < row.NumTokens && !_blocks.CanAppend(row.SequenceId, row.NumTokens - held))
            {
                DropPadRow(i);
                continue;
            }

            if (held < row.NumTokens)
            {
                AppendSlots(row, held, row.NumTokens - held);
            }

            Scheduled.Add(new ScheduledSequence(row, row.NumTokens - 1, 1));
            budget--;
            i++;
        }
    }

    private void DropPadRow(int index)
    {
        var row = _padRows[index];
        _padRows.RemoveAt(index);
        ReleaseBlocks(row);
    }

    private void ReleasePadRows()
    {
        foreach (var row in _padRows)
        {
            ReleaseBlocks(row);
        }

        _padRows.Clear();
    }
}
