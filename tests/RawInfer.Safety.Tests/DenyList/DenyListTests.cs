using RawInfer.Engine;
using RawInfer.Safety.DenyList;
using Xunit;

namespace RawInfer.Safety.Tests.DenyList;

public sealed class DenyListTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("Red  Ball", "red ball")]
    [InlineData("ＲＥＤ\u3000ＢＡＬＬ", "red ball")]
    [InlineData("r\u200Be\u200Dd\u2060 b\uFEFFall\u0007", "red ball")]
    [InlineData("\t red\n\r ball ", " red ball ")]
    [InlineData("cafe\u0301", "café")]
    [InlineData("ﬁre \u212A", "fire k")]
    public void Normalization_folds_the_usual_disguises(string raw, string expected) =>
        Assert.Equal(expected, TextNormalizer.Normalize(raw));

    [Fact]
    public void Patterns_come_from_a_file_with_comments_and_per_key_lists_add_to_them()
    {
        var path = _dir.File("deny.txt");
        File.WriteAllLines(path, ["# phrases", "Red Ball", "", "  blue   sky  "]);
        var policy = DenyListPolicy.LoadFile(path, new Dictionary<string, IReadOnlyList<string>> { ["kid"] = ["green"] });
        Assert.Equal("red ball", policy.Check("The RED ball.")?.Pattern);
        Assert.Equal(4, policy.Check("the blue\tsky")?.NormalizedStart);
        Assert.Null(policy.Check("a green tree"));
        Assert.Equal("green", policy.Check("a green tree", "kid")?.Pattern);
        Assert.Equal("red ball", policy.Check("red ball", "kid")?.Pattern);
        Assert.Equal(8, policy.MaxPatternLength);
    }

    [Fact]
    public async Task The_request_guard_denies_prompts_and_decoded_token_prompts()
    {
        var policy = new DenyListPolicy(["red ball"]);
        var guard = new DenyListRequestGuard(() => policy, ids => string.Concat(ids.Select(i => i == 1 ? "red " : "ball")));
        var context = new RequestContext("r", "k", null);
        var ct = TestContext.Current.CancellationToken;
        Assert.True((await guard.CheckAsync(new RequestGuardContext(context, "a blue ball", []), ct)).IsAllowed);
        var denied = await guard.CheckAsync(new RequestGuardContext(context, "Ｒed ball!", []), ct);
        Assert.False(denied.IsAllowed);
        Assert.Equal("prompt matched deny-list pattern #0", denied.Reason);
        Assert.False((await guard.CheckAsync(new RequestGuardContext(context, null, [1, 2]), ct)).IsAllowed);
    }

    [Fact]
    public void A_phrase_split_across_chunks_is_cut_before_any_of_it_is_released()
    {
        var guard = new DenyListOutputGuard(new DenyListPolicy(["red ball"]), keyId: null);
        var (released, denied) = DenyListStreamProperties.RunLikeThePipeline(guard, ["The dog saw a re", "d b", "all and ran"]);
        Assert.True(denied);
        Assert.Equal("The dog saw a ", released);
    }

    [Fact]
    public void Hold_back_is_only_as_long_as_a_possible_pattern_prefix()
    {
        var stream = new DenyListPolicy(["red ball"]).CreateStream();
        // Only the last character stays (a combining mark could still join it) when no pattern prefix is pending.
        Assert.Equal("Once upon a tim", stream.Push("Once upon a time"));
        Assert.Equal("e there was a ", stream.Push(" there was a red"));
        Assert.Equal("red bat", stream.Push(" bat."));
        Assert.Equal(".", stream.Finish());
    }

    [Fact]
    public void Redact_mode_replaces_the_phrase_and_continues()
    {
        var stream = new DenyListPolicy(["red ball"], action: DenyAction.Redact).CreateStream();
        var text = stream.Push("a RED  ball and a ") + stream.Push("red b") + stream.Push("all!") + stream.Finish();
        Assert.Equal("a [redacted] and a [redacted]!", text);
        Assert.Equal(2, stream.Redactions);
    }
}
