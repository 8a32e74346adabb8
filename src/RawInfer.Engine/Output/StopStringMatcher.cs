namespace RawInfer.Engine.Output;

/// <summary>
/// The first hold-back stage: finds a request's stop strings in the text as it streams, across token boundaries.
/// A pending tail that could still become a stop string is held back, so a stop string is never partly delivered.
/// </summary>
internal sealed class StopStringMatcher
{
    private readonly string[] _stops;

    public StopStringMatcher(IReadOnlyList<string> stops)
    {
        _stops = [.. stops];
    }

    /// <summary>
    /// Looks at the pending text. Returns the index of the earliest complete stop string, or -1 and in
    /// <paramref name="releasable"/> how many leading characters cannot be part of a stop string.
    /// </summary>
    public int Find(ReadOnlySpan<char> pending, out int releasable)
    {
        var match = -1;
        foreach (var stop in _stops)
        {
            var at = pending.IndexOf(stop.AsSpan(), StringComparison.Ordinal);
            if (at >= 0 && (match < 0 || at < match))
            {
                match = at;
            }
        }

        if (match >= 0)
        {
            releasable = match;
            return match;
        }

        // Hold back from the earliest position whose suffix is a proper prefix of some stop string. Earlier
        // suffixes are too long to be one (longer than every stop string), so only the last maxLen - 1 are tried.
        releasable = pending.Length;
        foreach (var stop in _stops)
        {
            var from = Math.Max(0, pending.Length - stop.Length + 1);
            for (var i = from; i < releasable; i++)
            {
                if (stop.AsSpan().StartsWith(pending[i..], StringComparison.Ordinal))
                {
                    releasable = i;
                    break;
                }
            }
        }

        return -1;
    }
}
