namespace RawInfer.Engine;

/// <summary>
/// An output guard's answer about its pending text. One of three:
/// <list type="bullet">
/// <item><see cref="Release"/>: the first <see cref="ReleaseChars"/> characters go on unchanged; the rest stays held
/// back.</item>
/// <item><see cref="Deny"/>: the request ends with <see cref="FinishReason.DeniedByPolicy"/> and nothing still pending
/// is delivered.</item>
/// <item><see cref="Replace"/>: the first <see cref="ReleaseChars"/> characters are consumed and
/// <see cref="Replacement"/> goes on in their place (a redaction). The pipeline then asks the guard again about the
/// rest of its pending text, with the same <c>isFinal</c>, until the guard releases or denies. The token ids whose text
/// was consumed are withheld from the caller (see <see cref="IOutputGuard"/>).</item>
/// </list>
/// </summary>
/// <param name="ReleaseChars">Characters released (<see cref="Release"/>) or consumed (<see cref="Replace"/>).</param>
/// <param name="DenyReason">Set on a denial: the reason the caller and the audit trail see.</param>
/// <param name="Replacement">Set on a replacement: the text released instead of the consumed characters.</param>
public readonly record struct OutputVerdict(int ReleaseChars, string? DenyReason, string? Replacement = null)
{
    public bool IsDenied => DenyReason is not null;

    /// <summary>True when the consumed characters are replaced by <see cref="Replacement"/>.</summary>
    public bool IsReplacement => DenyReason is null && Replacement is not null;

    public static OutputVerdict Release(int chars) => new(chars, null);

    public static OutputVerdict Deny(string reason) => new(0, reason);

    /// <summary>
    /// The first <paramref name="consumeChars"/> pending characters are dropped and <paramref name="replacement"/> is
    /// released in their place; the guard is then asked about the remaining pending text.
    /// </summary>
    /// <param name="consumeChars">At least 1, so that every replacement makes progress.</param>
    /// <param name="replacement">May be empty (the text is removed).</param>
    public static OutputVerdict Replace(int consumeChars, string replacement)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(consumeChars, 1);
        ArgumentNullException.ThrowIfNull(replacement);
        return new(consumeChars, null, replacement);
    }
}

/// <summary>
/// One request's output filter on the delivery path: detokenizer (whole UTF-8 characters) → stop-string matcher →
/// output guards in order → the caller. Each stage keeps the text it has received but not released ("pending") and
/// says how much of it may go on; so a guard can hold back a tail that might start a denied phrase, and nothing of
/// the phrase ever leaves. A guard may also replace a pending prefix (<see cref="OutputVerdict.Replace"/>): the
/// replacement flows to the following guards and the caller, and the stream goes on. Stop strings are matched before
/// the guards, so a replacement never triggers (or hides) a stop string. Called on the engine thread: keep it fast and
/// never block.
/// </summary>
/// <remarks>
/// Token ids and logprobs are delivered only once every stage has released their text. When a guard replaces text,
/// the ids (and logprobs) of every token not yet delivered at that moment are withheld for good, so that a caller
/// cannot rebuild the replaced phrase from the ids; this may also withhold the ids of a few neighbouring tokens whose
/// text was delivered. The delivered ids are then a subsequence of the generated ids, not their whole list.
/// </remarks>
public interface IOutputGuard
{
    /// <summary>Inspects the pending text (everything received and not yet released, newest text last).</summary>
    /// <param name="pending">Held-back text followed by the text that just arrived.</param>
    /// <param name="isFinal">No more text will come: release everything that is allowed.</param>
    OutputVerdict Inspect(ReadOnlySpan<char> pending, bool isFinal);
}
