using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Tests.Gguf;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// <see cref="CpuTransformer"/> decodes the block scales of every Q8_0 matrix it multiplies once, at
/// construction: stories260K's Q8_0 conversion decodes with them exactly as with the kernel converting each
/// block's half per product (every logit the same bits over a run of positions), which also shows that every
/// matrix got its own table.
/// </summary>
[Collection(KernelSwitches.Name)] // sets MatVecQ8_0.UseDecodedScales
public sealed class DecodedScalesTransformerTests
{
    [Fact]
    public void Q8_0_decode_gives_the_same_logits_with_and_without_the_decoded_scales()
    {
        using var converted = new ConvertedStories260K(TensorType.Q8_0);
        try
        {
            using var model = GgufLlamaLoader.Load(converted.Path);
            using var transformer = new CpuTransformer(model, threads: 2) { ParallelThreshold = 0 };
            var multiplied = model.Weights.Layers.SelectMany(l => new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W2, l.W3 }).Append(model.Weights.Classifier);
            var q8 = multiplied.Count(w => w.Type == TensorType.Q8_0);
            Assert.True(q8 >= 6 * model.Config.NumLayers, $"{q8} Q8_0 matrices"); // (its hidden width 172 leaves w2 in F32)
            Assert.Equal(q8, transformer.DecodedScaleTableCount);

            var withTables = Run(transformer, decoded: true);
            var converting = Run(transformer, decoded: false);
            for (var p = 0; p < withTables.Length; p++)
            {
                for (var i = 0; i < withTables[p].Length; i++)
                {
                    Assert.True(
                        BitConverter.SingleToInt32Bits(withTables[p][i]) == BitConverter.SingleToInt32Bits(converting[p][i]),
                        $"position {p}, logit {i}: {withTables[p][i]:R} vs {converting[p][i]:R}");
                }
            }
        }
        finally
        {
            MatVecQ8_0.UseDecodedScales = true;
        }
    }

    [Fact]
    public void Other_types_get_no_tables()
    {
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        using var transformer = new CpuTransformer(model, threads: 1);
        Assert.Equal(0, transformer.DecodedScaleTableCount);
    }

    private static float[][] Run(CpuTransformer transformer, bool decoded)
    {
        MatVecQ8_0.UseDecodedScales = decoded;
        var kv = transformer.CreateKvCache(24);
        var logits = new float[24][];
        for (var p = 0; p < logits.Length; p++)
        {
            logits[p] = transformer.Forward(1 + ((p * 37) % (transformer.Config.VocabSize - 1)), p, kv).ToArray();
        }

        return logits;
    }
}
