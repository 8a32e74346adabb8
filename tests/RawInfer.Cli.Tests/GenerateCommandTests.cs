using RawInfer.Tests;

namespace RawInfer.Cli.Tests;

public sealed class GenerateCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();

    public void Dispose() => _cli.Dispose();

    [Fact]
    public void Greedy_generation_reproduces_llama2c_reference_text()
    {
        var result = _cli.Run("generate", "--model", TestPaths.Model("stories260K.bin"), "--temperature", "0", "--max-tokens", "200", "Once upon a time");
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith(ReferenceText(), result.Output, StringComparison.Ordinal);
        Assert.Matches(@"prompt: 5 tokens .* tokens/s\); decode: 200 tokens .* tokens/s\)", result.Error);
    }

    [Fact]
    public void Default_model_and_tokenizer_are_found_through_the_models_variable()
    {
        _cli.Environment["RAWINFER_MODELS"] = TestPaths.ModelsDir;
        var result = _cli.Run("generate", "--temperature", "0", "-n", "20", "Once upon a time");
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("Once upon a time, there was", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Default_model_is_found_in_the_xdg_cache()
    {
        var cache = Path.Combine(_cli.Home, "xdg", "rawinfer", "models");
        Directory.CreateDirectory(cache);
        File.Copy(TestPaths.Model("stories260K.bin"), Path.Combine(cache, "stories260K.bin"));
        File.Copy(TestPaths.Model("tok512.bin"), Path.Combine(cache, "tok512.bin"));
        _cli.Environment["XDG_CACHE_HOME"] = Path.Combine(_cli.Home, "xdg");
        var result = _cli.Run("generate", "-t", "0", "-n", "5", "Once upon a time");
        Assert.Equal(0, result.ExitCode);
        Assert.StartsWith("Once upon a time,", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Same_seed_gives_the_same_text_and_max_tokens_bounds_it()
    {
        string[] args = ["generate", "--model", TestPaths.Model("stories260K.bin"), "--seed", "1234", "--top-k", "20", "-n", "30", "Lily"];
        var first = _cli.Run(args);
        var second = _cli.Run(args);
        Assert.Equal(0, first.ExitCode);
        Assert.Equal(first.Output, second.Output);
        Assert.Matches(@"decode: ([1-9]|[12][0-9]|30) tokens", first.Error);
    }

    [Fact]
    public void Missing_default_model_says_what_was_tried_and_how_to_get_it()
    {
        var result = _cli.Run("generate", "hello");
        result.AssertCleanError("rawinfer model pull stories260K");
        Assert.Contains(Path.Combine(_cli.Home, ".cache", "rawinfer", "models", "stories260K.bin"), result.Error, StringComparison.Ordinal);
        Assert.Contains("--model", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Missing_explicit_model_is_a_clean_error()
    {
        _cli.Run("generate", "--model", _cli.TempFile("none.bin"), "x").AssertCleanError("model file not found");
    }

    [Fact]
    public void Truncated_model_is_a_clean_format_error()
    {
        var bytes = File.ReadAllBytes(TestPaths.Model("stories260K.bin"));
        var path = _cli.TempFile("short.bin");
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        _cli.Run("generate", "--model", path, "x").AssertCleanError("short.bin");
    }

    [Fact]
    public void Corrupt_tokenizer_is_a_clean_format_error()
    {
        var path = _cli.TempFile("tok.bin");
        File.WriteAllBytes(path, File.ReadAllBytes(TestPaths.Model("tok512.bin")).AsSpan(0, 1000).ToArray());
        _cli.Run("generate", "--model", TestPaths.Model("stories260K.bin"), "--tokenizer", path, "x")
            .AssertCleanError("truncated at token");
    }

    [Theory]
    [InlineData("--top-p", "2", "--top-p")]
    [InlineData("--temperature", "-1", "--temperature")]
    [InlineData("--max-tokens", "-3", "--max-tokens")]
    public void Out_of_range_options_are_clean_errors(string option, string value, string fragment)
    {
        _cli.Run("generate", "--model", TestPaths.Model("stories260K.bin"), option, value, "x").AssertCleanError(fragment);
    }

    /// <summary>The reference continuation in the shared README's "Reference output" code block.</summary>
    internal static string ReferenceText()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.ModelsDir, "README.md")).ReplaceLineEndings("\n");
        int section = readme.IndexOf("## Reference output", StringComparison.Ordinal);
        int start = readme.IndexOf("```\n", section, StringComparison.Ordinal) + 4;
        int end = readme.IndexOf("\n```", start, StringComparison.Ordinal);
        Assert.True(section >= 0 && start > 4 && end > start, "reference block not found in the shared README");
        return readme[start..end];
    }
}
