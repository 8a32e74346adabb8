using RawInfer.Tests;

namespace RawInfer.Tokenizers.Tests;

/// <summary>llama.cpp's tokenizer vectors: .inp strings separated by "\n__ggml_vocab_test__\n", .out ids per line.</summary>
internal static class LlamaCppVectors
{
    private const string Separator = "\n__ggml_vocab_test__\n";

    public static (List<string> Inputs, List<int[]> Expected) Read(string vocabFile)
    {
        string inp = File.ReadAllText(Path.Combine(TestPaths.TokenizersDir, vocabFile + ".inp"));
        var inputs = inp.Split(Separator).ToList();
        if (inputs[^1].Length == 0)
        {
            inputs.RemoveAt(inputs.Count - 1); // the file ends with a separator
        }

        var expected = File.ReadAllLines(Path.Combine(TestPaths.TokenizersDir, vocabFile + ".out"))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())
            .ToList();
        Assert.Equal(inputs.Count, expected.Count);
        return (inputs, expected);
    }
}
