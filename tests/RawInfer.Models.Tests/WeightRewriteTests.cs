using RawInfer.Models;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Models.Tests;

/// <summary>
/// <see cref="LoadedModel.TryRewriteWeights"/>, the gate a backend's in-place layout goes through: a rewrite that
/// finds nothing to do changes nothing, and one that fails part way leaves no weights for anyone to read.
/// </summary>
public sealed class WeightRewriteTests
{
    [Fact]
    public void A_rewrite_with_nothing_to_do_leaves_the_model_as_it_was()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the process's own copy of a model is made on Linux");
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Assert.False(model.TryRewriteWeights(_ => null, out var reason));
        Assert.Equal(LoadedModel.NothingToRewrite, reason);
        Assert.False(model.WeightsRewritten);
        Assert.Equal(512, model.Weights.TokenEmbedding.Rows);
    }

    [Fact]
    public void A_rewrite_that_fails_part_way_leaves_no_weights_to_read()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "the process's own copy of a model is made on Linux");
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Assert.Throws<IOException>(() => model.TryRewriteWeights(_ => throw new IOException("failed after the first matrix"), out _));
        var e = Assert.Throws<InvalidOperationException>(() => model.Weights);
        Assert.Contains("failed part way; load the model again", e.Message, StringComparison.Ordinal);
    }
}
