using System.Collections.Concurrent;
using System.Globalization;

namespace RawInfer.Safety.DenyList;

/// <summary>What the output guard does when the stream matches a pattern.</summary>
public enum DenyAction
{
    /// <summary>End the stream with denied-by-policy; nothing of the phrase is delivered.</summary>
    End,

    /// <summary>Replace the phrase with <see cref="DenyListPolicy.RedactionMarker"/> and go on.</summary>
    Redact,
}

/// <summary>A deny-list hit: which pattern (normalized) and where in the normalized text it starts.</summary>
public sealed record DenyMatch(string Pattern, int NormalizedStart);

/// <summary>
/// The deny-list: global patterns (from a file) plus optional per-key lists, all matched in one pass on normalized
/// text. Immutable; reload by building a new one. Thread-safe.
/// </summary>
public sealed class DenyListPolicy
{
    private readonly PatternMatcher _global;
    private readonly IReadOnlyDictionary<string, string[]> _perKey;
    private readonly ConcurrentDictionary<string, PatternMatcher> _perKeyMatchers = new(StringComparer.Ordinal);

    /// <summary>Builds a policy from raw patterns (normalized here; blank ones dropped).</summary>
    public DenyListPolicy(IEnumerable<string> patterns, IReadOnlyDictionary<string, IReadOnlyList<string>>? perKeyPatterns = null, DenyAction action = DenyAction.End)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        var global = NormalizeAll(patterns);
        _global = new PatternMatcher(global);
        var perKey = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach (var (keyId, list) in perKeyPatterns ?? new Dictionary<string, IReadOnlyList<string>>())
        {
            perKey[keyId] = [.. global, .. NormalizeAll(list)];
        }

        _perKey = perKey;
        Action = action;
    }

    /// <summary>Text that replaces a phrase in <see cref="DenyAction.Redact"/> mode.</summary>
    public const string RedactionMarker = "[redacted]";

    /// <summary>An empty policy (matches nothing).</summary>
    public static DenyListPolicy Empty { get; } = new([]);

    public DenyAction Action { get; }

    /// <summary>Longest normalized global pattern: the most normalized characters a stream holds back (+ one piece).</summary>
    public int MaxPatternLength => _global.MaxPatternLength;

    /// <summary>
    /// Reads patterns from a file: one per line, '#' starts a comment line, blank lines ignored. Errors name the file.
    /// </summary>
    public static DenyListPolicy LoadFile(string path, IReadOnlyDictionary<string, IReadOnlyList<string>>? perKeyPatterns = null, DenyAction action = DenyAction.End)
    {
        var patterns = new List<string>();
        foreach (var line in File.ReadLines(path))
        {
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed.StartsWith('#'))
            {
                continue;
            }

            patterns.Add(trimmed);
        }

        return new DenyListPolicy(patterns, perKeyPatterns, action);
    }

    /// <summary>The first match in <paramref name="text"/> for this key's patterns, or null (the edge check at submit).</summary>
    public DenyMatch? Check(ReadOnlySpan<char> text, string? keyId = null)
    {
        var matcher = MatcherFor(keyId);
        if (matcher.IsEmpty)
        {
            return null;
        }

        var (start, pattern) = matcher.FindFirst(TextNormalizer.Normalize(text));
        return pattern < 0 ? null : new DenyMatch(matcher.Patterns[pattern], start);
    }

    /// <summary>A fresh streaming filter for one request's output.</summary>
    public DenyListStream CreateStream(string? keyId = null) => new(MatcherFor(keyId), Action);

    internal PatternMatcher MatcherFor(string? keyId)
    {
        if (keyId is null || !_perKey.TryGetValue(keyId, out var patterns))
        {
            return _global;
        }

        return _perKeyMatchers.GetOrAdd(keyId, _ => new PatternMatcher(patterns));
    }

    /// <summary>The reason text a denial carries: which pattern, by its index, never the phrase itself.</summary>
    internal static string Reason(string where, int patternIndex) =>
        string.Create(CultureInfo.InvariantCulture, $"{where} matched deny-list pattern #{patternIndex}");

    private static string[] NormalizeAll(IEnumerable<string> patterns)
    {
        var result = new List<string>();
        foreach (var pattern in patterns)
        {
            // Edge spaces are trimmed so a match never starts or ends on a collapsible space.
            var normalized = TextNormalizer.Normalize(pattern).Trim(' ');
            if (normalized.Length > 0 && !result.Contains(normalized))
            {
                result.Add(normalized);
            }
        }

        return [.. result];
    }
}
