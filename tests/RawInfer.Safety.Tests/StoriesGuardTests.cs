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
}
