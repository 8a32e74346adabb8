using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Tests.Gguf;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// When <see cref="CpuWeightLayout.TryInterleaveInPlace"/> rewrites a model and when it refuses: only the process's
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
        Assert.True(CpuWeightLayout.TryInterleaveInPlace(model, out var reason), reason);
        Assert.Null(reason);
        Assert.True(model.WeightsRewritten);
        var weights = model.Weights;
        var products = weights.Layers.SelectMany(l => new[] { l.Wq, l.Wk, l.Wv, l.Wo, l.W1, l.W2, l.W3 }).Append(weights.Classifier).ToList();
        Assert.All(products, w => Assert.Equal(w.Type == TensorType.Q8_0, w.InterleavedInPlace));
        Assert.Contains(products, w => w.InterleavedInPlace);
        Assert.True(weights.Classifier.Data == weights.TokenEmbedding.Data); // stories260K shares its classifier
        Assert.True(weights.TokenEmbedding.InterleavedInPlace); // so the table says it was rewritten too

        Assert.False(CpuWeightLayout.TryInterleaveInPlace(model, out reason));
        Assert.Equal("the weights were already rewritten", reason);
    }

    [Fact]
    public void Weights_already_handed_out_are_not_rewritten()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var converted = new ConvertedStories260K(TensorType.Q8_0);
        using var model = GgufLlamaLoader.Load(converted.Path);
        var before = model.Weights; // a reader of the file's layout now holds them
        Assert.False(CpuWeightLayout.TryInterleaveInPlace(model, out var reason));
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
        Assert.False(CpuWeightLayout.TryInterleaveInPlace(model, out var reason));
        Assert.Contains("read-only mapping", reason, StringComparison.Ordinal);
        Assert.Equal(File.ReadAllBytes(converted.Path), bytes);
    }

    [Fact]
    public void A_model_without_Q8_0_products_is_left_as_it_is()
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Assert.False(CpuWeightLayout.TryInterleaveInPlace(model, out var reason));
        Assert.Contains("no Q8_0 product matrix", reason, StringComparison.Ordinal);
        Assert.False(model.WeightsRewritten);
    }
}
