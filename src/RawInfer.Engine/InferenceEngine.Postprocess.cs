using System.Diagnostics;
using RawInfer.Engine.Output;
using RawInfer.Engine.Sampling;
using RawInfer.Engine.Scheduling;

namespace RawInfer.Engine;

// After the forward pass: sample, append, check stops, stream text out, free finished requests.
public sealed partial class InferenceEngine
{
    private readonly (int TokenId, float Logprob)[] _topScratch = new (int, float)[GenerationRequest.MaxTopLogprobs];
    private float[] _rawLogits = [];

    private void Postprocess()
    {
        var scheduled = _scheduler.Scheduled;
        foreach (var preempted in _scheduler.Preempted)
        {
            _metrics.OnPreempted();
            _options.EventSink.OnEvent(new RequestPreempted(preempted.Context, _time.GetUtcNow(), preempted.NumTokens));
        }

        if (_executeFailed)
        {
            _ending.Clear();
            foreach (var step in scheduled)
            {
                if (!step.Request.IsPadRow)
                {
                    _ending.Add(step.Request);
                }
            }

            foreach (var request in _ending)
            {
                Finish(request, FinishReason.Error, _executeError);
            }

            return;
        }

        _scheduler.OnExecuted();

        // Stats first, output second: every scheduled step that needs logits samples one token below, and its reader
        // may be woken (and a client answered) before this method ends, so the counts and gauges are published now.
        var sampling = 0;
        foreach (var step in scheduled)
        {
            sampling += step.NeedsLogits && !step.Request.IsPadRow ? 1 : 0;
        }

        var blocks = _scheduler.Blocks;
        _metrics.OnSampling(_scheduler.Running.Count, _scheduler.Waiting.Count, blocks.UsedBlocks, sampling);

        var now = _time.GetTimestamp();
        var logitRow = 0;
        var sampled = 0;
        _ending.Clear();
        foreach (var step in scheduled)
        {
            var request = step.Request;
            if (!step.NeedsLogits)
            {
                continue; // mid-prefill: nothing to sample yet
            }

            var logits = _logits.AsSpan(logitRow++ * _vocabSize, _vocabSize);
            if (request.IsPadRow)
            {
                continue; // a static padded batch's finished row: computed, never sampled
            }

            var topN = request.Request.TopLogprobs;
            if (topN > 0)
            {
                if (_rawLogits.Length != _vocabSize)
                {
                    _rawLogits = new float[_vocabSize];
                }

                logits.CopyTo(_rawLogits); // raw model distribution: penalties modify the logits in place
            }

            var token = request.Sampler.SampleAt(logits, request.History, request.PromptLength, request.NumGenerated);
            var logprobs = topN > 0 ? ComputeLogprobs(_rawLogits, token, topN) : null;
            request.Tokens[request.NumTokens++] = token;
            sampled++;
            if (request.FirstTokenTimestamp == 0)
            {
                request.FirstTokenTimestamp = now;
            }

            if (Deliver(request, token, logprobs) is { } reason)
            {
                _ending.Add(request);
                request.PendingFinish = reason;
            }
        }

        foreach (var request in _ending)
        {
            Finish(request, request.PendingFinish!.Value, request.Output.DenyReason);
        }

        Debug.Assert(sampled == sampling, "every step that needs logits samples exactly one token");
        _metrics.OnStep(_scheduler.Running.Count, _scheduler.Waiting.Count, blocks.UsedBlocks,
            _scheduler.PrefixQueryTokens, _scheduler.PrefixHitTokens);
    }

    /// <summary>
    /// Runs a new token through the output pipeline and commits what it releases to the request's reader. Returns the
    /// finish reason when the token ends the request (its final chunk is committed by <see cref="Finish"/>). Allocates
    /// nothing: text and ids go into the request's reused buffers.
    /// </summary>
    private FinishReason? Deliver(EngineRequest request, int token, PositionLogprobs? logprobs)
    {
        var isStopToken = (token == _tokenizer.EosId && !request.Request.IgnoreEos)
            || Array.IndexOf(request.StopTokenIds, token) >= 0;
        FinishReason? reason = isStopToken ? FinishReason.Stop
            : request.NumGenerated >= request.MaxTokens ? FinishReason.Length
            : null;

        var output = request.Output;
        if (!isStopToken)
        {
            request.Outbox.StageId(token, logprobs);
            output.Feed(token);
            WithholdIdsIfReplaced(request);
        }

        switch (output.State)
        {
            case PipelineState.StopString:
                reason = FinishReason.StopString;
                break;
            case PipelineState.Denied:
                return FinishReason.DeniedByPolicy;
        }

        if (reason is not null)
        {
            output.Flush(); // the released text stays in the pipeline until Finish commits (or drops) it
            WithholdIdsIfReplaced(request);
            return output.State == PipelineState.Denied ? FinishReason.DeniedByPolicy : reason;
        }

        // Token ids leave no earlier than their text: while a stage holds text back, so are the ids.
        var releaseIds = !output.IsHoldingBack;
        if (output.Released.Length > 0 || releaseIds)
        {
            request.Outbox.Commit(output.Released, releaseIds);
            output.ClearReleased();
        }

        return null;
    }

    /// <summary>Ends a request: frees its blocks, commits its final chunk, reports it.</summary>
    private void Finish(EngineRequest request, FinishReason reason, string? detail)
    {
        _scheduler.Remove(request);
        if (request.CountsAsQueued)
        {
            request.CountsAsQueued = false;
            ReleaseQueueSlot(request.PromptLength);
        }

        // Denied, cancelled, timed-out and aborted requests deliver nothing more; held text and ids are dropped.
        var completes = reason is FinishReason.Stop or FinishReason.StopString or FinishReason.Length;
        var now = _time.GetTimestamp();
        var usage = new RequestUsage(
            request.PromptLength,
            request.NumGenerated,
            request.CachedPromptTokens,
            request.Preemptions,
            _time.GetElapsedTime(request.ArrivalTimestamp, request.FirstScheduledTimestamp != 0 ? request.FirstScheduledTimestamp : now),
            request.FirstTokenTimestamp != 0 ? _time.GetElapsedTime(request.ArrivalTimestamp, request.FirstTokenTimestamp) : null,
            _time.GetElapsedTime(request.ArrivalTimestamp, now));
        _metrics.OnFinished(usage); // counted before the final chunk is visible to the reader
        request.Outbox.Complete(request.Output.Released, completes, reason, detail, usage);
        request.Output.ClearReleased();
        _options.EventSink.OnEvent(new RequestFinished(
            request.Context, _time.GetUtcNow(), reason, detail, usage, request.Output.Replacements));
    }

    /// <summary>
    /// After a guard replaced (redacted) text, the ids and logprobs of every token not yet delivered are dropped: the
    /// replaced text came from some of them, and its ids must not let a caller rebuild it.
    /// </summary>
    private static void WithholdIdsIfReplaced(EngineRequest request)
    {
        if (request.Output.TakeReplaced())
        {
            request.Outbox.WithholdStaged();
        }
    }

    private PositionLogprobs ComputeLogprobs(ReadOnlySpan<float> rawLogits, int token, int n)
    {
        var top = _topScratch.AsSpan(0, n);
        var chosen = Logprobs.Compute(rawLogits, token, top);
        var list = new TokenLogprob[n];
        for (var i = 0; i < n; i++)
        {
            list[i] = new TokenLogprob(top[i].TokenId, top[i].Logprob);
        }

        return new PositionLogprobs(new TokenLogprob(token, chosen), list);
    }
}
