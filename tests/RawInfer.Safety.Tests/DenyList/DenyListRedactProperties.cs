using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RawInfer.Safety.DenyList;
using Xunit;

namespace RawInfer.Safety.Tests.DenyList;

/// <summary>
/// Redact mode through the engine's output hook: for any text built from tricky fragments and any split into chunks,
/// what the guard delivers equals the whole text redacted by a slow reference (and by <see cref="DenyListStream"/> on
/// the whole text). Since delivery only ever appends, every prefix delivered while streaming is a prefix of that
/// result, so no character of a redacted phrase leaves at any time.
/// </summary>
/// <remarks>
/// The guaranteed invariant: delivered = s0 + M + s1 + M + … + sn, where M is the marker, the input is
/// s0 + p1 + s1 + p2 + … + sn, each pi is the smallest run of whole normalization pieces (raw text between safe
/// boundaries) holding the first match that ends earliest after s(i−1), and no si holds a complete pattern after
/// normalization. The delivered text as a whole may still hold a pattern that runs into or out of the marker (e.g. a
/// pattern "] x"), since matching starts afresh after each marker; the patterns here cannot.
/// </remarks>
public sealed class DenyListRedactProperties
{
    private const string Marker = DenyListPolicy.RedactionMarker;

    private static readonly DenyListPolicy Redacting = new(DenyListStreamProperties.Patterns, action: DenyAction.Redact);

    [Property(MaxTest = 1000)]
    public Property Redact_mode_through_the_guard_equals_the_whole_text_redaction_for_any_chunking() =>
        Prop.ForAll(DenyListStreamProperties.Cases().ToArbitrary(), c =>
        {
            var guard = new DenyListOutputGuard(Redacting, keyId: null);
            var (released, denied) = DenyListStreamProperties.RunLikeThePipeline(guard, DenyListStreamProperties.Chunks(c.Text, c.Cuts));
            Assert.False(denied);

            var (reference, redactions) = ReferenceRedact(c.Text);
            Assert.Equal(reference, released);
            Assert.Equal(redactions, guard.Redactions);

            var whole = Redacting.CreateStream();
            Assert.Equal(whole.Push(c.Text) + whole.Finish(), released);
            Assert.Equal(redactions, whole.Redactions);

            var segments = released.Split(Marker);
            Assert.Equal(redactions + 1, segments.Length);
            Assert.All(segments, segment => Assert.Null(Redacting.Check(segment)));
            Assert.Null(Redacting.Check(released)); // true for these patterns (none can run through the marker)
        });

    [Fact]
    public void The_reference_redacts_whole_pieces_only()
    {
        // "e" + U+0301 is one piece (the mark joins it), so the whole "café" piece run is replaced, and the "x"
        // before it stays.
        Assert.Equal(("x" + Marker + "!", 1), ReferenceRedact("xcafe\u0301!"));
        Assert.Equal(("a " + Marker + " and " + Marker, 2), ReferenceRedact("a RED  ball and ＦＩＲＥ"));
        Assert.Equal(("nothing here", 0), ReferenceRedact("nothing here"));
    }

    /// <summary>
    /// Slow whole-text redaction written from the definition: the first safe end whose prefix holds a pattern, the
    /// last safe start before the match's first normalized character, replace, start afresh after it.
    /// </summary>
    private static (string Text, int Redactions) ReferenceRedact(string text)
    {
        var output = new StringBuilder();
        var rest = text;
        var redactions = 0;
        while (true)
        {
            var end = -1;
            for (var k = 1; k <= rest.Length && end < 0; k++)
            {
                if ((k == rest.Length || TextNormalizer.IsSafeBoundary(rest, k)) && Redacting.Check(rest.AsSpan(0, k)) is not null)
                {
                    end = k;
                }
            }

            if (end < 0)
            {
                return (output.Append(rest).ToString(), redactions);
            }

            var matchStart = Redacting.Check(rest.AsSpan(0, end))!.NormalizedStart;
            var start = 0;
            for (var b = 1; b < end; b++)
            {
                if (TextNormalizer.IsSafeBoundary(rest, b) && TextNormalizer.Normalize(rest.AsSpan(0, b)).Length <= matchStart)
                {
                    start = b;
                }
            }

            output.Append(rest, 0, start).Append(Marker);
            rest = rest[end..];
            redactions++;
        }
    }
}
