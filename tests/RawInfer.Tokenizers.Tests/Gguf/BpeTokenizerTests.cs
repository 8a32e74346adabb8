using System.Text;
using RawInfer.Tokenizers;
using Xunit;

namespace RawInfer.Tokenizers.Tests.Gguf;

public sealed class BpeTokenizerTests
{
    // 256 byte characters in GPT-2 order, then merged pieces in merge order.
    private static readonly string[] Merges = { "h e", "l l", "he ll", "hell o", "Ġ h", "Ġ hello", "1 2" };

    [Fact]
    public void Words_merge_by_rank_and_spaces_attach_to_the_next_word()
    {
        var tokenizer = Create("gpt-2");
        int[] ids = tokenizer.Encode("hello hello", addBos: false, addEos: false);
        Assert.Equal(new[] { Id(tokenizer, "hello"), Id(tokenizer, "Ġhello") }, ids);
    }

    [Fact]
    public void Lowest_rank_wins_over_position()
    {
        // "hell" must come from (he)(ll) → hell, not h + ell: the merges "h e" and "l l" rank before "he ll".
        var tokenizer = Create("gpt-2");
        Assert.Equal(new[] { Id(tokenizer, "hell") }, tokenizer.Encode("hell", false, false));
    }

    [Fact]
    public void Bytes_without_merges_become_byte_tokens_and_decode_back()
    {
        var tokenizer = Create("gpt-2");
        const string text = "héllo\tworld 🦙\n";
        int[] ids = tokenizer.Encode(text, false, false);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            bytes.AddRange(tokenizer.TokenBytes(-1, id).ToArray());
        }

        Assert.Equal(text, Encoding.UTF8.GetString([.. bytes]));
    }

    [Fact]
    public void Smollm_splits_digits_one_by_one()
    {
        var gpt2 = Create("gpt-2");
        var smollm = Create("smollm");
        Assert.Equal(new[] { Id(gpt2, "12") }, gpt2.Encode("12", false, false));
        Assert.Equal(new[] { Id(smollm, "1"), Id(smollm, "2") }, smollm.Encode("12", false, false));
    }

    [Fact]
    public void Control_tokens_decode_to_nothing_and_bos_eos_are_added_on_request()
    {
        var tokenizer = Create("gpt-2");
        int eot = tokenizer.VocabSize - 1;
        Assert.Equal(0, tokenizer.TokenBytes(-1, eot).Length);
        int[] ids = tokenizer.Encode("he", addBos: true, addEos: true);
        Assert.Equal(new[] { eot, Id(tokenizer, "he"), eot }, ids);
    }

    [Fact]
    public void Unknown_pre_tokenizer_is_refused_by_name()
    {
        var e = Assert.Throws<TokenizerFormatException>(() => Create("deepseek-coder"));
        Assert.Contains("'deepseek-coder' is not supported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Malformed_merge_is_refused()
    {
        var (tokens, types) = Vocabulary();
        Assert.Throws<TokenizerFormatException>(() => new BpeTokenizer(tokens, types, ["nospace"], "gpt-2", -1, -1));
    }

    [Fact]
    public void Metadata_with_an_unknown_model_is_refused_by_name()
    {
        var metadata = new Dictionary<string, object>
        {
            ["tokenizer.ggml.model"] = "bert",
            ["tokenizer.ggml.tokens"] = new[] { "a" },
        };
        var e = Assert.Throws<TokenizerFormatException>(() => GgufTokenizer.FromMetadata(metadata));
        Assert.Contains("'bert' is not supported", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_builds_a_bpe_tokenizer_with_its_special_ids()
    {
        var (tokens, types) = Vocabulary();
        var metadata = new Dictionary<string, object>
        {
            ["tokenizer.ggml.model"] = "gpt2",
            ["tokenizer.ggml.pre"] = "gpt-2",
            ["tokenizer.ggml.tokens"] = tokens,
            ["tokenizer.ggml.token_type"] = types,
            ["tokenizer.ggml.merges"] = Merges,
            ["tokenizer.ggml.bos_token_id"] = (uint)(tokens.Length - 1),
            ["tokenizer.ggml.eos_token_id"] = (uint)(tokens.Length - 1),
        };
        var tokenizer = Assert.IsType<BpeTokenizer>(GgufTokenizer.FromMetadata(metadata));
        Assert.Equal(tokens.Length - 1, tokenizer.BosId);
        Assert.False(GgufTokenizer.AddBosByDefault(metadata));
    }

    private static BpeTokenizer Create(string pre)
    {
        var (tokens, types) = Vocabulary();
        int eot = tokens.Length - 1;
        return new BpeTokenizer(tokens, types, Merges, pre, eot, eot);
    }

    private static (string[] Tokens, int[] Types) Vocabulary()
    {
        var tokens = new List<string>();
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            tokens.Add(((char)(printable ? b : 256 + tokens.Count(t => t[0] >= 256))).ToString());
        }

        foreach (string merge in Merges)
        {
            tokens.Add(merge.Replace(" ", "", StringComparison.Ordinal));
        }

        tokens.Add("<|endoftext|>");
        var types = Enumerable.Repeat(1, tokens.Count).ToArray();
        types[^1] = BpeTokenizer.TokenTypeControl;
        return ([.. tokens], types);
    }

    private static int Id(BpeTokenizer tokenizer, string piece)
    {
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            var bytes = tokenizer.TokenBytes(-1, id);
            if (bytes.SequenceEqual(Encoding.UTF8.GetBytes(piece.Replace('Ġ', ' '))))
            {
                return id;
            }
        }

        throw new InvalidOperationException($"no token {piece}");
    }
}
