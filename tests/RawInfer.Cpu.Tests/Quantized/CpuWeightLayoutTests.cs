using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Tests.Gguf;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// When <see cref="CpuWeightLayout.TryRewriteInPlace"/> rewrites a model and when it refuses: only the process's
/// own copy of the file, only before the weights were handed out, once, and only where there is a Q8_0 product
/// matrix; a token embedding table the classifier shares is marked rewritten with it. (That the
/// rewritten model computes the file layout's bits is <c>CpuModelRunnerTests</c>' and the kernels' tests' business.)
/// </summary>
public sealed unsafe class CpuWeightLayoutTests
{
    [Fact]
    public void A_loaded_Q8_0_model_is_rewritten_once_and_its_weights_say_so()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var converted = new ConvertedStories260K(TensorType.Q8_0);
        using var model = GgufLlamaLoader.Load(converted.Path);
        Assert.True(CpuWeightLayout.TryRewriteInPlace(model, out var reason), reason);
        Assert.Null(reason);
        Assert.True(model.WeightsRewritten);
        var weights = model.Weights;
        var products = weights.Layers.SelectMany(l => new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W2, l.W3 }).Append(weights.Classifier).ToList();
        Assert.All(products, w => Assert.Equal(w.Type == TensorType.Q8_0, w.InterleavedInPlace));
        Assert.Contains(products, w => w.InterleavedInPlace);
        Assert.True(weights.Classifier.Data == weights.TokenEmbedding.Data); // stories260K shares its classifier
        Assert.True(weights.TokenEmbedding.InterleavedInPlace); // so the table says it was rewritten too

        Assert.False(CpuWeightLayout.TryRewriteInPlace(model, out reason));
        Assert.Equal("the weights were already rewritten", reason);
    }

    [Fact]
    public void Weights_already_handed_out_are_not_rewritten()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var converted = new ConvertedStories260K(TensorType.Q8_0);
        using var model = GgufLlamaLoader.Load(converted.Path);
        var before = model.Weights; // a reader of the file's layout now holds them
        Assert.False(CpuWeightLayout.TryRewriteInPlace(model, out var reason));
        Assert.Contains("handed out", reason, StringComparison.Ordinal);
        Assert.False(model.WeightsRewritten);
        Assert.False(before.Layers[0].Wq.InterleavedInPlace);
    }

    [Fact]
    public void Bytes_that_are_not_the_processs_own_copy_are_not_rewritten()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var converted = new ConvertedStories260K(TensorType.Q8_0);
        var bytes = File.ReadAllBytes(converted.Path);
        using var model = GgufLlamaLoader.Load(GgufFile.Parse(bytes)); // the caller's array, pinned: not ours to rewrite
        Assert.False(CpuWeightLayout.TryRewriteInPlace(model, out var reason));
        Assert.Contains("read-only mapping", reason, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(converted.Path), bytes);
    }

    [Fact]
    public void A_model_without_Q8_0_products_is_left_as_it_is()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Assert.False(CpuWeightLayout.TryRewriteInPlace(model, out var reason));
        Assert.Contains("no Q8_0 product matrix", reason, StringComparison.Ordinal);
        Assert.False(model.WeightsRewritten);
    }

    [Fact]
    public void A_loaded_F16_model_has_its_product_halves_scaled_but_not_the_embedding_it_shares()
    {
        Assert.SkipUnless(WidenInRegisters.Supports(TensorType.F16, 64), "no AVX-512 F16 kernels here: no halves scaled");
        using var converted = new ConvertedStories260K(TensorType.F16);
        using var model = GgufLlamaLoader.Load(converted.Path);
        Assert.True(CpuWeightLayout.TryRewriteInPlace(model, out var reason), reason);
        var weights = model.Weights;
        Assert.All(weights.Layers.SelectMany(l => new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W2, l.W3 }), w => Assert.True(w.HalvesScaled));
        Assert.True(weights.Classifier.Data == weights.TokenEmbedding.Data); // stories260K shares its classifier
        Assert.False(weights.Classifier.HalvesScaled); // the table's rows are looked up as the file has them
        Assert.False(weights.TokenEmbedding.HalvesScaled);
    }

    [Fact]
    public void An_F16_matrix_holding_a_weight_of_64_keeps_its_halves()
    {
        Assert.SkipUnless(WidenInRegisters.Supports(TensorType.F16, 64), "no AVX-512 F16 kernels here: no halves scaled");
        var checkpoint = Path.Combine(Path.GetTempPath(), $"rawinfer-{Guid.NewGuid():N}.bin");
        using var converted = new TemporaryFile();
        try
        {
            var config = new ModelConfig(64, 96, 2, 4, 2, 512, 96, SharedClassifier: false);
            Llama2cCheckpointWriter.WriteSynthetic(checkpoint, config, seed: 7);
            using (var file = File.OpenWrite(checkpoint))
            {
                // llama2.c: a 7-int header, the embedding table, every layer's attention norm, then wq of layer 0
                file.Position = (7 * sizeof(int)) + (((long)config.VocabSize * config.Dim) + ((long)config.NumLayers * config.Dim)) * sizeof(float);
                file.Write(BitConverter.GetBytes(64f));
            }

            Llama2cToGguf.Convert(checkpoint, TestPaths.Model("tok512.bin"), converted.Path, TensorType.F16);
        }
        finally
        {
            File.Delete(checkpoint);
        }

        using var model = GgufLlamaLoader.Load(converted.Path);
        Assert.True(CpuWeightLayout.TryRewriteInPlace(model, out var reason), reason);
        var layers = model.Weights.Layers;
        Assert.Equal(64f, (float)BitConverter.UInt16BitsToHalf(*(ushort*)layers[0].Wq.Data)); // the planted weight, as it was
        Assert.False(layers[0].Wq.HalvesScaled);
        Assert.True(layers[1].Wq.HalvesScaled);
        Assert.True(layers[0].Wk.HalvesScaled);
    }

    private sealed class TemporaryFile : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"rawinfer-{Guid.NewGuid():N}.gguf");

        public void Dispose() => File.Delete(Path);
    }
}
