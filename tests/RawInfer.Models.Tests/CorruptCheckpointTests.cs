using RawInfer.Models;
using RawInfer.Models.Llama2c;
using static RawInfer.Models.Tests.CheckpointFiles;

namespace RawInfer.Models.Tests;

/// <summary>Every malformed checkpoint is a ModelFormatException naming the field and byte offset; nothing else escapes.</summary>
public sealed class CorruptCheckpointTests : IDisposable
{
    // GQA, unshared classifier: the file ends with wcls.
    private static readonly ModelConfig Unshared = new(48, 37, 2, 6, 2, 67, 16, SharedClassifier: false);
    private static readonly ModelConfig Shared = new(32, 64, 2, 4, 4, 50, 8, SharedClassifier: true);

    private readonly string _directory = Directory.CreateTempSubdirectory("rawinfer-models-tests-").FullName;

    [Fact]
    public void Empty_file_names_the_first_header_field()
    {
        var path = Write("empty.bin", Array.Empty<byte>());
        AssertBoth(path, "dim", 0);
    }

    [Theory]
    [InlineData(1, "dim", 0)]
    [InlineData(4, "hidden_dim", 4)]
    [InlineData(10, "n_layers", 8)]
    [InlineData(27, "seq_len", 24)]
    public void Truncated_header_names_the_incomplete_field(int length, string field, long offset)
    {
        var path = Write("short.bin", Header(48, 37, 2, 6, 2, 67, 16).AsSpan(0, length).ToArray());
        AssertBoth(path, field, offset);
    }

    [Theory]
    [InlineData(0, 37, 2, 6, 2, 67, 16, "dim", 0)]
    [InlineData(-48, 37, 2, 6, 2, 67, 16, "dim", 0)]
    [InlineData(70_000, 37, 2, 6, 2, 67, 16, "dim", 0)]
    [InlineData(48, 0, 2, 6, 2, 67, 16, "hidden_dim", 4)]
    [InlineData(48, int.MaxValue, 2, 6, 2, 67, 16, "hidden_dim", 4)]
    [InlineData(48, 37, 0, 6, 2, 67, 16, "n_layers", 8)]
    [InlineData(48, 37, 5000, 6, 2, 67, 16, "n_layers", 8)]
    [InlineData(48, 37, 2, 0, 2, 67, 16, "n_heads", 12)]
    [InlineData(48, 37, 2, -6, 2, 67, 16, "n_heads", 12)]
    [InlineData(48, 37, 2, 7, 1, 67, 16, "n_heads", 12)]     // 7 does not divide 48
    [InlineData(48, 37, 2, 96, 2, 67, 16, "n_heads", 12)]    // more heads than dimensions
    [InlineData(48, 37, 2, 16, 2, 67, 16, "n_heads", 12)]    // head size 3 is odd
    [InlineData(48, 37, 2, 6, 0, 67, 16, "n_kv_heads", 16)]
    [InlineData(48, 37, 2, 6, 4, 67, 16, "n_kv_heads", 16)]  // 4 does not divide 6
    [InlineData(48, 37, 2, 6, 12, 67, 16, "n_kv_heads", 16)] // more KV heads than query heads
    [InlineData(48, 37, 2, 6, 2, 0, 16, "vocab_size", 20)]
    [InlineData(48, 37, 2, 6, 2, int.MinValue, 16, "vocab_size", 20)]
    [InlineData(48, 37, 2, 6, 2, 5_000_000, 16, "vocab_size", 20)]
    [InlineData(48, 37, 2, 6, 2, 67, 0, "seq_len", 24)]
    [InlineData(48, 37, 2, 6, 2, 67, 2_000_000, "seq_len", 24)]
    public void Bad_header_field_is_named(
        int dim, int hidden, int layers, int heads, int kvHeads, int vocab, int seq, string field, long offset)
    {
        // A plausible body follows the header so only the header can be at fault.
        var body = new byte[4096];
        var path = Write("bad.bin", [.. Header(dim, hidden, layers, heads, kvHeads, vocab, seq), .. body]);
        AssertBoth(path, field, offset);
    }

    [Theory]
    [InlineData(false, "wcls")]
    [InlineData(true, "freq_cis_imag")]
    public void One_float_short_names_the_last_tensor(bool shared, string lastTensor)
    {
        var config = shared ? Shared : Unshared;
        var path = Synthetic(config);
        Truncate(path, new FileInfo(path).Length - 4);
        AssertBoth(path, lastTensor, OffsetOf(config, lastTensor));
    }

    [Fact]
    public void One_float_long_names_the_trailing_bytes()
    {
        var path = Synthetic(Unshared);
        var length = new FileInfo(path).Length;
        Truncate(path, length + 4);
        AssertBoth(path, "trailing_bytes", length);
    }

    [Theory]
    [InlineData("token_embedding_table")]
    [InlineData("wk")]
    [InlineData("w1")]
    [InlineData("rms_final_weight")]
    public void Truncated_mid_weights_names_the_tensor(string tensor)
    {
        var path = Synthetic(Unshared);
        var start = OffsetOf(Unshared, tensor);
        Truncate(path, start + 6); // a float and a half into the tensor
        AssertBoth(path, tensor, start);
    }

    [Fact]
    public void Header_only_file_names_the_first_tensor()
    {
        var path = Write("header-only.bin", Header(48, 37, 2, 6, 2, -67, 16));
        AssertBoth(path, "token_embedding_table", HeaderBytes);
    }

    [Fact]
    public void Random_headers_and_lengths_only_ever_raise_ModelFormatException()
    {
        var random = new Random(1234);
        int[] interesting = { 0, 1, 2, -1, 3, 4, 7, 8, 64, 65_536, 65_537, int.MaxValue, int.MinValue };
        for (var i = 0; i < 300; i++)
        {
            var fields = new int[7];
            for (var f = 0; f < fields.Length; f++)
            {
                fields[f] = random.Next(3) == 0 ? random.Next(int.MinValue, int.MaxValue) : interesting[random.Next(interesting.Length)];
            }

            var header = Header(fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6]);
            var bytes = new byte[random.Next(0, 600)];
            header.AsSpan(0, Math.Min(header.Length, bytes.Length)).CopyTo(bytes);
            var path = Write("random.bin", bytes);
            try
            {
                using var model = Llama2cCheckpoint.Load(path);
                Assert.Equal(bytes.Length, ExpectedLength(model.Config)); // accepted only when exactly right
            }
            catch (ModelFormatException e)
            {
                Assert.NotNull(e.Field);
                Assert.NotNull(e.Offset);
                Assert.InRange(e.Offset!.Value, 0, long.MaxValue);
            }
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private void AssertBoth(string path, string field, long offset)
    {
        var load = Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.Load(path).Dispose());
        var header = Assert.Throws<ModelFormatException>(() => Llama2cCheckpoint.ReadHeader(path));
        foreach (var e in new[] { load, header })
        {
            Assert.Equal(field, e.Field);
            Assert.Equal(offset, e.Offset);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains(field, e.Message, StringComparison.Ordinal);
        }
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private string Synthetic(ModelConfig config)
    {
        var path = Path.Combine(_directory, "model.bin");
        Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 3);
        return path;
    }

    private static void Truncate(string path, long length)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Write);
        stream.SetLength(length);
    }
}
