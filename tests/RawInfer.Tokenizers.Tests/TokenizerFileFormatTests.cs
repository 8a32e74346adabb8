using System.Buffers.Binary;
using RawInfer.Tests;

namespace RawInfer.Tokenizers.Tests;

public sealed class TokenizerFileFormatTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("rawinfer-tok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Truncated_file_names_the_token_and_offset()
    {
        var bytes = File.ReadAllBytes(TestPaths.Model("tok512.bin"));
        var path = Write(bytes.AsSpan(0, bytes.Length - 2).ToArray());
        var e = Assert.Throws<TokenizerFormatException>(() => LlamaTokenizer.Load(path, 512));
        Assert.Equal(511, e.TokenIndex);
        Assert.Contains("token 511", e.Message, StringComparison.Ordinal);
        Assert.Contains($"offset {e.Offset}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fewer_tokens_than_vocab_size_is_an_error()
    {
        var path = TestPaths.Model("tok512.bin");
        var e = Assert.Throws<TokenizerFormatException>(() => LlamaTokenizer.Load(path, 513));
        Assert.Equal(512, e.TokenIndex);
        Assert.Equal(new FileInfo(path).Length, e.Offset);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(int.MaxValue)]
    [InlineData(8)] // longer than max_token_length (7) although within the file
    public void Absurd_piece_length_names_the_token_and_offset(int length)
    {
        var bytes = File.ReadAllBytes(TestPaths.Model("tok512.bin"));
        int offset = OffsetOfToken(bytes, 10) + 4;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(offset), length);
        var e = Assert.Throws<TokenizerFormatException>(() => LlamaTokenizer.Load(Write(bytes), 512));
        Assert.Equal(10, e.TokenIndex);
        Assert.Equal(offset, e.Offset);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(1 << 20)]
    public void Bad_max_token_length_is_rejected(int value)
    {
        var bytes = File.ReadAllBytes(TestPaths.Model("tok512.bin"));
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        var e = Assert.Throws<TokenizerFormatException>(() => LlamaTokenizer.Load(Write(bytes), 512));
        Assert.Equal(0, e.Offset);
    }

    [Fact]
    public void Empty_file_is_rejected()
    {
        Assert.Throws<TokenizerFormatException>(() => LlamaTokenizer.Load(Write([]), 512));
    }

    [Fact]
    public void Wrong_byte_fallback_piece_names_the_token()
    {
        var bytes = File.ReadAllBytes(TestPaths.Model("tok512.bin"));
        int offset = OffsetOfToken(bytes, 3 + 0x41) + 8;
        bytes[offset + 4] = (byte)'2'; // "<0x41>" -> "<0x42>"
        var e = Assert.Throws<TokenizerFormatException>(() => LlamaTokenizer.Load(Write(bytes), 512));
        Assert.Equal(3 + 0x41, e.TokenIndex);
    }

    [Fact]
    public void Missing_file_is_a_file_not_found_error()
    {
        Assert.Throws<FileNotFoundException>(() => LlamaTokenizer.Load(Path.Combine(_dir, "none.bin"), 512));
    }

    private static int OffsetOfToken(byte[] file, int index)
    {
        int offset = 4;
        for (int i = 0; i < index; i++)
        {
            offset += 8 + BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(offset + 4));
        }

        return offset;
    }

    private string Write(byte[] bytes)
    {
        var path = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".bin");
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
