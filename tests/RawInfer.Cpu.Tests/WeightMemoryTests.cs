using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests;

/// <summary>
/// Loaded weights hold the file's bytes exactly, whether the loader copied the file into (huge-page advised)
/// anonymous memory or mapped it, up to the file's last byte.
/// </summary>
public sealed unsafe class WeightMemoryTests
{
    [Fact]
    public void Loaded_tensors_equal_the_file_bytes()
    {
        var path = TestPaths.Model("stories260K.bin");
        var file = File.ReadAllBytes(path);
        using var model = Llama2cCheckpoint.Load(path);
        var w = model.Weights;
        var tensors = new[] { w.TokenEmbedding, w.FinalNorm, w.Layers[0].Wq, w.Layers[^1].W2, w.Classifier };
        var first = (long)w.TokenEmbedding.Data - 28; // the legacy llama2.c header is 28 bytes, then the embedding
        foreach (var t in tensors)
        {
            var bytes = checked((int)(t.ElementCount * sizeof(float)));
            var offset = (long)t.Data - first;
            Assert.InRange(offset, 28, file.Length - bytes);
            Assert.True(new ReadOnlySpan<byte>(t.Data, bytes).SequenceEqual(file.AsSpan((int)offset, bytes)), $"tensor at offset {offset}");
        }

        // The last byte of the file is readable through the base (the copy covers the whole file).
        Assert.Equal(file[^1], *((byte*)first + file.Length - 1));
    }
}
