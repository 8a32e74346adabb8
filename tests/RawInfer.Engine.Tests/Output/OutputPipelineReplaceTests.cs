using RawInfer.Engine.Output;
using RawInfer.Engine.Tests.Engine;

namespace RawInfer.Engine.Tests.Output;

/// <summary>
/// Replacement verdicts (redaction) in the output pipeline: the replaced text flows to the next stages and the caller,
/// the stream goes on, stop strings and the final flush compose with it, and the engine withholds the redacted ids.
/// </summary>
public class OutputPipelineReplaceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public void A_replaced_phrase_is_never_released_and_the_stream_continues()
    {
        var pipeline = Pipeline([], new ReplacePhraseGuard("bad", "[x]"));
        var streamed = "";
        var replacedAt = new List<int>();
        var text = "a bad word and a bad end";
        for (var i = 0; i < text.Length; i++)
        {
            streamed += pipeline.Push(Id(text[i]));
            Assert.DoesNotContain("b", streamed.Replace("[x]", "", StringComparison.Ordinal), StringComparison.Ordinal);
            if (pipeline.TakeReplaced())
            {
                replacedAt.Add(i);
            }
        }

        streamed += pipeline.Finish();
        Assert.Equal("a [x] word and a [x] end", streamed);
        Assert.Equal(PipelineState.Open, pipeline.State);
        Assert.Equal(2, pipeline.Replacements);
        Assert.Equal([4, 19], replacedAt); // reported once, on the push that completed each phrase
        Assert.False(pipeline.TakeReplaced());
    }

    [Fact]
    public void A_replacement_flows_into_the_following_guard()
    {
        // The first guard's output is what the second guard sees: "bad" → "good" → "fine".
        var pipeline = Pipeline([], new ReplacePhraseGuard("bad", "good"), new ReplacePhraseGuard("good", "fine"));
        var streamed = string.Concat("bad good x".Select(c => pipeline.Push(Id(c)))) + pipeline.Finish();
        Assert.Equal("fine fine x", streamed);
        Assert.Equal(3, pipeline.Replacements);
    }

    [Fact]
    public void Several_replacements_in_one_pending_text_are_all_applied()
    {
        // The stop matcher holds "badbad" back (a prefix of the stop string), then hands it on in one piece: the guard
        // is asked again after each replacement until it releases.
        var pipeline = Pipeline(["badbadq"], new ReplacePhraseGuard("bad", "[x]"));
        var streamed = "";
        foreach (var c in "badbadx")
        {
            streamed += pipeline.Push(Id(c));
            if (c != 'x')
            {
                Assert.Equal("", streamed);
            }
        }

        Assert.Equal("[x][x]x", streamed + pipeline.Finish());
        Assert.Equal(2, pipeline.Replacements);
    }

    [Fact]
    public void Stop_strings_compose_with_replacement()
    {
        var pipeline = Pipeline(["zz"], new ReplacePhraseGuard("bad", "[x]"));
        var streamed = string.Concat("x bad y zz bad".Select(c => pipeline.Push(Id(c))));
        Assert.Equal(PipelineState.StopString, pipeline.State);
        Assert.Equal("x [x] y ", streamed + pipeline.Finish()); // nothing after the stop string is looked at
        Assert.Equal(1, pipeline.Replacements);

        // A marker that contains a stop string does not stop the stream: stop strings are matched before the guards.
        var marked = Pipeline(["zz"], new ReplacePhraseGuard("bad", "zz"));
        Assert.Equal("a zz b", string.Concat("a bad b".Select(c => marked.Push(Id(c)))) + marked.Finish());
        Assert.Equal(PipelineState.Open, marked.State);
    }

    [Fact]
    public void The_final_flush_applies_a_replacement_completed_by_held_back_text()
    {
        // "b" stays in the stop matcher (it could start "bq") and "a" in the guard (it could start "ab") until the
        // flush hands "ab" to the guard as final text.
        var pipeline = Pipeline(["bq"], new ReplacePhraseGuard("ab", "[x]"));
        Assert.Equal("x", string.Concat("xab".Select(c => pipeline.Push(Id(c)))));
        Assert.True(pipeline.IsHoldingBack);
        Assert.False(pipeline.TakeReplaced());
        Assert.Equal("[x]", pipeline.Finish());
        Assert.True(pipeline.TakeReplaced());

        // A held-back tail that never completes the phrase is released unchanged at the end.
        var partial = Pipeline([], new ReplacePhraseGuard("abc", "[x]"));
        Assert.Equal("x", string.Concat("xab".Select(c => partial.Push(Id(c)))));
        Assert.Equal("ab", partial.Finish());
        Assert.Equal(0, partial.Replacements);
    }

    [Fact]
    public void A_denial_after_a_replacement_releases_nothing_pending()
    {
        // "bady" waits in the stop matcher until the flush; the first guard turns it into "[x]y", which the second denies.
        var pipeline = Pipeline(["badyq"], new ReplacePhraseGuard("bad", "[x]"), new SafetyHookTests.DenyPhraseGuard("]y"));
        var streamed = string.Concat("bady".Select(c => pipeline.Push(Id(c)))) + pipeline.Finish();
        Assert.Equal(PipelineState.Denied, pipeline.State);
        Assert.Equal("", streamed);
    }

    [Fact]
    public async Task The_engine_delivers_the_marker_and_withholds_the_ids_of_redacted_tokens()
    {
        var request = new GenerationRequest { Prompt = "start", MaxTokens = 60, IgnoreEos = true, TopLogprobs = 2 };
        var ids = EngineHarness.Reference(request);
        var plain = CharTokenizer.Decode(ids);
        var phrase = plain.Substring(20, 3);
        var expected = plain.Replace(phrase, "[x]", StringComparison.Ordinal);
        var occurrences = Occurrences(plain, phrase);
        Assert.True(occurrences >= 1);

        var sink = new EngineHarness.RecordingSink();
        var engine = EngineHarness.Create(new FakeRunner(), new EngineOptions
        {
            NumKvBlocks = 64, EventSink = sink, OutputGuards = [_ => new ReplacePhraseGuard(phrase, "[x]")],
        });
        var streamed = "";
        var deliveredIds = new List<int>();
        var deliveredLogprobs = 0;
        await foreach (var chunk in engine.StreamAsync(request, Ct))
        {
            streamed += chunk.Text;
            deliveredIds.AddRange(chunk.TokenIds);
            deliveredLogprobs += chunk.Logprobs?.Count ?? 0;
            Assert.DoesNotContain(phrase, CharTokenizer.Decode(deliveredIds), StringComparison.Ordinal);
        }

        await EngineHarness.StopAndAuditAsync(engine);
        Assert.Equal(expected, streamed);
        Assert.True(IsSubsequence(deliveredIds, ids), "delivered ids are generated ids, in order");
        Assert.True(deliveredIds.Count <= ids.Length - (occurrences * phrase.Length), "the redacted tokens' ids are withheld");
        Assert.Equal(deliveredIds.Count, deliveredLogprobs);
        var finished = Assert.Single(sink.Events.OfType<RequestFinished>());
        Assert.Equal(FinishReason.Length, finished.Reason);
        Assert.Equal(occurrences, finished.OutputReplacements);
    }

    private static int Occurrences(string text, string phrase)
    {
        var count = 0;
        for (var at = text.IndexOf(phrase, StringComparison.Ordinal); at >= 0; at = text.IndexOf(phrase, at + phrase.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }

    private static bool IsSubsequence(List<int> sub, int[] of)
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

    private static OutputPipeline Pipeline(string[] stops, params IOutputGuard[] guards) =>
        new(EngineHarness.Tokenizer, previousTokenId: -1, stops, guards);

    private static int Id(char c)
    {
        var id = EngineHarness.Tokenizer.Encode(c.ToString(), false, false)[0];
        Assert.NotEqual(0, id); // the test text must stay inside the fake vocabulary
        return id;
    }

    /// <summary>Replaces every occurrence of a phrase with a marker; holds back any tail that could start it.</summary>
    internal sealed class ReplacePhraseGuard(string phrase, string marker) : IOutputGuard
    {
        public OutputVerdict Inspect(ReadOnlySpan<char> pending, bool isFinal)
        {
            var at = pending.IndexOf(phrase.AsSpan(), StringComparison.Ordinal);
            if (at >= 0)
            {
                return OutputVerdict.Replace(at + phrase.Length, string.Concat(pending[..at], marker));
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
