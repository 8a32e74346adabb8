using RawInfer.Models;

namespace RawInfer.Models.Tests;

public class ModelShapesTests
{
    [Fact]
    public void Named_110m_is_the_tinystories_110m_shape()
    {
        Assert.Equal(new ModelConfig(768, 2048, 12, 12, 12, 32000, 1024, SharedClassifier: true), ModelShapes.Parse("110m"));
        Assert.Equal(ModelShapes.Parse("110m"), ModelShapes.Parse(" 110M "));
    }

    [Fact]
    public void Named_1b_is_tinyllama_with_grouped_query_attention()
    {
        var c = ModelShapes.Parse("1b");
        Assert.Equal((2048, 5632, 22, 32, 4, 32000, 2048), (c.Dim, c.HiddenDim, c.NumLayers, c.NumHeads, c.NumKvHeads, c.VocabSize, c.MaxSeqLen));
    }

    [Fact]
    public void Every_listed_name_parses()
    {
        foreach (var name in ModelShapes.Names)
        {
            Assert.True(ModelShapes.Parse(name).ParameterCount > 0);
        }
    }

    [Fact]
    public void Key_values_parse_in_any_order_with_kv_heads_defaulting_to_heads()
    {
        var c = ModelShapes.Parse("seq=64, vocab=100,dim=32,hidden=48,layers=2,heads=4");
        Assert.Equal(new ModelConfig(32, 48, 2, 4, 4, 100, 64, SharedClassifier: true), c);
        var gqa = ModelShapes.Parse("dim=32,hidden=48,layers=2,heads=4,kv_heads=2,vocab=100,seq=64,shared=false");
        Assert.Equal(new ModelConfig(32, 48, 2, 4, 2, 100, 64, SharedClassifier: false), gqa);
    }

    [Theory]
    [InlineData("7b-ish")]
    [InlineData("")]
    [InlineData("dim=32,hidden=48,layers=2,heads=4,vocab=100")]            // seq missing
    [InlineData("dim=32,hidden=48,layers=2,heads=4,vocab=100,seq=x")]      // not an integer
    [InlineData("dim=32,dim=32,hidden=48,layers=2,heads=4,vocab=100,seq=8")]
    [InlineData("dim=32,hidden=48,layers=2,heads=4,vocab=100,seq=8,depth=3")]
    [InlineData("dim=32,hidden=48,layers=2,heads=5,vocab=100,seq=8")]      // 5 does not divide 32
    [InlineData("dim=32,hidden=48,layers=2,heads=4,kv_heads=3,vocab=100,seq=8")]
    [InlineData("dim=32,hidden=48,layers=2,heads=4,vocab=100,seq=8,shared=maybe")]
    [InlineData("dim=32;hidden=48")]
    public void Bad_shapes_are_FormatException(string shape) =>
        Assert.Throws<FormatException>(() => ModelShapes.Parse(shape));
}
