namespace RawInfer.Engine.Scheduling;

/// <summary>One request's share of a step: <see cref="NumTokens"/> tokens from <see cref="StartPosition"/> on.</summary>
internal readonly record struct ScheduledSequence(EngineRequest Request, int StartPosition, int NumTokens)
{
    /// <summary>The chunk reaches the last known token, so the step yields logits to sample the next one from.</summary>
    public bool NeedsLogits => StartPosition + NumTokens == Request.NumTokens;
}
