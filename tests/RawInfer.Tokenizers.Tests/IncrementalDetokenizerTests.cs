using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RawInfer.Tokenizers.Tests;

public class IncrementalDetokenizerTests
{
    [Fact]
    public void Character_split_across_byte_tokens_is_held_back_until_complete()
    {
        var tok = VocabFile.Tok512;
        var detok = new IncrementalDetokenizer(tok);
        Assert.Equal(" ", detok.Push(VocabFile.Tok512Id(" ")));
        Assert.Equal(string.Empty, detok.Push(3 + 0xF0));
        Assert.Equal(string.Empty, detok.Push(3 + 0x9F));
        Assert.Equal(string.Empty, detok.Push(3 + 0x99));
        Assert.Equal(3, detok.PendingByteCount);
        Assert.Equal("🙂", detok.Push(3 + 0x82));
        Assert.Equal(0, detok.PendingByteCount);
        Assert.Equal(string.Empty, detok.Flush());
    }

    [Fact]
    public void Invalid_bytes_become_replacement_characters_without_waiting()
    {
        var detok = new IncrementalDetokenizer(VocabFile.Tok512);
        Assert.Equal("\uFFFD", detok.Push(3 + 0xFF));          // never valid in UTF-8
        Assert.Equal(string.Empty, detok.Push(3 + 0xE4));      // could start 世
        Assert.Equal("\uFFFDA", detok.Push(3 + 0x41));         // 'A' proves E4 was a dead end
    }

    [Fact]
    public void Flush_turns_an_incomplete_tail_into_one_replacement_character()
    {
        var detok = new IncrementalDetokenizer(VocabFile.Tok512);
        Assert.Equal(string.Empty, detok.Push(3 + 0xE4));
        Assert.Equal(string.Empty, detok.Push(3 + 0xB8));
        Assert.Equal("\uFFFD", detok.Flush());
        Assert.Equal(string.Empty, detok.Flush());
    }

    [Fact]
    public void Bos_before_the_first_token_drops_its_leading_space()
    {
        var detok = new IncrementalDetokenizer(VocabFile.Llama2);
        Assert.Equal(string.Empty, detok.Push(1));
        Assert.Equal("Once", detok.Push(9038));
        Assert.Equal(" upon", detok.Push(2501));
    }

    /// <summary>
    /// Any text, encoded as byte tokens only and pushed one byte at a time: every chunk is whole characters and the
    /// chunks concatenate to the text (FsCheck strings include lone surrogates, which encode as U+FFFD).
    /// </summary>
    [Property(MaxTest = 300)]
    public Property Byte_by_byte_push_yields_whole_characters_only(NonNull<string> input)
    {
        string text = input.Get;
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        var detok = new IncrementalDetokenizer(VocabFile.Tok512);
        var output = new StringBuilder();
        bool allWhole = true;
        foreach (byte b in utf8)
        {
            string chunk = detok.Push(3 + b);
            allWhole &= IsWholeCharacters(chunk);
            output.Append(chunk);
        }

        output.Append(detok.Flush());
        string expected = Encoding.UTF8.GetString(utf8);
        return (allWhole && output.ToString() == expected).Label($"got \"{output}\" expected \"{expected}\"");
    }

    /// <summary>Random byte soup (valid or not) decodes exactly as a one-shot decoder would, whatever the split.</summary>
    [Property(MaxTest = 300)]
    public Property Arbitrary_bytes_decode_like_the_one_shot_decoder(byte[] bytes)
    {
        var detok = new IncrementalDetokenizer(VocabFile.Tok512);
        var output = new StringBuilder();
        bool allWhole = true;
        foreach (byte b in bytes)
        {
            string chunk = detok.Push(3 + b);
            allWhole &= IsWholeCharacters(chunk);
            output.Append(chunk);
        }

        output.Append(detok.Flush());
        return (allWhole && output.ToString() == Encoding.UTF8.GetString(bytes)).ToProperty();
    }

    private static bool IsWholeCharacters(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1]))
                {
                    return false;
                }

                i++;
            }
            else if (char.IsLowSurrogate(s[i]))
            {
                return false;
            }
        }

        return true;
    }
}
