using System.Text;
using RawInfer.Engine;

namespace RawInfer.Safety.DenyList;

/// <summary>
/// One output stream through the deny-list, holding its own pending text: push chunks (any split, even inside a
/// surrogate pair), get back the text that may be delivered. In <see cref="DenyAction.End"/> mode a match ends the
/// stream (<see cref="IsDenied"/>) and nothing pending is released; in <see cref="DenyAction.Redact"/> mode the raw
/// text holding the phrase is replaced by <see cref="DenyListPolicy.RedactionMarker"/>. It runs the same
/// <see cref="DenyListOutputGuard"/> the engine uses, driven the way the engine's output pipeline drives a guard, so
/// both paths deliver the same text. Not thread-safe.
/// </summary>
public sealed class DenyListStream
{
    private readonly DenyListOutputGuard _guard;
    private readonly StringBuilder _pending = new();

    internal DenyListStream(PatternMatcher matcher, DenyAction action)
    {
        _guard = new DenyListOutputGuard(matcher, action);
    }

    /// <summary>True once a match ended the stream (End mode).</summary>
    public bool IsDenied { get; private set; }

    /// <summary>Reason of the denial (which pattern index), when denied.</summary>
    public string? DenyReason { get; private set; }

    /// <summary>Number of phrases redacted so far (Redact mode).</summary>
    public int Redactions => _guard.Redactions;

    /// <summary>Adds a chunk; returns the text that may now be delivered (often empty).</summary>
    public string Push(ReadOnlySpan<char> chunk) => Run(chunk, isFinal: false);

    /// <summary>No more text: returns the rest that may be delivered.</summary>
    public string Finish() => Run([], isFinal: true);

    private string Run(ReadOnlySpan<char> chunk, bool isFinal)
    {
        if (IsDenied)
        {
            return string.Empty;
        }

        _pending.Append(chunk);
        var released = new StringBuilder();
        while (true)
        {
            var verdict = _guard.Inspect(_pending.ToString(), isFinal);
            if (verdict.IsDenied)
            {
                IsDenied = true;
                DenyReason = verdict.DenyReason;
                _pending.Clear();
                return released.ToString();
            }

            if (verdict.IsReplacement)
            {
                // The phrase's pieces become the marker; scanning resumes after them (a safe boundary).
                released.Append(verdict.Replacement);
                _pending.Remove(0, verdict.ReleaseChars);
                if (_pending.Length > 0)
                {
                    continue;
                }

                return released.ToString();
            }

            var n = isFinal ? _pending.Length : verdict.ReleaseChars;
            released.Append(_pending, 0, n);
            _pending.Remove(0, n);
            return released.ToString();
        }
    }
}
