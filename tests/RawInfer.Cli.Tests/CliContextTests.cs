using RawInfer.Cli;

namespace RawInfer.Cli.Tests;

public class CliContextTests
{
    [Fact]
    public void Cache_honours_absolute_xdg_cache_home_and_ignores_a_relative_one()
    {
        var home = Path.Combine(Path.GetTempPath(), "home-x");
        var xdg = Path.Combine(Path.GetTempPath(), "xdg-x");
        Assert.Equal(Path.Combine(xdg, "rawinfer", "models"), Context(home, xdg).CacheModelsDirectory);
        Assert.Equal(Path.Combine(home, ".cache", "rawinfer", "models"), Context(home, "relative/cache").CacheModelsDirectory);
        Assert.Equal(Path.Combine(home, ".cache", "rawinfer", "models"), Context(home, null).CacheModelsDirectory);
    }

    [Fact]
    public void Unknown_home_gives_no_cache_rather_than_a_relative_folder()
    {
        Assert.Null(Context(string.Empty, null).CacheModelsDirectory);
        using var output = new StringWriter();
        using var error = new StringWriter();
        int exit = CliApp.Run(["model", "pull", "stories260K"], output, error, Context(string.Empty, null));
        Assert.Equal(CliApp.ErrorExitCode, exit);
        Assert.Contains("pass --dir", error.ToString(), StringComparison.Ordinal);
    }

    private static CliContext Context(string home, string? xdg) => new()
    {
        GetEnvironmentVariable = name => name == "XDG_CACHE_HOME" ? xdg : null,
        HomeDirectory = home,
    };
}
