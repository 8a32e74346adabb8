using RawInfer.Cpu.Runner;
using RawInfer.Engine;
using RawInfer.Models.Llama2c;
using RawInfer.Safety.Audit;
using RawInfer.Safety.DenyList;
using RawInfer.Tests;
using RawInfer.Tokenizers;
using Xunit;

namespace RawInfer.Safety.Tests;

/// <summary>The deny-list guards and the audit sink inside the real engine, on stories260K under greedy decoding.</summary>
public sealed class StoriesGuardTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_denied_phrase_the_model_produces_is_cut_before_any_of_it_is_delivered_and_audited()
    {
        var ct = TestContext.Current.CancellationToken;
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        using var runner = new CpuModelRunner(model, threads: 1);

        // The pattern is written in a disguise; normalization makes it match the model's plain "red ball".
        var policy = new DenyListPolicy(["ＲＥＤ  Ball", "forbidden prompt"]);
        await using var log = AuditLog.Open(_dir.Path);
        var sink = new AuditEventSink(log, _ => "127.0.0.1:1");
        var engine = new InferenceEngine(runner, tokenizer, new EngineOptions
        {
            NumKvBlocks = 64,
            RequestGuards = [new DenyListRequestGuard(() => policy)],
            OutputGuards = [DenyListOutputGuard.Factory(() => policy)],
            EventSink = sink,
        });

        var streamed = "";
        TokenChunk? last = null;
        await foreach (var chunk in engine.StreamAsync(new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 200, RequestId = "gen", KeyId = "alice" }, ct))
        {
            streamed += chunk.Text;
            last = chunk;
        }

        var refused = await engine.GenerateAsync(new GenerationRequest { Prompt = "a Forbidden\u200B prompt", RequestId = "bad", KeyId = "alice" }, ct);
        await engine.DisposeAsync();
        Assert.Null(engine.Fault);

        // llama2.c's greedy continuation reads "... One day, she saw a big, red ball." (shared models README).
        Assert.Equal(FinishReason.DeniedByPolicy, last!.FinishReason);
        Assert.EndsWith("she saw a big,", streamed.TrimEnd(), StringComparison.Ordinal);
        Assert.DoesNotContain("red", streamed, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(FinishReason.DeniedByPolicy, refused.FinishReason);
        Assert.Empty(refused.Text);

        await log.WaitDurableAsync(Math.Max(sink.LastSequenceOf("gen"), sink.LastSequenceOf("bad")), ct);
        var finished = AuditReader.Query(_dir.Path, new AuditQuery(RequestId: "gen")).Single(r => r.Type == AuditEventType.RequestFinished);
        Assert.Equal("DeniedByPolicy", finished.Field("finish_reason"));
        Assert.Equal("output matched deny-list pattern #0", finished.Field("detail"));
        var refusal = AuditReader.Query(_dir.Path, new AuditQuery(RequestId: "bad")).Single(r => r.Type == AuditEventType.RequestRefused);
        Assert.Equal("guard:deny-list", refusal.Field("check"));
        Assert.Equal("prompt matched deny-list pattern #1", refusal.Field("reason"));
        Assert.Equal("alice", refusal.KeyId);
    }

    [Fact]
    public async Task In_redact_mode_the_phrase_becomes_the_marker_the_output_goes_on_and_its_token_ids_are_withheld()
    {
        var ct = TestContext.Current.CancellationToken;
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        using var plainRunner = new CpuModelRunner(model, threads: 1);
        using var runner = new CpuModelRunner(model, threads: 1);
        var request = new GenerationRequest { Prompt = "Once upon a time", MaxTokens = 200, RequestId = "gen", KeyId = "alice" };

        var plainEngine = new InferenceEngine(plainRunner, tokenizer, new EngineOptions { NumKvBlocks = 64 });
        var plain = await plainEngine.GenerateAsync(request, ct);
        await plainEngine.DisposeAsync();
        Assert.Contains("she saw a big, red ball.", plain.Text, StringComparison.Ordinal);

        var policy = new DenyListPolicy(["ＲＥＤ  Ball"], action: DenyAction.Redact);
        var sink = new EventRecorder();
        var engine = new InferenceEngine(runner, tokenizer, new EngineOptions
        {
            NumKvBlocks = 64, OutputGuards = [DenyListOutputGuard.Factory(() => policy)], EventSink = sink,
        });
        var streamed = "";
        var ids = new List<int>();
        TokenChunk? last = null;
        await foreach (var chunk in engine.StreamAsync(request, ct))
        {
            streamed += chunk.Text;
            ids.AddRange(chunk.TokenIds);
            last = chunk;
            Assert.DoesNotContain("red ball", streamed, StringComparison.OrdinalIgnoreCase);
        }

        await engine.DisposeAsync();
        Assert.Null(engine.Fault);

        // Greedy decoding is not steered by the guard: the text is the plain text redacted as a whole.
        Assert.Equal(FinishReason.Length, last!.FinishReason);
        var whole = policy.CreateStream();
        Assert.Equal(whole.Push(plain.Text) + whole.Finish(), streamed);
        Assert.Contains("she saw a big, [redacted].", streamed, StringComparison.Ordinal);
        var after = streamed[(streamed.IndexOf("[redacted]", StringComparison.Ordinal) + "[redacted]".Length)..];
        Assert.True(after.Length > 20, $"the output goes on after the marker: '{after}'");

        // The delivered ids are the plain ids less the ones withheld; those include every token that held the phrase.
        Assert.Equal(plain.TokenIds.Count, last.Usage!.CompletionTokens);
        Assert.True(IsSubsequence(ids, plain.TokenIds), "delivered ids are generated ids, in order");
        var phraseTokens = TokensCovering(tokenizer, request, plain.TokenIds, "red ball");
        Assert.True(phraseTokens.Count >= 2, "the phrase spans tokens");
        Assert.True(ids.Count <= plain.TokenIds.Count - phraseTokens.Count, "the phrase's token ids are withheld");
        Assert.DoesNotContain("red ball", Decode(tokenizer, request, ids), StringComparison.Ordinal);
        var finished = Assert.Single(sink.Events.OfType<RequestFinished>());
        Assert.Equal(whole.Redactions, finished.OutputReplacements);
    }

    private static bool IsSubsequence(List<int> sub, IReadOnlyList<int> of)
    {
        var j = 0;
        foreach (var id in of)
        {
            if (j < sub.Count && sub[j] == id)
            {
                j++;
            }
        }

        return j == sub.Count;
    }

    /// <summary>Positions of the generated tokens whose text overlaps the first occurrence of <paramref name="phrase"/>.</summary>
    private static List<int> TokensCovering(LlamaTokenizer tokenizer, GenerationRequest request, IReadOnlyList<int> ids, string phrase)
    {
        var detokenizer = new IncrementalDetokenizer(tokenizer, tokenizer.Encode(request.Prompt!, true, false)[^1]);
        var ends = new List<int>();
        var text = "";
        foreach (var id in ids)
        {
            text += detokenizer.Push(id);
            ends.Add(text.Length);
        }

        var at = text.IndexOf(phrase, StringComparison.Ordinal);
        var covering = new List<int>();
        for (var i = 0; i < ids.Count; i++)
        {
            var start = i == 0 ? 0 : ends[i - 1];
            if (start < at + phrase.Length && ends[i] > at)
            {
                covering.Add(i);
            }
        }

        return covering;
    }

    private static string Decode(LlamaTokenizer tokenizer, GenerationRequest request, List<int> ids)
    {
        var detokenizer = new IncrementalDetokenizer(tokenizer, tokenizer.Encode(request.Prompt!, true, false)[^1]);
        return string.Concat(ids.Select(detokenizer.Push)) + detokenizer.Flush();
    }

    private sealed class EventRecorder : IEngineEventSink
    {
        public System.Collections.Concurrent.ConcurrentQueue<EngineEvent> Events { get; } = new();

        public void OnEvent(EngineEvent engineEvent) => Events.Enqueue(engineEvent);
    }
}
