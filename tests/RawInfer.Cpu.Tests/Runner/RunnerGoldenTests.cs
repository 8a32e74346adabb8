using System.Text;
using RawInfer.Cpu.Runner;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;
using RawInfer.Tokenizers;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// stories260K through the batched runner, prompt prefilled as one chunk then greedy decode, must reproduce
/// llama2.c's published output, next to two other sequences decoding in the same steps.
/// </summary>
public class RunnerGoldenTests
{
    // llama2.c run.c, greedy, prompt "Once upon a time" with BOS; quoted in shared/models/README.md.
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
        using var runner = new CpuModelRunner(model, threads);
        var harness = new RunnerHarness(runner, numBlocks: 64, blockSize: 16, maxTokens: 32);

        var prompt = tokenizer.Encode("Once upon a time", addBos: true, addEos: false);
        var tokens = new int[Steps];
        prompt.CopyTo(tokens, 0);
        var neighbours = new[] { CpuModelRunnerTests.RandomTokens(512, Steps + 16, 1), CpuModelRunnerTests.RandomTokens(512, Steps + 16, 2) };
        harness.Start(0, tokens, prompt.Length);
        harness.Start(1, neighbours[0], 9);
        harness.Start(2, neighbours[1], 3);
        harness.Step((1, 9), (0, prompt.Length), (2, 3));
        for (var position = prompt.Length; position < Steps; position++)
        {
            tokens[position] = ArgMax(harness.Logits[(0, position - 1)]);
            harness.Step((2, 1), (0, 1), (1, 1));
        }

        // run.c stops printing at BOS (it delimits stories)
        var text = new List<byte>();
        for (var p = 0; p + 1 < Steps && tokens[p + 1] != tokenizer.BosId; p++)
        {
            text.AddRange(tokenizer.TokenBytes(tokens[p], tokens[p + 1]));
        }

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
