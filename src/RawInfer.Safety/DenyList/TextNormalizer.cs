using System.Globalization;
using System.Text;

namespace RawInfer.Safety.DenyList;

/// <summary>
/// The canonical form deny-list patterns and texts are compared in: format (zero-width, bidi) and control characters
/// removed, Unicode NFKC, simple case folding (<see cref="char.ToLowerInvariant(char)"/>), whitespace runs collapsed
/// to one space. Lone surrogates become U+FFFD.
/// </summary>
/// <remarks>
/// Ignorables go first so that a zero-width joiner cannot hide a composition ("e", ZWJ, U+0301 → "é"). Folding is
/// per UTF-16 unit, so it never changes the length, which keeps the streaming mapping simple.
/// </remarks>
public static class TextNormalizer
{
    /// <summary>The normalized form of <paramref name="text"/>.</summary>
    public static string Normalize(ReadOnlySpan<char> text)
    {
        var output = new StringBuilder(text.Length);
        var lastWasSpace = false;
        AppendNormalized(text, output, ref lastWasSpace);
        return output.ToString();
    }

    /// <summary>
    /// Normalizes a piece that begins and ends at safe boundaries (see <see cref="IsSafeBoundary"/>), carrying the
    /// whitespace-collapse state across pieces; pieces normalized in order concatenate to the whole text's form.
    /// </summary>
    internal static void AppendNormalized(ReadOnlySpan<char> piece, StringBuilder output, ref bool lastWasSpace)
    {
        if (!Ascii.IsValid(piece))
        {
            AppendNormalizedUnicode(piece, output, ref lastWasSpace);
            return;
        }

        // ASCII is its own NFKC form: only drop controls, fold and collapse (the common case on the delivery path).
        foreach (var c in piece)
        {
            if (char.IsWhiteSpace(c))
            {
                if (!lastWasSpace)
                {
                    output.Append(' ');
                    lastWasSpace = true;
                }
            }
            else if (!char.IsControl(c))
            {
                output.Append(char.ToLowerInvariant(c));
                lastWasSpace = false;
            }
        }
    }

    private static void AppendNormalizedUnicode(ReadOnlySpan<char> piece, StringBuilder output, ref bool lastWasSpace)
    {
        var cleaned = new StringBuilder(piece.Length);
        var i = 0;
        while (i < piece.Length)
        {
            var status = Rune.DecodeFromUtf16(piece[i..], out var rune, out var used);
            if (status != System.Buffers.OperationStatus.Done)
            {
                rune = Rune.ReplacementChar;
                used = Math.Max(used, 1);
            }

            if (!IsIgnorable(rune))
            {
                cleaned.Append(rune.ToString());
            }

            i += used;
        }

        var composed = cleaned.ToString().Normalize(NormalizationForm.FormKC);
        foreach (var c in composed)
        {
            if (char.IsWhiteSpace(c))
            {
                if (!lastWasSpace)
                {
                    output.Append(' ');
                    lastWasSpace = true;
                }

                continue;
            }

            output.Append(char.ToLowerInvariant(c));
            lastWasSpace = false;
        }
    }

    /// <summary>Zero-width and other format characters, and controls that are not whitespace.</summary>
    internal static bool IsIgnorable(Rune rune)
    {
        var category = Rune.GetUnicodeCategory(rune);
        return category == UnicodeCategory.Format || (category == UnicodeCategory.Control && !Rune.IsWhiteSpace(rune));
    }

    /// <summary>
    /// True when NFKC cannot join the character at <paramref name="index"/> with anything before it, so the text may be
    /// cut there and both halves normalized apart. Needs the whole character (a pair split at the end is not safe).
    /// </summary>
    /// <remarks>
    /// A boundary is safe before a starter that composes with nothing before it. Characters whose NFKC form begins
    /// with a combining mark (Mn, Mc, Me — this covers the half-width voiced sound marks and the Indic vowel signs
    /// that compose) and Hangul medial/final jamo (including compatibility jamo, which NFKC maps to them) can join the
    /// previous character; ignorables are dropped before composition, so they never start a piece either.
    /// </remarks>
    internal static bool IsSafeBoundary(ReadOnlySpan<char> text, int index)
    {
        var c = text[index];
        if (c < 0x80)
        {
            return !char.IsControl(c) || char.IsWhiteSpace(c);
        }

        if (Rune.DecodeFromUtf16(text[index..], out var rune, out _) != System.Buffers.OperationStatus.Done)
        {
            return false;
        }

        if (IsIgnorable(rune))
        {
            return false;
        }

        var form = rune.ToString().Normalize(NormalizationForm.FormKC);
        if (Rune.DecodeFromUtf16(form, out var first, out _) != System.Buffers.OperationStatus.Done)
        {
            return false;
        }

        var category = Rune.GetUnicodeCategory(first);
        if (category is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark)
        {
            return false;
        }

        var v = first.Value;
        return v is not ((>= 0x1160 and <= 0x11FF) or (>= 0xD7B0 and <= 0xD7FF));
    }
}
