using System.Text;

namespace RawInfer.Safety.DenyList;

/// <summary>What a scan of pending raw text found.</summary>
/// <param name="ReleaseChars">Leading raw characters that can be released (no match found).</param>
/// <param name="MatchRawStart">Raw index where the text holding the first match begins, or -1.</param>
/// <param name="MatchRawEnd">Raw index just past the text holding the match.</param>
/// <param name="PatternIndex">Which pattern matched, or -1.</param>
/// <param name="EndsWithSpaceAtRelease">Whether the normalized text ends with a space at the release point.</param>
internal readonly record struct ScanResult(
    int ReleaseChars, int MatchRawStart, int MatchRawEnd, int PatternIndex, bool EndsWithSpaceAtRelease)
{
    public bool IsMatch => PatternIndex >= 0;
}

/// <summary>
/// Scans raw streamed text against normalized patterns and decides how much of it may leave.
/// </summary>
/// <remarks>
/// The raw text is cut into pieces at safe boundaries (<see cref="TextNormalizer.IsSafeBoundary"/>); each piece
/// normalizes on its own, so the pieces' forms concatenate to the whole text's form and every normalized character
/// belongs to exactly one raw piece. The last piece is unstable while more text may come (a combining mark or a
/// surrogate's second half can still change it), so only the pieces before it are scanned. Of those, a normalized
/// suffix of length <c>depth</c> (the automaton's state) could still start a match, so release stops at the last piece
/// boundary at or before <c>normalized length − depth</c>: no released character can be part of a later match, and a
/// match found is mapped back to the raw pieces it touches.
/// </remarks>
internal static class DenyListScanner
{
    /// <param name="matcher">The patterns.</param>
    /// <param name="raw">Pending raw text; it begins at a safe boundary (start of stream or a previous release point).</param>
    /// <param name="isFinal">No more text will come.</param>
    /// <param name="previousEndsWithSpace">Whether the normalized text released before <paramref name="raw"/> ended with a space.</param>
    public static ScanResult Scan(PatternMatcher matcher, ReadOnlySpan<char> raw, bool isFinal, bool previousEndsWithSpace)
    {
        if (matcher.IsEmpty)
        {
            return new ScanResult(raw.Length, -1, -1, -1, false);
        }

        var normalized = new StringBuilder(raw.Length + 8);
        var pieceRawStarts = new List<int>();
        var pieceNormStarts = new List<int>();
        var pieceSpaces = new List<bool>(); // normalized text ends with a space before this piece
        var lastWasSpace = previousEndsWithSpace;
        var state = 0;
        var start = 0;
        for (var k = 1; k <= raw.Length; k++)
        {
            var atEnd = k == raw.Length;
            if (atEnd ? !isFinal : !TextNormalizer.IsSafeBoundary(raw, k))
            {
                continue;
            }

            // The piece raw[start..k) is stable: normalize it and feed the automaton.
            pieceRawStarts.Add(start);
            pieceNormStarts.Add(normalized.Length);
            pieceSpaces.Add(lastWasSpace);
            var from = normalized.Length;
            TextNormalizer.AppendNormalized(raw[start..k], normalized, ref lastWasSpace);
            for (var n = from; n < normalized.Length; n++)
            {
                state = matcher.Step(state, normalized[n]);
                var pattern = matcher.MatchAt(state);
                if (pattern >= 0)
                {
                    var matchStart = n + 1 - matcher.Patterns[pattern].Length;
                    var piece = pieceNormStarts.Count - 1;
                    while (piece > 0 && pieceNormStarts[piece] > matchStart)
                    {
                        piece--;
                    }

                    return new ScanResult(0, pieceRawStarts[piece], k, pattern, false);
                }
            }

            start = k;
        }

        if (isFinal)
        {
            return new ScanResult(raw.Length, -1, -1, -1, lastWasSpace);
        }

        // `start` is the end of the stable text; its normalized length is `normalized.Length`.
        var limit = normalized.Length - matcher.Depth(state);
        pieceRawStarts.Add(start);
        pieceNormStarts.Add(normalized.Length);
        pieceSpaces.Add(lastWasSpace);
        var release = pieceNormStarts.Count - 1;
        while (release > 0 && pieceNormStarts[release] > limit)
        {
            release--;
        }

        return new ScanResult(pieceRawStarts[release], -1, -1, -1, release == 0 ? previousEndsWithSpace : pieceSpaces[release]);
    }
}
