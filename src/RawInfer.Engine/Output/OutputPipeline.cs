using System.Text;
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
/// One request's delivery path: detokenizer (whole UTF-8 characters only) → stop-string matcher → output guards →
/// released text. Every stage keeps its own pending text and releases a prefix of it, so the hold-backs compose: a
/// character reaches the caller only when every stage has let it go. A guard may replace a pending prefix instead
/// (a redaction): the replacement goes on to the next guard, and the engine withholds the ids of the tokens not yet
/// delivered (<see cref="TakeReplaced"/>). Runs on the engine thread.
/// </summary>
internal sealed class OutputPipeline
{
    private readonly IncrementalDetokenizer _detokenizer;
    private readonly StopStringMatcher? _stops;
    private readonly IOutputGuard[] _guards;
    private readonly StringBuilder[] _pending; // (1 + guards) text each stage holds; [0] is the stop matcher's
    private char[] _scratch = new char[64];
    private bool _replacedSinceTaken;

    public OutputPipeline(ITokenizer tokenizer, int previousTokenId, IReadOnlyList<string> stopStrings, IOutputGuard[] guards)
    {
        _detokenizer = new IncrementalDetokenizer(tokenizer, previousTokenId);
        _stops = stopStrings.Count > 0 ? new StopStringMatcher(stopStrings) : null;
        _guards = guards;
        _pending = new StringBuilder[1 + guards.Length];
        for (var i = 0; i < _pending.Length; i++)
        {
            _pending[i] = new StringBuilder();
        }
    }

    public PipelineState State { get; private set; }

    /// <summary>Reason given by the denying guard.</summary>
    public string? DenyReason { get; private set; }

    /// <summary>Replacements (redactions) the guards made so far.</summary>
    public int Replacements { get; private set; }

    /// <summary>True when some text (or an incomplete character) is held back in a stage.</summary>
    public bool IsHoldingBack
    {
        get
        {
            if (_detokenizer.PendingByteCount > 0)
            {
                return true;
            }

            foreach (var pending in _pending)
            {
                if (pending.Length > 0)
                {
                    return true;
                }
            }

            return false;
        }
    }

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

    /// <summary>Feeds a generated token; returns the text every stage released (often empty).</summary>
    public string Push(int tokenId) => Run(_detokenizer.Push(tokenId), isFinal: false);

    /// <summary>The request is ending: flushes every stage (unless a stop string or a guard ended it first).</summary>
    public string Finish() => State == PipelineState.Open ? Run(_detokenizer.Flush(), isFinal: true) : string.Empty;

    private string Run(string text, bool isFinal)
    {
        if (State != PipelineState.Open)
        {
            return string.Empty;
        }

        var stage0 = _pending[0].Append(text);
        int release;
        if (_stops is null)
        {
            release = stage0.Length;
        }
        else if (_stops.Find(View(stage0), out release) >= 0)
        {
            State = PipelineState.StopString;
            isFinal = true; // nothing after the stop string is ever looked at
            stage0.Length = release;
        }
        else if (isFinal)
        {
            release = stage0.Length;
        }

        var carry = stage0.ToString(0, release);
        stage0.Remove(0, release);
        if (State == PipelineState.StopString)
        {
            stage0.Clear();
        }

        for (var g = 0; g < _guards.Length; g++)
        {
            var released = RunGuard(g, carry, isFinal);
            if (released is null)
            {
                return string.Empty;
            }

            carry = released;
        }

        return carry;
    }

    /// <summary>One guard stage: returns the text it lets go on, or null when it denied.</summary>
    private string? RunGuard(int g, string received, bool isFinal)
    {
        var pending = _pending[g + 1].Append(received);
        StringBuilder? replaced = null; // only allocated when the guard replaces text
        while (true)
        {
            var verdict = _guards[g].Inspect(View(pending), isFinal);
            if (verdict.IsDenied)
            {
                State = PipelineState.Denied;
                DenyReason = verdict.DenyReason;
                return null;
            }

            if (verdict.IsReplacement)
            {
                // Each replacement consumes at least one character, so this loop ends within pending.Length rounds.
                var consumed = Math.Clamp(verdict.ReleaseChars, Math.Min(1, pending.Length), pending.Length);
                (replaced ??= new StringBuilder()).Append(verdict.Replacement);
                pending.Remove(0, consumed);
                Replacements++;
                _replacedSinceTaken = true;
                if (pending.Length > 0)
                {
                    continue;
                }

                return replaced.ToString();
            }

            var n = Math.Clamp(verdict.ReleaseChars, 0, pending.Length);
            if (isFinal)
            {
                n = pending.Length; // a guard that did not deny at the end lets the rest go
            }

            var text = pending.ToString(0, n);
            pending.Remove(0, n);
            return replaced is null ? text : replaced.Append(text).ToString();
        }
    }

    /// <summary>The builder's text as a span (copied into a reused buffer; guards see a contiguous span).</summary>
    private ReadOnlySpan<char> View(StringBuilder text)
    {
        if (_scratch.Length < text.Length)
        {
            _scratch = new char[Math.Max(text.Length, _scratch.Length * 2)];
        }

        text.CopyTo(0, _scratch, text.Length);
        return _scratch.AsSpan(0, text.Length);
    }
}
