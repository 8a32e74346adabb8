using RawInfer.Models;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;
using static RawInfer.Models.Tests.CheckpointFiles;

namespace RawInfer.Models.Tests;

public sealed class CheckpointRoundTripTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("rawinfer-models-tests-").FullName;

    [Theory]
    [InlineData(48, 37, 2, 6, 2, 67, 16, false)]
    [InlineData(32, 64, 3, 4, 4, 50, 8, true)]
    public unsafe void WriteSynthetic_then_Load_round_trips(
        int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seq, bool shared)
    {
        var config = new ModelConfig(dim, hidden, layers, heads, kvHeads, vocab, seq, shared);
        var path = Path.Combine(_directory, "model.bin");
        Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 5);

        Assert.Equal(ExpectedLength(config), new FileInfo(path).Length);
        Assert.Equal(28 + (4 * (config.ParameterCount + ((long)seq * config.HeadDim))), new FileInfo(path).Length);
        Assert.Equal(config, Llama2cCheckpoint.ReadHeader(path));

        var bytes = File.ReadAllBytes(path);
        using var model = Llama2cCheckpoint.Load(path);
        Assert.Equal("llama2c", model.Format);
        Assert.Equal(config, model.Config);
        Assert.Equal(layers, model.Weights.Layers.Count);

        var w = model.Weights;
        AssertView(w.TokenEmbedding, "token_embedding_table", 0, vocab, dim);
        AssertView(w.Layers[1].Wk, "wk", (long)dim * config.KvDim * 4, config.KvDim, dim);
        AssertView(w.Layers[layers - 1].W2, "w2", (long)(layers - 1) * dim * hidden * 4, dim, hidden);
        AssertView(w.Layers[1].FfnNorm, "rms_ffn_weight", dim * 4, 1, dim);
        AssertView(w.FinalNorm, "rms_final_weight", 0, 1, dim);
        if (shared)
        {
            Assert.True(w.Classifier.Data == w.TokenEmbedding.Data);
        }
        else
        {
            AssertView(w.Classifier, "wcls", 0, vocab, dim);
        }

        void AssertView(WeightTensor t, string tensor, long withinTensor, int rows, int cols)
        {
            Assert.Equal(TensorType.F32, t.Type);
            Assert.Equal((rows, cols), (t.Rows, t.Cols));
            var start = OffsetOf(config, tensor) + withinTensor;
            var expected = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan((int)start, rows * cols * 4));
            Assert.True(expected.SequenceEqual(t.AsF32()), $"{tensor} view does not match the file bytes at {start}");
        }
    }

    [Fact]
    public void Synthetic_weights_are_deterministic_per_seed()
    {
        var config = new ModelConfig(16, 24, 1, 2, 1, 10, 4, SharedClassifier: true);
        var a = Path.Combine(_directory, "a.bin");
        var b = Path.Combine(_directory, "b.bin");
        var c = Path.Combine(_directory, "c.bin");
        Llama2cCheckpointWriter.WriteSynthetic(a, config, seed: 9);
        Llama2cCheckpointWriter.WriteSynthetic(b, config, seed: 9);
        Llama2cCheckpointWriter.WriteSynthetic(c, config, seed: 10);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.NotEqual(File.ReadAllBytes(a), File.ReadAllBytes(c));
    }

    [Fact]
    public void WriteSynthetic_rejects_an_invalid_shape()
    {
        var config = new ModelConfig(48, 37, 2, 7, 1, 67, 16, SharedClassifier: true);
        var error = Assert.Throws<ArgumentException>(
            () => Llama2cCheckpointWriter.WriteSynthetic(Path.Combine(_directory, "x.bin"), config, 1));
        Assert.Contains("n_heads", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Stories260K_header_reads_as_documented()
    {
        var config = Llama2cCheckpoint.ReadHeader(TestPaths.Model("stories260K.bin"));
        Assert.Equal(new ModelConfig(64, 172, 5, 8, 4, 512, 512, SharedClassifier: true), config);
        using var model = Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        Assert.Equal(config, model.Config);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
