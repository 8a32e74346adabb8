using System.Text;
using RawInfer.Models.Gguf;
using RawInfer.Tests;
using RawInfer.Tokenizers;
using Xunit;

namespace RawInfer.Cpu.Tests.Gguf;

/// <summary>
/// llama.cpp's tokenizer vectors: each string of the .inp file, encoded without BOS by the tokenizer the .gguf
/// metadata describes, must give the Hugging Face ids on the matching line of the .out file. Lives here because
/// this project reaches both the GGUF reader (Models) and the tokenizers.
/// </summary>
public sealed class GgufTokenizerVectorTests
{
    [Theory]
    [InlineData("ggml-vocab-llama-spm.gguf", typeof(LlamaTokenizer))]
    [InlineData("ggml-vocab-gpt-2.gguf", typeof(BpeTokenizer))]
    public void Every_vector_encodes_to_the_reference_ids(string vocabFile, Type tokenizerType)
    {
        string path = Path.Combine(TestPaths.TokenizersDir, vocabFile);
        using var file = GgufFile.Open(path);
        var tokenizer = GgufTokenizer.FromMetadata(file.Metadata);
        Assert.IsType(tokenizerType, tokenizer);

        var cases = ReadVectors(path);
        Assert.Equal(46, cases.Count);
        var failures = new List<string>();
        foreach (var (text, expected) in cases)
        {
            int[] actual = tokenizer.Encode(text, addBos: false, addEos: false);
            if (!actual.AsSpan().SequenceEqual(expected))
            {
                failures.Add($"'{text}': expected [{string.Join(' ', expected)}] got [{string.Join(' ', actual)}]");
            }
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Theory]
    [InlineData("ggml-vocab-llama-spm.gguf")]
    [InlineData("ggml-vocab-gpt-2.gguf")]
    public void Every_vector_decodes_back_to_its_text(string vocabFile)
    {
        string path = Path.Combine(TestPaths.TokenizersDir, vocabFile);
        using var file = GgufFile.Open(path);
        var tokenizer = GgufTokenizer.FromMetadata(file.Metadata);
        foreach (var (text, expected) in ReadVectors(path))
        {
            var bytes = new List<byte>();
            int previous = -1;
            foreach (int id in expected)
            {
                bytes.AddRange(tokenizer.TokenBytes(previous, id).ToArray());
                previous = id;
            }

            // SentencePiece adds one dummy-prefix space in front; byte-level BPE is exact.
            string decoded = Encoding.UTF8.GetString([.. bytes]);
            string want = tokenizer is LlamaTokenizer && text.Length > 0 ? " " + text : text;
            Assert.Equal(want, decoded);
        }
    }

    [Fact]
    public void Bos_defaults_follow_the_metadata()
    {
        using var spm = GgufFile.Open(Path.Combine(TestPaths.TokenizersDir, "ggml-vocab-llama-spm.gguf"));
        using var gpt2 = GgufFile.Open(Path.Combine(TestPaths.TokenizersDir, "ggml-vocab-gpt-2.gguf"));
        Assert.True(GgufTokenizer.AddBosByDefault(spm.Metadata));
        Assert.False(GgufTokenizer.AddBosByDefault(gpt2.Metadata));
        var tokenizer = GgufTokenizer.FromMetadata(spm.Metadata);
        Assert.Equal(new[] { 1, 15043, 2 }, tokenizer.Encode("Hello", addBos: true, addEos: true));
    }

    /// <summary>
    /// Reads test-tokenizer-0's format: the whole .inp split on "\n__ggml_vocab_test__\n" (so a string's own
    /// leading and trailing newlines are kept), paired in order with the lines of the .out file.
    /// </summary>
    private static List<(string Text, int[] Ids)> ReadVectors(string vocabPath)
    {
        const string separator = "\n__ggml_vocab_test__\n";
        string raw = File.ReadAllText(vocabPath + ".inp", new UTF8Encoding(false, true));
        var inputs = new List<string>();
        for (int at = 0; at < raw.Length;)
        {
            int next = raw.IndexOf(separator, at, StringComparison.Ordinal);
            if (next < 0)
            {
                inputs.Add(raw[at..]);
                break;
            }

            inputs.Add(raw[at..next]);
            at = next + separator.Length;
        }

        string[] outputs = File.ReadAllLines(vocabPath + ".out");
        Assert.Equal(inputs.Count, outputs.Length);
        var cases = new List<(string, int[])>();
        for (int i = 0; i < inputs.Count; i++)
        {
            int[] ids = Array.ConvertAll(outputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries), int.Parse);
            cases.Add((inputs[i], ids));
        }

        return cases;
    }
}
