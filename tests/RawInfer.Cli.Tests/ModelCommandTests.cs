using RawInfer.Tests;

namespace RawInfer.Cli.Tests;

public sealed class ModelCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Info_reports_shape_parameters_and_bytes_per_token_of_stories260K()
    {
        var result = _cli.Run("model", "info", TestPaths.Model("stories260K.bin"));
        Assert.Equal(0, result.ExitCode);

        // By hand from the README's shape (dim 64, hidden 172, 5 layers, 4 KV heads of 8, vocab 512, shared):
        // per layer 2*64 + 64*64 + 2*64*32 + 64*64 + 3*64*172 = 45,440; all = 5*45,440 + 512*64 + 64 = 260,032.
        // Per token: layers + final norm + classifier (512*64) + one embedding row (64), as f32 bytes.
        Assert.Contains("dim=64,hidden=172,layers=5,heads=8,kv_heads=4,vocab=512,seq=512", result.Output, StringComparison.Ordinal);
        Assert.Contains("parameters:  260,032", result.Output, StringComparison.Ordinal);
        Assert.Contains($"{(227_200L + 64 + 32_768 + 64) * 4:N0} weight bytes read", result.Output, StringComparison.Ordinal);
        Assert.Contains($"{2 * 5 * 32 * 4:N0} KV-cache bytes", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_writes_a_checkpoint_that_info_and_generate_accept()
    {
        const string Shape = "dim=32,hidden=48,layers=2,heads=4,kv_heads=2,vocab=512,seq=64";
        var path = _cli.TempFile("tiny.bin");
        var created = _cli.Run("model", "create", "--shape", Shape, "--seed", "7", "--out", path);
        Assert.Equal(0, created.ExitCode);

        // Header + weights + the two legacy RoPE tables of seq*head/2 floats (llama2.c layout).
        long perLayer = 2 * 32 + 32 * 32 + 2 * 32 * 16 + 32 * 32 + 3 * 32 * 48;
        long floats = 512 * 32 + 2 * perLayer + 32 + 2 * (64 * 8 / 2);
        Assert.Equal(28 + floats * 4, new FileInfo(path).Length);

        var info = _cli.Run("model", "info", path);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains(Shape, info.Output, StringComparison.Ordinal);

        var generated = _cli.Run("generate", "--model", path, "--tokenizer", TestPaths.Model("tok512.bin"), "-t", "0", "-n", "8", "Hi");
        Assert.Equal(0, generated.ExitCode);
        Assert.StartsWith("Hi", generated.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_is_deterministic_in_the_seed()
    {
        const string Shape = "dim=16,hidden=32,layers=1,heads=2,vocab=300,seq=16";
        _cli.Run("model", "create", "--shape", Shape, "--seed", "3", "--out", _cli.TempFile("a.bin"));
        _cli.Run("model", "create", "--shape", Shape, "--seed", "3", "--out", _cli.TempFile("b.bin"));
        _cli.Run("model", "create", "--shape", Shape, "--seed", "4", "--out", _cli.TempFile("c.bin"));
        Assert.Equal(File.ReadAllBytes(_cli.TempFile("a.bin")), File.ReadAllBytes(_cli.TempFile("b.bin")));
        Assert.NotEqual(File.ReadAllBytes(_cli.TempFile("a.bin")), File.ReadAllBytes(_cli.TempFile("c.bin")));
    }

    [Fact]
    public void Bad_shape_is_a_clean_error()
    {
        _cli.Run("model", "create", "--shape", "huge", "--out", _cli.TempFile("x.bin")).AssertCleanError("unknown model shape");
    }

    [Fact]
    public void Info_on_missing_or_corrupt_file_is_a_clean_error()
    {
        _cli.Run("model", "info", _cli.TempFile("none.bin")).AssertCleanError("not found");
        var path = _cli.TempFile("bad.bin");
        File.WriteAllBytes(path, new byte[10]);
        _cli.Run("model", "info", path).AssertCleanError("bad.bin");
    }

    [Fact]
    public void Unknown_command_fails_with_a_usage_error()
    {
        var result = _cli.Run("frobnicate");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("frobnicate", result.Error, StringComparison.Ordinal);
    }
}
