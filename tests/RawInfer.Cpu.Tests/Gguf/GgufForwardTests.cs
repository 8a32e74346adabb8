using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Gguf;

/// <summary>
/// stories260K read from its llama2.c checkpoint and from the converted GGUF (F32, Q/K rows copied unpermuted)
/// gives bit-identical logits and therefore the same greedy tokens. (This shows the converter and loader are
/// lossless; that llama.cpp reads the same rows with the same RoPE pairing rests on its sources, see
/// GgufLlamaLoader's remarks.)
/// </summary>
public sealed class GgufForwardTests
{
    [Fact]
    public void Converted_stories260K_gives_the_same_logits_and_greedy_tokens_as_the_checkpoint()
    {
        using var converted = new ConvertedStories260K();
        using var bin = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var gguf = GgufLlamaLoader.Load(converted.Path);
        using var fromBin = new CpuTransformer(bin, 1);
        using var fromGguf = new CpuTransformer(gguf, 1);
        var kvBin = fromBin.CreateKvCache(64);
        var kvGguf = fromGguf.CreateKvCache(64);

        int tokenBin = 1, tokenGguf = 1; // BOS, then greedy
        for (int position = 0; position < 64; position++)
        {
            var a = fromBin.Forward(tokenBin, position, kvBin).ToArray();
            var b = fromGguf.Forward(tokenGguf, position, kvGguf).ToArray();
            Assert.Equal(a, b);
            tokenBin = ArgMax(a);
            tokenGguf = ArgMax(b);
        }
    }

    private static int ArgMax(float[] logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
            {
                best = i;
            }
        }

        return best;
    }
}
