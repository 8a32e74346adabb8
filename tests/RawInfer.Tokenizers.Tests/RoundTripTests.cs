namespace RawInfer.Tokenizers.Tests;

public class RoundTripTests
{
    public static TheoryData<string> Texts => new(
        "Once upon a time",
        "héllo 世界 🙂",
        "e\u0301 combining acute, a\u0308\u0323 stacked marks",
        "日本語のテキストと中文文本",
        "👩‍👩‍👧 family ZWJ, 🇫🇷 flag, 👍🏽 skin tone",
        "tabs\tand\nnewlines\r\n  and   runs of   spaces  ",
        " leading space",
        "trailing space ",
        "Ελληνικά και кириллица и עברית",
        "\u0000 nul and \u007f del and \u00a0 nbsp",
        "<s> </s> <unk> <0x41> look like special pieces",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters 𐍈");

    [Theory]
    [MemberData(nameof(Texts))]
    public void Tok512_decode_of_encode_is_identity(string text) => AssertRoundTrip(VocabFile.Tok512, text);

    [Theory]
    [MemberData(nameof(Texts))]
    public void Llama2_decode_of_encode_is_identity(string text) => AssertRoundTrip(VocabFile.Llama2, text);

    [Fact]
    public void Bos_swallows_the_dummy_prefix_space_when_decoding()
    {
        var tok = VocabFile.Llama2;
        var ids = tok.Encode("Once upon a time", addBos: true, addEos: true);
        Assert.Equal("Once upon a time", VocabFile.Decode(tok, ids));
    }

    [Fact]
    public void Byte_fallback_token_0x20_after_bos_is_kept()
    {
        // Only a piece's leading space is the dummy prefix; a literal byte token for ' ' is text.
        var tok = VocabFile.Tok512;
        Assert.Equal(" "u8.ToArray(), tok.TokenBytes(tok.BosId, 3 + 0x20).ToArray());
        Assert.Equal("the"u8.ToArray(), tok.TokenBytes(tok.BosId, VocabFile.Tok512Id(" the")).ToArray());
        Assert.Equal(" the"u8.ToArray(), tok.TokenBytes(-1, VocabFile.Tok512Id(" the")).ToArray());
        Assert.True(tok.TokenBytes(-1, tok.EosId).IsEmpty);
    }

    private static void AssertRoundTrip(LlamaTokenizer tok, string text)
    {
        var ids = tok.Encode(text, addBos: false, addEos: false);
        Assert.All(ids, id => Assert.InRange(id, 0, tok.VocabSize - 1));
        string decoded = VocabFile.Decode(tok, ids);
        Assert.Equal(" " + text, decoded); // without BOS the dummy-prefix space stays in the output
        Assert.Equal(text, VocabFile.Decode(tok, tok.Encode(text, addBos: true, addEos: true)));
    }
}
