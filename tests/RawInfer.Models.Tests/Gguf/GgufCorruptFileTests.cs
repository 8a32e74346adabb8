using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Models.Tests.Gguf;

/// <summary>Each kind of damage gets its own error, naming the field and the byte offset.</summary>
public sealed class GgufCorruptFileTests
{
    private const uint F32 = 0;

    [Fact]
    public void Bad_magic()
    {
        var image = new RawGguf().U32(0x46554746).U32(3).U64(0).U64(0).ToArray();
        var e = Refused(image, "magic", 0);
        Assert.Contains("not the GGUF magic", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1u, "version 1 is not supported")]
    [InlineData(4u, "version 4 is not supported")]
    [InlineData(0x03000000u, "big-endian")]
    public void Unsupported_versions(uint version, string message)
    {
        var e = Refused(new RawGguf().Header(version, 0, 0).ToArray(), "version", 4);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Empty_file_on_disk()
    {
        using var temp = GgufTestFiles.ToTempFile([]);
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Open(temp.Path));
        Assert.Equal("magic", e.Field);
    }

    [Fact]
    public void Truncated_header() => Refused(new RawGguf().U32(GgufFile.Magic).U32(3).U32(0).ToArray(), "tensor_count", 8);

    [Fact]
    public void Truncated_metadata()
    {
        var full = new RawGguf().Header(3, 0, 1).KvU32("llama.block_count", 5).ToArray();
        var e = Refused(full[..^2], "llama.block_count", 24 + 8 + 17 + 4);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Truncated_tensor_infos()
    {
        var full = new RawGguf().Header(3, 1, 0).Tensor("w", F32, 0, 4, 2).ToArray();
        Refused(full[..^4], "w offset", full.Length - 8);
    }

    [Fact]
    public void Truncated_tensor_data()
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", F32, 0, 4, 2).PadTo(32).Zeros(31).ToArray();
        var e = Refused(image, "w offset", 24 + 8 + 1 + 4 + 16 + 4);
        Assert.Contains("outside the", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Tensor_offset_outside_the_file()
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", F32, 1UL << 40, 4).PadTo(32).Zeros(16).ToArray();
        Refused(image, "w offset", 24 + 8 + 1 + 4 + 8 + 4);
    }

    [Fact]
    public void Tensor_offset_that_would_wrap_around()
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", F32, ulong.MaxValue - 31, 4).PadTo(32).Zeros(16).ToArray();
        Refused(image, "w offset", 24 + 8 + 1 + 4 + 8 + 4);
    }

    [Fact]
    public void Misaligned_tensor()
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", F32, 4, 4).PadTo(32).Zeros(64).ToArray();
        var e = Refused(image, "w offset", 24 + 8 + 1 + 4 + 8 + 4);
        Assert.Contains("misaligned", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(48u)]
    public void Alignment_that_is_not_a_power_of_two(uint alignment)
    {
        var image = new RawGguf().Header(3, 0, 1).KvU32("general.alignment", alignment).ToArray();
        Refused(image, "general.alignment", image.Length - 4);
    }

    [Fact]
    public void Absurd_tensor_count() => Refused(new RawGguf().Header(3, 1UL << 40, 0).ToArray(), "tensor_count", 8);

    [Fact]
    public void Absurd_kv_count() => Refused(new RawGguf().Header(3, 0, ulong.MaxValue).ToArray(), "metadata_kv_count", 16);

    [Fact]
    public void Absurd_string_length()
    {
        var image = new RawGguf().Header(3, 0, 1).U64(1UL << 50).Bytes((byte)'k').Zeros(16).ToArray();
        var e = Refused(image, "metadata key #0", 24);
        Assert.Contains("string length", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Absurd_array_length()
    {
        var image = new RawGguf().Header(3, 0, 1).Str("a").U32((uint)GgufValueType.Array)
            .U32((uint)GgufValueType.String).U64(1UL << 33).Zeros(16).ToArray();
        var e = Refused(image, "a", 24 + 9 + 4 + 4);
        Assert.Contains("cannot fit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Arrays_nested_too_deep()
    {
        var raw = new RawGguf().Header(3, 0, 1).Str("deep").U32((uint)GgufValueType.Array);
        for (int i = 0; i < 20; i++)
        {
            raw.U32((uint)GgufValueType.Array).U64(1);
        }

        var e = Refused(raw.U32((uint)GgufValueType.UInt8).U64(0).ToArray(), "deep", null);
        Assert.Contains("nested deeper", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(5u)]
    public void Absurd_dimension_count(uint nDims)
    {
        var image = new RawGguf().Header(3, 1, 0).Str("w").U32(nDims).Zeros(64).ToArray();
        Refused(image, "w n_dims", 24 + 9);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(1UL << 62)]
    public void Absurd_dimensions(ulong ne1)
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", F32, 0, 1UL << 32, ne1).Zeros(64).ToArray();
        Refused(image, "w ne[1]", 24 + 9 + 4 + 8);
    }

    [Fact]
    public void Unknown_tensor_type_id()
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", 77, 0, 32).Zeros(64).ToArray();
        var e = Refused(image, "w type", 24 + 9 + 4 + 8);
        Assert.Contains("unknown tensor type id 77", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Quantized_row_not_a_whole_number_of_blocks()
    {
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", 8, 0, 48).PadTo(32).Zeros(64).ToArray();
        Refused(image, "w ne[0]", 24 + 9 + 4);
    }

    [Fact]
    public void Known_but_unsupported_type_is_refused_by_name_when_used()
    {
        // Q4_K: 256 elements in 144 bytes. The file is well formed, so it opens; using the tensor is refused.
        var image = new RawGguf().Header(3, 1, 0).Tensor("w", 12, 0, 256).PadTo(32).Zeros(144).ToArray();
        using var file = GgufFile.Parse(image);
        Assert.Equal("Q4_K", file.Tensors[0].TypeName);
        var e = Assert.Throws<ModelFormatException>(() => file.GetWeight("w"));
        Assert.Contains("Q4_K is not supported", e.Message, StringComparison.Ordinal);
        Assert.Equal("w", e.Field);
    }

    [Fact]
    public void Unknown_metadata_value_type()
    {
        var image = new RawGguf().Header(3, 0, 1).Str("k").U32(13).U32(0).ToArray();
        var e = Refused(image, "k", 24 + 9);
        Assert.Contains("unknown metadata value type 13", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_keys_and_tensor_names()
    {
        Refused(new RawGguf().Header(3, 0, 2).KvU32("a", 1).KvU32("a", 2).ToArray(), "a", 24 + 17);
        Refused(new RawGguf().Header(3, 2, 0).Tensor("w", F32, 0, 4).Tensor("w", F32, 32, 4).PadTo(32).Zeros(64).ToArray(), "w", 24 + 33);
    }

    [Fact]
    public void Wrongly_typed_metadata_is_named_by_the_loader()
    {
        var image = GgufTestFiles.Write(w =>
        {
            w.AddMetadata("general.architecture", "llama");
            w.AddMetadata("llama.embedding_length", "wide");
        });
        using var file = GgufFile.Parse(image);
        var e = Assert.Throws<ModelFormatException>(() => GgufLlamaLoader.ReadConfig(file));
        Assert.Equal("llama.embedding_length", e.Field);
        Assert.Contains("found String", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Other_architectures_are_refused_by_name()
    {
        using var file = GgufFile.Parse(File.ReadAllBytes(Path.Combine(RawInfer.Tests.TestPaths.TokenizersDir, "ggml-vocab-gpt-2.gguf")));
        var e = Assert.Throws<ModelFormatException>(() => GgufLlamaLoader.ReadConfig(file));
        Assert.Contains("architecture 'gpt2' is not supported", e.Message, StringComparison.Ordinal);
    }

    private static ModelFormatException Refused(byte[] image, string field, long? offset)
    {
        var e = Assert.Throws<ModelFormatException>(() => GgufFile.Parse(image, "test.gguf").Dispose());
        Assert.Equal(field, e.Field);
        if (offset is not null)
        {
            Assert.Equal(offset, e.Offset);
        }

        Assert.StartsWith("test.gguf: ", e.Message, StringComparison.Ordinal);
        return e;
    }
}
