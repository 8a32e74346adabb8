namespace RawInfer.Engine.Tests.Engine;

/// <summary>Request guards, output guards, stop strings and the event sink on the fake model.</summary>
public class SafetyHookTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_denied_prompt_never_reaches_the_runner()
    {
        var runner = new FakeRunner();
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, RequestGuards = [new DenyPromptGuard("Z")], EventSink = sink,
        });
        var denied = await engine.GenerateAsync(new GenerationRequest { Prompt = "say Z now", KeyId = "k1", Tenant = "t1" }, Ct);
        Assert.Equal(FinishReason.DeniedByPolicy, denied.FinishReason);
        Assert.Empty(denied.Text);
        Assert.Equal(0, runner.Executions);
        var refused = Assert.Single(sink.Events.OfType<RequestRefused>());
        Assert.Equal("guard:deny-prompt", refused.Check);
        Assert.Equal("k1", refused.Request.KeyId);

        var allowed = await engine.GenerateAsync(new GenerationRequest { Prompt = "say a now", MaxTokens = 3 }, Ct);
        Assert.NotEqual(FinishReason.DeniedByPolicy, allowed.FinishReason);
        Assert.DoesNotContain(EngineHarness.Tokenizer.Encode("Z", false, false)[0], runner.SeenTokens);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task A_denied_phrase_is_cut_before_any_of_it_is_delivered()
    {
        var request = new GenerationRequest { Prompt = "start", MaxTokens = 60, IgnoreEos = true };
        var plain = CharTokenizer.Decode(EngineHarness.Reference(request));
        var at = 20;
        var phrase = plain.Substring(at, 4);
        at = plain.IndexOf(phrase, StringComparison.Ordinal);

        var runner = new FakeRunner();
        var engine = EngineHarness.Create(runner, new EngineOptions
        {
            NumKvBlocks = 64, OutputGuards = [_ => new DenyPhraseGuard(phrase)],
        });
        var streamed = "";
        TokenChunk? last = null;
        await foreach (var chunk in engine.StreamAsync(request, Ct))
        {
            streamed += chunk.Text;
            last = chunk;
        }

        Assert.Equal(FinishReason.DeniedByPolicy, last!.FinishReason);
        Assert.True(streamed.Length <= at, $"delivered {streamed.Length} chars; the phrase starts at {at}");
        Assert.StartsWith(streamed, plain, StringComparison.Ordinal);
        Assert.True(streamed.Length >= at - phrase.Length, "only a possible start of the phrase is held back");
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task Stop_strings_are_held_back_across_tokens_and_never_partly_delivered()
    {
        var request = new GenerationRequest { Prompt = "go", MaxTokens = 80, IgnoreEos = true };
        var plain = CharTokenizer.Decode(EngineHarness.Reference(request));
        var stop = plain.Substring(30, 3);
        var at = plain.IndexOf(stop, StringComparison.Ordinal);

        var engine = EngineHarness.Create(new FakeRunner());
        var chunks = new List<TokenChunk>();
        await foreach (var chunk in engine.StreamAsync(request with { StopStrings = ["never-there", stop] }, Ct))
        {
            chunks.Add(chunk);
        }

        var text = string.Concat(chunks.Select(c => c.Text));
        Assert.Equal(plain[..at], text);
        Assert.Equal(FinishReason.StopString, chunks[^1].FinishReason);
        var prefix = "";
        foreach (var chunk in chunks)
        {
            prefix += chunk.Text;
            Assert.False(EndsWithStart(prefix, stop) && prefix.Length > at, "a stop-string prefix leaked");
        }

        // A stop token ends the output and is not delivered.
        var ids = EngineHarness.Reference(request);
        var stopToken = ids[10];
        var stopped = await engine.GenerateAsync(request with { StopTokenIds = [stopToken] }, Ct);
        Assert.Equal(FinishReason.Stop, stopped.FinishReason);
        Assert.Equal(ids.TakeWhile(t => t != stopToken), stopped.TokenIds);
        await EngineHarness.StopAndAuditAsync(engine);
    }

    [Fact]
    public async Task The_sink_sees_admission_preemption_and_finish_with_usage()
    {
        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(new FakeRunner(), new EngineOptions
        {
            NumKvBlocks = 10, BlockSize = 4, WatermarkBlocks = 0, EventSink = sink,
        });
        var requests = Enumerable.Range(0, 6).Select(i => new GenerationRequest { Prompt = "abc", MaxTokens = 30, IgnoreEos = true, RequestId = $"s{i}" });
        var results = await Task.WhenAll(requests.Select(r => engine.GenerateAsync(r, Ct)));
        await EngineHarness.StopAndAuditAsync(engine);

        Assert.Equal(6, sink.Events.OfType<RequestAdmitted>().Count());
        Assert.NotEmpty(sink.Events.OfType<RequestPreempted>());
        var finished = sink.Events.OfType<RequestFinished>().ToList();
        Assert.Equal(6, finished.Count);
        Assert.All(finished, f => Assert.Equal(30, f.Usage.CompletionTokens));
        Assert.All(results, r => Assert.Equal(results[0].TokenIds, r.TokenIds));
    }

    private static bool EndsWithStart(string text, string stop)
    {
        for (var n = 1; n <= Math.Min(stop.Length, text.Length); n++)
        {
            if (text.EndsWith(stop[..n], StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Denies prompts containing a substring.</summary>
    internal sealed class DenyPromptGuard(string banned) : IRequestGuard
    {
        public string Name => "deny-prompt";

        public ValueTask<GuardVerdict> CheckAsync(RequestGuardContext context, CancellationToken cancellationToken) =>
            ValueTask.FromResult(context.PromptText?.Contains(banned, StringComparison.Ordinal) == true
                ? GuardVerdict.Deny($"prompt contains '{banned}'")
                : GuardVerdict.Allow);
    }

    /// <summary>Denies output containing a phrase; holds back any tail that could start it.</summary>
    internal sealed class DenyPhraseGuard(string phrase) : IOutputGuard
    {
        public OutputVerdict Inspect(ReadOnlySpan<char> pending, bool isFinal)
        {
            if (pending.IndexOf(phrase.AsSpan(), StringComparison.Ordinal) >= 0)
            {
                return OutputVerdict.Deny($"output contains '{phrase}'");
            }

            if (isFinal)
            {
                return OutputVerdict.Release(pending.Length);
            }

            for (var i = Math.Max(0, pending.Length - phrase.Length + 1); i < pending.Length; i++)
            {
                if (phrase.AsSpan().StartsWith(pending[i..], StringComparison.Ordinal))
                {
                    return OutputVerdict.Release(i);
                }
            }

            return OutputVerdict.Release(pending.Length);
        }
    }
}
