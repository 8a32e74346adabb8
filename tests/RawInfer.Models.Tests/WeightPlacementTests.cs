using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;

namespace RawInfer.Models.Tests;

/// <summary>
/// A model file copied into memory (the default on Linux) places its weights on 64-byte cache lines whatever their
/// offset in the file: a llama2c checkpoint's start 28 bytes in, a GGUF file's data section at a multiple of 32.
/// </summary>
public sealed class WeightPlacementTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("rawinfer-placement-tests-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void A_llama2c_checkpoints_weights_start_on_cache_lines()
    {
        // dim 32: every row is 128 bytes, so the whole file's weights keep the offset of the first one
        var config = new ModelConfig(32, 64, 2, 4, 2, 67, 16, SharedClassifier: false);
        var path = Path.Combine(_directory, "model.bin");
        Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 5);

        using var model = Llama2cCheckpoint.Load(path);
        AssertOnCacheLines(model.Weights);
        var file = File.ReadAllBytes(path);
        Assert.Equal(BitConverter.ToSingle(file, 28), model.Weights.TokenEmbedding.AsF32()[0]);
    }

    [Theory]
    [InlineData(TensorType.F32)]
    [InlineData(TensorType.F16)]
    public void A_GGUF_files_weights_start_on_cache_lines_when_its_data_section_does_not(TensorType dtype)
    {
        var path = Path.Combine(_directory, "model.gguf");
        var offset = 0L;
        for (var vocab = 259; vocab < 400 && offset % 64 != 32; vocab++)
        {
            // the vocabulary's length moves the end of the header: find one that leaves the data section off a line
            var config = new ModelConfig(32, 48, 2, 4, 2, vocab, 64, SharedClassifier: false);
            GgufModelWriter.WriteSynthetic(path, config, seed: 1, dtype);
            using var header = GgufFile.Parse(File.ReadAllBytes(path));
            offset = header.DataOffset;
            Assert.Equal(GgufFile.DefaultAlignment, header.Alignment);
        }

        Assert.Equal(32, offset % 64);
        using var model = GgufLlamaLoader.Load(path);
        AssertOnCacheLines(model.Weights);
    }

    private static unsafe void AssertOnCacheLines(LlamaWeights weights)
    {
        var all = new List<(string Name, WeightTensor Tensor)>
        {
            ("token_embedding", weights.TokenEmbedding), ("final_norm", weights.FinalNorm), ("classifier", weights.Classifier),
        };
        for (var l = 0; l < weights.Layers.Count; l++)
        {
            var layer = weights.Layers[l];
            all.Add(($"layers[{l}].attention_norm", layer.AttentionNorm));
            all.Add(($"layers[{l}].wq", layer.Wq));
            all.Add(($"layers[{l}].wk", layer.Wk));
            all.Add(($"layers[{l}].wv", layer.Wv));
            all.Add(($"layers[{l}].wo", layer.Wo));
            all.Add(($"layers[{l}].ffn_norm", layer.FfnNorm));
            all.Add(($"layers[{l}].w1", layer.W1));
            all.Add(($"layers[{l}].w2", layer.W2));
            all.Add(($"layers[{l}].w3", layer.W3));
        }

        foreach (var (name, tensor) in all)
        {
            Assert.True((long)tensor.Data % 64 == 0, $"{name} starts {(long)tensor.Data % 64} bytes into a cache line");
        }
    }
}
