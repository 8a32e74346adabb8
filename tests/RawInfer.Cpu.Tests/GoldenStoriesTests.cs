using System.Text;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Cpu.Tests;

/// <summary>
/// stories260K with greedy decoding must reproduce llama2.c's published output (llama2.c's test_all.py idea).
/// </summary>
public class GoldenStoriesTests
{
    // llama2.c run.c, greedy (temperature 0), prompt "Once upon a time" with BOS; quoted in shared/models/README.md.
    private const string Reference =
        "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\n"
        + "Lily's mom said, \"Lily, let's go to the park.\" Lily was sad and didn't know what to do. She said, \"I want to play with your ball, but I can't find it.\"";

    private const int Steps = 256;

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Greedy_generation_reproduces_llama2c(int threads)
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        var tokenizer = LlamaTokenizer.Load(TestPaths.Model("tok512.bin"), model.Config.VocabSize);
        using var transformer = new CpuTransformer(model, threads);
        var kv = transformer.CreateKvCache(Steps);

        var prompt = tokenizer.Encode("Once upon a time", addBos: true, addEos: false);
        Assert.Equal(tokenizer.BosId, prompt[0]);

        var text = new List<byte>();
        var token = prompt[0];
        var endedAtBos = false;
        var position = 0;
        while (position < Steps)
        {
            var logits = transformer.Forward(token, position, kv);
            var next = position < prompt.Length - 1 ? prompt[position + 1] : ArgMax(logits);
            position++;

            // run.c stops printing at BOS (it delimits stories); the forward pass keeps going to 256 steps.
            endedAtBos |= next == tokenizer.BosId;
            if (!endedAtBos)
            {
                text.AddRange(tokenizer.TokenBytes(token, next));
            }

            token = next;
        }

        Assert.Equal(Steps, position);
        var generated = Encoding.UTF8.GetString(text.ToArray());
        Assert.True(
            generated.StartsWith(Reference, StringComparison.Ordinal),
            $"generated text differs from llama2.c's:\n{generated}");
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
