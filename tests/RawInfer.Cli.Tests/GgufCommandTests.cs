using RawInfer.Tests;

namespace RawInfer.Cli.Tests;

/// <summary>The GGUF path through the CLI: convert, generate, info and create with each weight type.</summary>
public sealed class GgufCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Converted_stories260K_generates_the_same_greedy_text_as_the_checkpoint()
    {
        var gguf = _cli.TempFile("stories260K.gguf");
        var convert = _cli.Run("model", "convert", TestPaths.Model("stories260K.bin"), gguf,
            "--tokenizer", TestPaths.Model("tok512.bin"));
        Assert.Equal(0, convert.ExitCode);

        var fromBin = _cli.Run("generate", "--model", TestPaths.Model("stories260K.bin"),
            "--tokenizer", TestPaths.Model("tok512.bin"), "--temperature", "0", "--max-tokens", "120", "Once upon a time");
        // No --tokenizer: the vocabulary comes from the GGUF metadata.
        var fromGguf = _cli.Run("generate", "--model", gguf, "--temperature", "0", "--max-tokens", "120", "Once upon a time");

        Assert.Equal(0, fromBin.ExitCode);
        Assert.Equal(0, fromGguf.ExitCode);
        Assert.StartsWith("Once upon a time, there was a little girl named Lily.", fromGguf.Output, StringComparison.Ordinal);
        Assert.Equal(fromBin.Output, fromGguf.Output);
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("f16")]
    [InlineData("bf16")]
    [InlineData("q8_0")]
    public void Synthetic_gguf_of_each_dtype_is_described_and_runs(string dtype)
    {
        var path = _cli.TempFile($"tiny-{dtype}.gguf");
        var create = _cli.Run("model", "create", "--format", "gguf", "--dtype", dtype, "--seed", "7", "--out", path,
            "--shape", "dim=64,hidden=160,layers=2,heads=4,kv_heads=2,vocab=300,seq=64");
        Assert.Equal(0, create.ExitCode);

        var info = _cli.Run("model", "info", path);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains("format:      gguf", info.Output, StringComparison.Ordinal);
        Assert.Contains("dim=64,hidden=160,layers=2,heads=4,kv_heads=2,vocab=300,seq=64", info.Output, StringComparison.Ordinal);

        var generate = _cli.Run("generate", "--model", path, "--temperature", "0", "--max-tokens", "8", "hello");
        Assert.Equal(0, generate.ExitCode);
        Assert.Contains("decode:", generate.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_dtype_for_a_llama2c_checkpoint_is_a_clean_error()
    {
        var result = _cli.Run("model", "create", "--dtype", "f16", "--out", _cli.TempFile("x.bin"),
            "--shape", "dim=64,hidden=160,layers=2,heads=4,kv_heads=2,vocab=300,seq=64");
        result.AssertCleanError("use --format gguf");
    }

    [Fact]
    public void Converting_a_missing_checkpoint_is_a_clean_error()
    {
        var result = _cli.Run("model", "convert", _cli.TempFile("missing.bin"), _cli.TempFile("out.gguf"),
            "--tokenizer", TestPaths.Model("tok512.bin"));
        result.AssertCleanError("file not found");
    }
}
