using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using RawInfer.Tests;

namespace RawInfer.Cli.Tests;

public sealed class PullCommandTests : IDisposable
{
    private readonly CliHarness _cli = new();
    private readonly TestFileServer _server = new();

    public PullCommandTests()
    {
        _server.Files["stories260K.bin"] = File.ReadAllBytes(TestPaths.Model("stories260K.bin"));
        _server.Files["tok512.bin"] = File.ReadAllBytes(TestPaths.Model("tok512.bin"));
        _cli.Environment["RAWINFER_MODEL_BASE_URL"] = _server.BaseUrl.ToString();
    }

    private string Cache => Path.Combine(_cli.Home, ".cache", "rawinfer", "models");

    public void Dispose()
    {
        _server.Dispose();
        _cli.Dispose();
    }

    [Fact]
    public void Fresh_pull_fills_the_cache_and_generate_then_finds_the_model()
    {
        var result = _cli.Run("model", "pull", "stories260K");
        Assert.True(result.ExitCode == 0, result.Error);
        AssertSameFile(TestPaths.Model("stories260K.bin"), Path.Combine(Cache, "stories260K.bin"));
        AssertSameFile(TestPaths.Model("tok512.bin"), Path.Combine(Cache, "tok512.bin"));
        Assert.Empty(Directory.GetFiles(Cache, "*.partial"));

        var generated = _cli.Run("generate", "-t", "0", "-n", "5", "Once upon a time");
        Assert.Equal(0, generated.ExitCode);
        Assert.StartsWith("Once upon a time,", generated.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void Second_pull_verifies_the_files_and_downloads_nothing()
    {
        Assert.Equal(0, _cli.Run("model", "pull", "stories260K").ExitCode);
        int requests = _server.Requests.Count;
        Assert.Equal(0, _cli.Run("model", "pull", "stories260K").ExitCode);
        Assert.Equal(requests, _server.Requests.Count);
    }

    [Fact]
    public void Interrupted_download_is_resumed_with_a_range_request()
    {
        _server.CutNextResponseAfter["stories260K.bin"] = 300_000;
        var first = _cli.Run("model", "pull", "stories260K");
        first.AssertCleanError("run the command again to resume");
        var partial = Path.Combine(Cache, "stories260K.bin.partial");
        long kept = new FileInfo(partial).Length;
        Assert.InRange(kept, 1, 300_000);
        Assert.False(File.Exists(Path.Combine(Cache, "stories260K.bin")));

        var second = _cli.Run("model", "pull", "stories260K");
        Assert.True(second.ExitCode == 0, second.Error);
        Assert.Contains(("stories260K.bin", $"bytes={kept}-"), _server.Requests);
        AssertSameFile(TestPaths.Model("stories260K.bin"), Path.Combine(Cache, "stories260K.bin"));
        Assert.False(File.Exists(partial));
    }

    [Fact]
    public void Wrong_hash_deletes_the_download_and_says_so()
    {
        var corrupt = File.ReadAllBytes(TestPaths.Model("tok512.bin"));
        corrupt[100] ^= 0xFF;
        _server.Files["tok512.bin"] = corrupt;
        var result = _cli.Run("model", "pull", "stories260K");
        result.AssertCleanError("SHA-256");
        Assert.Contains("deleted", result.Error, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(Cache, "tok512.bin")));
        Assert.False(File.Exists(Path.Combine(Cache, "tok512.bin.partial")));
    }

    [Fact]
    public void Http_error_status_is_a_clean_error()
    {
        _server.Files.TryRemove("tok512.bin", out _);
        _cli.Run("model", "pull", "stories260K").AssertCleanError("404");
    }

    [Fact]
    public void Unreachable_server_is_a_clean_error()
    {
        // A port that was just free: nothing listens there.
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        _cli.Environment["RAWINFER_MODEL_BASE_URL"] = $"http://127.0.0.1:{port}/models";
        _cli.Run("model", "pull", "stories260K").AssertCleanError("cannot reach");
    }

    [Fact]
    public void Base_url_option_and_dir_option_override_environment_and_cache()
    {
        _cli.Environment["RAWINFER_MODEL_BASE_URL"] = "http://127.0.0.1:1/unused/";
        var dir = Path.Combine(_cli.Home, "elsewhere");
        var result = _cli.Run("model", "pull", "stories260K", "--base-url", _server.BaseUrl.ToString().TrimEnd('/'), "--dir", dir);
        Assert.True(result.ExitCode == 0, result.Error);
        AssertSameFile(TestPaths.Model("tok512.bin"), Path.Combine(dir, "tok512.bin"));
    }

    [Fact]
    public void Unknown_model_name_is_a_clean_error()
    {
        _cli.Run("model", "pull", "gpt5").AssertCleanError("unknown model 'gpt5'");
    }

    private static void AssertSameFile(string expected, string actual)
    {
        Assert.True(File.Exists(actual), $"{actual} missing");
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(expected)), SHA256.HashData(File.ReadAllBytes(actual)));
    }
}
