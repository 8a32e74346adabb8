using System.Text;

namespace RawInfer.Safety.DenyList;

/// <summary>
/// One output stream through the deny-list, holding its own pending text: push chunks (any split, even inside a
/// surrogate pair), get back the text that may be delivered. In <see cref="DenyAction.End"/> mode a match ends the
/// stream (<see cref="IsDenied"/>) and nothing pending is released; in <see cref="DenyAction.Redact"/> mode the raw
/// text holding the phrase is replaced by <see cref="DenyListPolicy.RedactionMarker"/>. Not thread-safe.
/// </summary>
public sealed class DenyListStream
{
    private readonly PatternMatcher _matcher;
    private readonly DenyAction _action;
    private readonly StringBuilder _pending = new();
    private bool _endsWithSpace;

    internal DenyListStream(PatternMatcher matcher, DenyAction action)
    {
        _matcher = matcher;
        _action = action;
    }

    /// <summary>True once a match ended the stream (End mode).</summary>
    public bool IsDenied { get; private set; }

    /// <summary>Reason of the denial (which pattern index), when denied.</summary>
    public string? DenyReason { get; private set; }

    /// <summary>Number of phrases redacted so far (Redact mode).</summary>
    public int Redactions { get; private set; }

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
            var text = _pending.ToString();
            var scan = DenyListScanner.Scan(_matcher, text, isFinal, _endsWithSpace);
            if (!scan.IsMatch)
            {
                released.Append(text, 0, scan.ReleaseChars);
                _pending.Remove(0, scan.ReleaseChars);
                _endsWithSpace = scan.EndsWithSpaceAtRelease;
                return released.ToString();
            }

            if (_action == DenyAction.End)
            {
                IsDenied = true;
                DenyReason = DenyListPolicy.Reason("output", scan.PatternIndex);
                _pending.Clear();
                return released.ToString();
            }

            // Redact: the raw pieces holding the phrase become the marker; scanning resumes after them (a safe boundary).
            released.Append(text, 0, scan.MatchRawStart).Append(DenyListPolicy.RedactionMarker);
            _pending.Remove(0, scan.MatchRawEnd);
            _endsWithSpace = false;
            Redactions++;
        }
    }
}
