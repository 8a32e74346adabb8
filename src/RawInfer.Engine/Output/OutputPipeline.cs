using RawInfer.Tokenizers;

namespace RawInfer.Engine.Output;

/// <summary>What one push through the pipeline produced.</summary>
internal enum PipelineState
{
    /// <summary>Text may still come.</summary>
    Open,

    /// <summary>A stop string matched; the text before it has been released.</summary>
    StopString,

    /// <summary>An output guard denied; nothing pending was released.</summary>
    Denied,
}

/// <summary>
/// One request's delivery path: decoder (whole UTF-8 characters only) → stop-string matcher → output guards →
/// <see cref="Released"/>. Every stage keeps its own pending text and releases a prefix of it into the next stage's,
/// so the hold-backs compose: a character reaches <see cref="Released"/> only when every stage has let it go. A guard
/// may replace a pending prefix instead (a redaction): the replacement goes on to the next stage, and the engine
/// withholds the ids of the tokens not yet delivered (<see cref="TakeReplaced"/>). Every stage is a reused buffer,
/// so a push allocates nothing once the buffers have grown to the request's working size. Runs on the engine thread.
/// </summary>
internal sealed class OutputPipeline
{
    private readonly IncrementalDetokenizer _decoder;
    private readonly StopStringMatcher? _stops;
    private readonly IOutputGuard[] _guards;
    private readonly SpanBuffer<char>[] _pending; // (1 + guards) text each stage holds; [0] is the stop matcher's
    private readonly SpanBuffer<char> _released = new();
    private bool _replacedSinceTaken;

    public OutputPipeline(ITokenizer tokenizer, int previousTokenId, IReadOnlyList<string> stopStrings, IOutputGuard[] guards)
    {
        _decoder = new IncrementalDetokenizer(tokenizer, previousTokenId);
        _stops = stopStrings.Count > 0 ? new StopStringMatcher(stopStrings) : null;
        _guards = guards;
        _pending = new SpanBuffer<char>[1 + guards.Length];
        for (var i = 0; i < _pending.Length; i++)
        {
            _pending[i] = new SpanBuffer<char>();
        }
    }

    public PipelineState State { get; private set; }

    /// <summary>Reason given by the denying guard.</summary>
    public string? DenyReason { get; private set; }

    /// <summary>Replacements (redactions) the guards made so far.</summary>
    public int Replacements { get; private set; }

    /// <summary>Text every stage has let go and the caller has not taken yet (<see cref="ClearReleased"/>).</summary>
    public ReadOnlySpan<char> Released => _released.Span;

    /// <summary>True when some text (or an incomplete character) is held back in a stage.</summary>
    public bool IsHoldingBack
    {
        get
        {
            if (_decoder.PendingByteCount > 0)
            {
                return true;
            }

            foreach (var pending in _pending)
            {
                if (pending.Count > 0)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>The caller has taken <see cref="Released"/>.</summary>
    public void ClearReleased() => _released.Clear();

    /// <summary>
    /// True once after a push or flush in which a guard replaced text; the caller then withholds every undelivered
    /// token id, since those tokens may hold the replaced text.
    /// </summary>
    public bool TakeReplaced()
    {
        var replaced = _replacedSinceTaken;
        _replacedSinceTaken = false;
        return replaced;
    }

    /// <summary>Feeds a generated token; what every stage lets go is appended to <see cref="Released"/> (often nothing).</summary>
    public void Feed(int tokenId)
    {
        if (State != PipelineState.Open)
        {
            return;
        }

        _pending[0].Append(_decoder.PushChars(tokenId));
        Run(isFinal: false);
    }

    /// <summary>The request is ending: flushes every stage (unless a stop string or a guard ended it first).</summary>
    public void Flush()
    {
        if (State != PipelineState.Open)
        {
            return;
        }

        _pending[0].Append(_decoder.FlushChars());
        Run(isFinal: true);
    }

    private void Run(bool isFinal)
    {
        var releasedBefore = _released.Count;
        var stage0 = _pending[0];
        int release;
        if (_stops is null)
        {
            release = stage0.Count;
        }
        else if (_stops.Find(stage0.Span, out release) >= 0)
        {
            State = PipelineState.StopString;
            isFinal = true; // nothing after the stop string is ever looked at
        }
        else if (isFinal)
        {
            release = stage0.Count;
        }

        NextOf(0).Append(stage0.Span[..release]);
        if (State == PipelineState.StopString)
        {
            stage0.Clear();
        }
        else
        {
            stage0.RemovePrefix(release);
        }

        for (var g = 0; g < _guards.Length; g++)
        {
            if (!RunGuard(g, isFinal))
            {
                _released.Truncate(releasedBefore); // a denial releases nothing of this push
                return;
            }
        }
    }

    /// <summary>One guard stage: passes on what it lets go (or its replacements); false when it denied.</summary>
    private bool RunGuard(int g, bool isFinal)
    {
        var pending = _pending[g + 1];
        var next = NextOf(g + 1);
        while (true)
        {
            var verdict = _guards[g].Inspect(pending.Span, isFinal);
            if (verdict.IsDenied)
            {
                State = PipelineState.Denied;
                DenyReason = verdict.DenyReason;
                return false;
            }

            if (verdict.IsReplacement)
            {
                // Each replacement consumes at least one character, so this loop ends within pending.Count rounds.
                var consumed = Math.Clamp(verdict.ReleaseChars, Math.Min(1, pending.Count), pending.Count);
                next.Append(verdict.Replacement.AsSpan());
                pending.RemovePrefix(consumed);
                Replacements++;
                _replacedSinceTaken = true;
                if (pending.Count > 0)
                {
                    continue;
                }

                return true;
            }

            var n = Math.Clamp(verdict.ReleaseChars, 0, pending.Count);
            if (isFinal)
            {
                n = pending.Count; // a guard that did not deny at the end lets the rest go
            }

            next.Append(pending.Span[..n]);
            pending.RemovePrefix(n);
            return true;
        }
    }

    /// <summary>Where stage <paramref name="stage"/> releases to: the next guard's pending text, or the caller.</summary>
    private SpanBuffer<char> NextOf(int stage) => stage + 1 < _pending.Length ? _pending[stage + 1] : _released;
}
