using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RawInfer.Engine;
using RawInfer.Safety.DenyList;
using Xunit;

namespace RawInfer.Safety.Tests.DenyList;

/// <summary>
/// For any text built from tricky fragments and any split into chunks (inside surrogate pairs, inside patterns,
/// between a letter and its combining mark), streaming through the deny-list gives the whole text's verdict, and on
/// a match nothing from the first matched phrase onwards was released.
/// </summary>
public sealed class DenyListStreamProperties
{
    internal static readonly string[] Patterns = ["red ball", "fire", "café", "가나"];

    // Fragments mixing the patterns' disguises (case, full width, zero-width, whitespace, ligatures, decomposed
    // accents, compatibility jamo) with noise that normalization must not join wrongly.
    private static readonly string[] Fragments =
    [
        "red ball", "Red Ball", "ＲＥＤ ＢＡＬＬ", "r\u200Ded\u200B ball", "red \t\n ball", "RED\u00A0BALL", "re", "d", " b", "all",
        "ﬁre", "FIRE", "f\u00ADire", "café", "cafe\u0301", "CAFÉ", "cafe", "\u0301", "e", "é",
        "\u1100\u1161\u1102\u1161", "\u3131\u314F\u3134\u314F", "가", "나", "\u314F", "\u3131",
        " ", "  ", "\t", "\u00A0", "\u200D", "\uFEFF", "😀", "a", "x", "K", "\u212A", "ｶ", "\uFF9E", "l", "\u0007",
    ];

    private static readonly DenyListPolicy Policy = new(Patterns);

    private static Gen<string> Texts() =>
        Gen.Elements(Fragments).ListOf().Select(parts => string.Concat(parts));

    internal static Gen<(string Text, int[] Cuts)> Cases() =>
        from text in Texts()
        from cuts in Gen.Choose(0, Math.Max(0, text.Length)).ListOf()
        select (text, cuts.Distinct().Order().ToArray());

    [Property(MaxTest = 2000)]
    public Property Stream_verdict_equals_whole_text_verdict_and_nothing_of_a_match_leaks() =>
        Prop.ForAll(Cases().ToArbitrary(), c =>
        {
            var stream = Policy.CreateStream();
            var released = string.Concat(Chunks(c.Text, c.Cuts).Select(chunk => stream.Push(chunk))) + stream.Finish();
            CheckOutcome(c.Text, released, stream.IsDenied);
        });

    [Property(MaxTest = 2000)]
    public Property Output_guard_in_an_engine_style_pipeline_agrees_with_the_whole_text() =>
        Prop.ForAll(Cases().ToArbitrary(), c =>
        {
            var (released, denied) = RunLikeThePipeline(new DenyListOutputGuard(Policy, keyId: null), Chunks(c.Text, c.Cuts));
            CheckOutcome(c.Text, released, denied);
        });

    [Property(MaxTest = 1000)]
    public Property Redaction_removes_every_match_and_keeps_text_without_one_unchanged() =>
        Prop.ForAll(Cases().ToArbitrary(), c =>
        {
            var stream = new DenyListPolicy(Patterns, action: DenyAction.Redact).CreateStream();
            var released = string.Concat(Chunks(c.Text, c.Cuts).Select(chunk => stream.Push(chunk))) + stream.Finish();
            Assert.False(stream.IsDenied);
            Assert.Null(Policy.Check(released));
            Assert.Equal(Policy.Check(c.Text) is not null, stream.Redactions > 0);
            if (stream.Redactions == 0)
            {
                Assert.Equal(c.Text, released);
            }
        });

    private static void CheckOutcome(string text, string released, bool denied)
    {
        var whole = Policy.Check(text);
        Assert.Equal(whole is not null, denied);
        if (whole is null)
        {
            Assert.Equal(text, released);
            return;
        }

        // Released text is a prefix of the input whose normalized form ends before the first match begins.
        Assert.StartsWith(released, text, StringComparison.Ordinal);
        var normalizedReleased = TextNormalizer.Normalize(released);
        Assert.StartsWith(normalizedReleased, TextNormalizer.Normalize(text), StringComparison.Ordinal);
        Assert.True(normalizedReleased.Length <= whole.NormalizedStart,
            $"released {normalizedReleased.Length} normalized chars, match starts at {whole.NormalizedStart}");
        Assert.Null(Policy.Check(released));
    }

    internal static IEnumerable<string> Chunks(string text, int[] cuts)
    {
        var from = 0;
        foreach (var cut in cuts)
        {
            if (cut > from && cut <= text.Length)
            {
                yield return text[from..cut];
                from = cut;
            }
        }

        yield return text[from..];
    }

    /// <summary>
    /// Mirrors the engine's OutputPipeline guard stage: pending = held back + new; remove what is released; after a
    /// replacement, ask again about the rest until the guard releases or denies.
    /// </summary>
    internal static (string Released, bool Denied) RunLikeThePipeline(IOutputGuard guard, IEnumerable<string> chunks)
    {
        var pending = new System.Text.StringBuilder();
        var released = new System.Text.StringBuilder();
        foreach (var chunk in chunks.Append(null))
        {
            var isFinal = chunk is null;
            pending.Append(chunk);
            while (true)
            {
                var verdict = guard.Inspect(pending.ToString(), isFinal);
                if (verdict.IsDenied)
                {
                    return (released.ToString(), true);
                }

                if (verdict.IsReplacement)
                {
                    Assert.InRange(verdict.ReleaseChars, 1, pending.Length);
                    released.Append(verdict.Replacement);
                    pending.Remove(0, verdict.ReleaseChars);
                    if (pending.Length > 0)
                    {
                        continue;
                    }

                    break;
                }

                var n = isFinal ? pending.Length : Math.Clamp(verdict.ReleaseChars, 0, pending.Length);
                released.Append(pending.ToString(0, n));
                pending.Remove(0, n);
                break;
            }
        }

        return (released.ToString(), false);
    }
}
