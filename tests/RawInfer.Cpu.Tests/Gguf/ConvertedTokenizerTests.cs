using RawInfer.Models.Gguf;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Cpu.Tests.Gguf;

/// <summary>The vocabulary written by the llama2.c → GGUF converter tokenizes exactly like the llama2.c file.</summary>
public sealed class ConvertedTokenizerTests
{
    [Theory]
    [InlineData("Once upon a time")]
    [InlineData("Lily's mom said, \"Lily, let's go to the park.\"\nThe end.")]
    [InlineData("  two  spaces, tabs\tand ünïcödé 🦙")]
    [InlineData("")]
    public void Converted_vocabulary_encodes_and_decodes_like_tok512(string text)
    {
        using var converted = new ConvertedStories260K();
        using var file = GgufFile.Open(converted.Path);
        var fromGguf = GgufTokenizer.FromMetadata(file.Metadata);
        var fromBin = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), 512);

        int[] expected = fromBin.Encode(text, addBos: true, addEos: false);
        Assert.Equal(expected, fromGguf.Encode(text, addBos: true, addEos: false));
        int previous = -1;
        foreach (int id in expected)
        {
            Assert.Equal(fromBin.TokenBytes(previous, id).ToArray(), fromGguf.TokenBytes(previous, id).ToArray());
            previous = id;
        }
    }
}
