using RawInfer.Engine;

namespace RawInfer.Safety.DenyList;

/// <summary>
/// The engine's request hook: the prompt after tokenization and templating (text, or the prompt tokens decoded) is
/// checked against the request key's deny-list; a match refuses the request before any model work.
/// </summary>
public sealed class DenyListRequestGuard : IRequestGuard
{
    private readonly Func<DenyListPolicy> _policy;
    private readonly Func<IReadOnlyList<int>, string>? _decode;

    /// <param name="policy">Current policy (a function, so a reload takes effect for the next request).</param>
    /// <param name="decodeTokens">Turns prompt token ids into text when the request came without text.</param>
    public DenyListRequestGuard(Func<DenyListPolicy> policy, Func<IReadOnlyList<int>, string>? decodeTokens = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        _decode = decodeTokens;
    }

    public string Name => "deny-list";

    public ValueTask<GuardVerdict> CheckAsync(RequestGuardContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var text = context.PromptText ?? _decode?.Invoke(context.PromptTokenIds);
        if (text is null)
        {
            return ValueTask.FromResult(GuardVerdict.Allow);
        }

        var policy = _policy();
        var matcher = policy.MatcherFor(context.Request.KeyId);
        var (_, pattern) = matcher.FindFirst(TextNormalizer.Normalize(text));
        return ValueTask.FromResult(pattern < 0 ? GuardVerdict.Allow : GuardVerdict.Deny(DenyListPolicy.Reason("prompt", pattern)));
    }
}

/// <summary>
/// The engine's per-request output hook: holds back the raw tail whose normalized form could still start a denied
/// phrase (at most the longest pattern − 1 normalized characters, plus a piece that normalization may still change,
/// such as a character a combining mark could join or half a surrogate pair). On a match the policy's
/// <see cref="DenyListPolicy.Action"/> decides: <see cref="DenyAction.End"/> denies, which ends the stream with
/// denied-by-policy and releases nothing pending; <see cref="DenyAction.Redact"/> replaces the raw text holding the
/// phrase with <see cref="DenyListPolicy.RedactionMarker"/> (<see cref="OutputVerdict.Replace"/>), releases the text
/// before it, and scans on after it. Either way no character of a matched phrase is ever released, and the engine
/// withholds the token ids of redacted text. One instance per request; not thread-safe.
/// </summary>
public sealed class DenyListOutputGuard : IOutputGuard
{
    private readonly PatternMatcher _matcher;
    private readonly DenyAction _action;
    private bool _endsWithSpace;

    /// <summary>A guard for one request, with the patterns of <paramref name="keyId"/> and the policy's action.</summary>
    public DenyListOutputGuard(DenyListPolicy policy, string? keyId)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _matcher = policy.MatcherFor(keyId);
        _action = policy.Action;
    }

    internal DenyListOutputGuard(PatternMatcher matcher, DenyAction action)
    {
        _matcher = matcher;
        _action = action;
    }

    /// <summary>Number of phrases redacted so far (<see cref="DenyAction.Redact"/> mode).</summary>
    public int Redactions { get; private set; }

    /// <summary>A factory for <see cref="EngineOptions.OutputGuards"/>, reading the current policy per request.</summary>
    public static Func<RequestContext, IOutputGuard> Factory(Func<DenyListPolicy> policy) =>
        request => new DenyListOutputGuard(policy(), request.KeyId);

    public OutputVerdict Inspect(ReadOnlySpan<char> pending, bool isFinal)
    {
        var scan = DenyListScanner.Scan(_matcher, pending, isFinal, _endsWithSpace);
        if (scan.IsMatch)
        {
            if (_action == DenyAction.End)
            {
                return OutputVerdict.Deny(DenyListPolicy.Reason("output", scan.PatternIndex));
            }

            // Redact: the text before the pieces holding the phrase goes on unchanged (it holds no match, and a phrase
            // starting in it would have to run through the marker); those pieces become the marker. The pipeline
            // consumes exactly MatchRawEnd characters, a safe boundary, and asks again about the rest with a fresh
            // whitespace state (the marker does not end with a space).
            _endsWithSpace = false;
            Redactions++;
            return OutputVerdict.Replace(
                scan.MatchRawEnd, string.Concat(pending[..scan.MatchRawStart], DenyListPolicy.RedactionMarker));
        }

        // The pipeline removes exactly what we release, so the next pending text starts at this safe boundary.
        _endsWithSpace = scan.EndsWithSpaceAtRelease;
        return OutputVerdict.Release(scan.ReleaseChars);
    }
}
