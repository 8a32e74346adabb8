using System.Globalization;
using RawInfer.Engine.Output;
using RawInfer.Engine.Sampling;
using RawInfer.Engine.Scheduling;

namespace RawInfer.Engine;

// The request path up to the queue: validate, tokenize, request guards, the queue bound, then hand to the engine.
public sealed partial class InferenceEngine
{
    private long _nextRequestNumber;

    /// <summary>Queues the request; or, when it is over before it starts (denied, nothing to generate), its final chunk.</summary>
    private async Task<(EngineRequest? Request, TokenChunk? Done, string RequestId)> SubmitAsync(
        GenerationRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var requestId = request.RequestId
            ?? string.Create(CultureInfo.InvariantCulture, $"req-{Interlocked.Increment(ref _nextRequestNumber)}");
        var context = new RequestContext(requestId, request.KeyId, request.Tenant);
        if (Volatile.Read(ref _shutdown) != 0 || _fault is not null)
        {
            Refuse(context, "shutdown", "the engine is shutting down");
            throw new InvalidOperationException("the engine is shut down or has stopped", _fault);
        }

        int[] prompt;
        try
        {
            request.Validate();
            prompt = request.PromptTokenIds is { } given ? [.. given] : _tokenizer.Encode(request.Prompt!, request.AddBos, addEos: false);
            ValidatePrompt(prompt, request.MaxTokens);
        }
        catch (ArgumentException e)
        {
            Refuse(context, "validation", e.Message);
            throw;
        }

        foreach (var guard in _options.RequestGuards)
        {
            var verdict = await guard.CheckAsync(new RequestGuardContext(context, request.Prompt, prompt), cancellationToken)
                .ConfigureAwait(false);
            if (!verdict.IsAllowed)
            {
                var reason = verdict.Reason ?? "denied";
                Refuse(context, "guard:" + guard.Name, reason);
                return (null, Completed(FinishReason.DeniedByPolicy, reason, prompt.Length), requestId);
            }
        }

        var maxTokens = Math.Min(request.MaxTokens, _maxSeqLen + 1 - prompt.Length);
        if (maxTokens == 0)
        {
            return (null, Completed(FinishReason.Length, null, prompt.Length), requestId);
        }

        ReserveQueueSlot(context, prompt.Length);
        var engineRequest = CreateRequest(context, request, prompt, maxTokens);
        _options.EventSink.OnEvent(new RequestAdmitted(context, _time.GetUtcNow(), prompt.Length, request.Priority));
        if (!_incoming.Writer.TryWrite(engineRequest))
        {
            ReleaseQueueSlot(prompt.Length);
            Refuse(context, "shutdown", "the engine is shutting down");
            throw new InvalidOperationException("the engine is shut down");
        }

        return (engineRequest, null, requestId);
    }

    /// <summary>The prompt must fit the model's context, and prompt plus output must fit the KV pool on its own.</summary>
    private void ValidatePrompt(int[] prompt, int maxTokens)
    {
        if (prompt.Length == 0)
        {
            throw new ArgumentException("the prompt is empty (and the tokenizer adds no BOS)", nameof(GenerationRequest.Prompt));
        }

        if (prompt.Length > _maxSeqLen)
        {
            throw new ArgumentException(
                $"the prompt is {prompt.Length} tokens; the model's context is {_maxSeqLen}", nameof(GenerationRequest.Prompt));
        }

        foreach (var id in prompt)
        {
            if ((uint)id >= (uint)_vocabSize)
            {
                throw new ArgumentException($"prompt token id {id} is outside the vocabulary of {_vocabSize}", nameof(GenerationRequest.PromptTokenIds));
            }
        }

        var blocks = _scheduler.Blocks;
        var tokens = Math.Min((long)prompt.Length + maxTokens, _maxSeqLen);
        var needed = (tokens + blocks.BlockSize - 1) / blocks.BlockSize;
        var usable = blocks.TotalBlocks - blocks.WatermarkBlocks;
        if (needed > usable)
        {
            throw new ArgumentException(
                $"prompt ({prompt.Length}) plus max tokens needs {needed} KV blocks; the pool has {usable} usable", nameof(GenerationRequest.MaxTokens));
        }
    }

    /// <summary>Counts the request against the waiting-queue bound, or refuses it as overloaded (no memory is taken).</summary>
    private void ReserveQueueSlot(RequestContext context, int promptTokens)
    {
        var count = Interlocked.Increment(ref _queuedRequests);
        var tokens = Interlocked.Add(ref _queuedTokens, promptTokens);
        if (count <= _options.MaxQueuedRequests && tokens <= _options.MaxQueuedTokens)
        {
            return;
        }

        ReleaseQueueSlot(promptTokens);
        var retryAfter = RetryAfterHint(count);
        var reason = string.Create(CultureInfo.InvariantCulture,
            $"waiting queue full ({count - 1}/{_options.MaxQueuedRequests} requests, {tokens - promptTokens}/{_options.MaxQueuedTokens} tokens)");
        Refuse(context, "overload", reason);
        throw new EngineOverloadedException(reason, retryAfter);
    }

    private void ReleaseQueueSlot(int promptTokens)
    {
        Interlocked.Decrement(ref _queuedRequests);
        Interlocked.Add(ref _queuedTokens, -promptTokens);
    }

    /// <summary>Queued requests divided by the rate requests have been finishing, clamped to [0.1 s, 60 s].</summary>
    private TimeSpan RetryAfterHint(int queued)
    {
        var stats = GetStats();
        var perSecond = stats.Uptime > TimeSpan.Zero ? stats.RequestsFinished / stats.Uptime.TotalSeconds : 0;
        var seconds = perSecond > 0 ? queued / perSecond : 1;
        return TimeSpan.FromSeconds(Math.Clamp(seconds, 0.1, 60));
    }

    private EngineRequest CreateRequest(RequestContext context, GenerationRequest request, int[] prompt, int maxTokens)
    {
        var guards = new IOutputGuard[_options.OutputGuards.Count];
        for (var i = 0; i < guards.Length; i++)
        {
            guards[i] = _options.OutputGuards[i](context);
        }

        var output = new OutputPipeline(_tokenizer, prompt[^1], request.StopStrings, guards);
        var now = _time.GetTimestamp();
        var engineRequest = new EngineRequest(
            Interlocked.Increment(ref _nextSequenceId), context, request, prompt, maxTokens,
            new Sampler(request.Sampling, _vocabSize), output, now);
        if (request.FirstTokenTimeout is { } first)
        {
            engineRequest.FirstTokenDeadline = now + (long)(first.TotalSeconds * _time.TimestampFrequency);
        }

        if (request.TotalTimeout is { } total)
        {
            engineRequest.TotalDeadline = now + (long)(total.TotalSeconds * _time.TimestampFrequency);
        }

        return engineRequest;
    }

    private void Refuse(RequestContext context, string check, string reason) =>
        _options.EventSink.OnEvent(new RequestRefused(context, _time.GetUtcNow(), check, reason));

    /// <summary>The only chunk of a stream that is over before it started (denied by a guard, or nothing to generate).</summary>
    private static TokenChunk Completed(FinishReason reason, string? detail, int promptTokens) =>
        new(string.Empty, [], null, reason, detail, new RequestUsage(promptTokens, 0, 0, 0, TimeSpan.Zero, null, TimeSpan.Zero));
}
