namespace RawInfer.Engine;

/// <summary>
/// An output guard's answer about its pending text: release the first <see cref="ReleaseChars"/> characters (the rest
/// stays held back), or deny, which ends the request with <see cref="FinishReason.DeniedByPolicy"/> and delivers
/// nothing that is still pending.
/// </summary>
public readonly record struct OutputVerdict(int ReleaseChars, string? DenyReason)
{
    public bool IsDenied => DenyReason is not null;

    public static OutputVerdict Release(int chars) => new(chars, null);

    public static OutputVerdict Deny(string reason) => new(0, reason);
}

/// <summary>
/// One request's output filter on the delivery path: detokenizer (whole UTF-8 characters) → stop-string matcher →
/// output guards in order → the caller. Each stage keeps the text it has received but not released ("pending") and
/// says how much of it may go on; so a guard can hold back a tail that might start a denied phrase, and nothing of
/// the phrase ever leaves. Called on the engine thread: keep it fast and never block.
/// </summary>
public interface IOutputGuard
{
    /// <summary>Inspects the pending text (everything received and not yet released, newest text last).</summary>
    /// <param name="pending">Held-back text followed by the text that just arrived.</param>
    /// <param name="isFinal">No more text will come: release everything that is allowed.</param>
    OutputVerdict Inspect(ReadOnlySpan<char> pending, bool isFinal);
}
