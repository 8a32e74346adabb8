namespace RawInfer.Cli;

/// <summary>
/// What the commands take from the process: environment variables, the home directory and how to reach the
/// network. Tests supply their own so that they never touch the real environment or the internet.
/// </summary>
internal sealed class CliContext
{
    /// <summary>Folder of model files, searched before the per-user cache.</summary>
    public const string ModelsVariable = "RAWINFER_MODELS";

    /// <summary>Replaces the download location of <c>model pull</c> (a folder URL).</summary>
    public const string BaseUrlVariable = "RAWINFER_MODEL_BASE_URL";

    public required Func<string, string?> GetEnvironmentVariable { get; init; }

    public required string HomeDirectory { get; init; }

    /// <summary>Creates the handler under <c>model pull</c>'s HttpClient; null = the default sockets handler.</summary>
    public Func<HttpMessageHandler>? CreateHttpHandler { get; init; }

    /// <summary>
    /// The per-user model cache: $XDG_CACHE_HOME/rawinfer/models, else ~/.cache/rawinfer/models; null when neither
    /// an absolute XDG_CACHE_HOME nor a home folder is known (a relative path would silently land in the working folder).
    /// </summary>
    public string? CacheModelsDirectory
    {
        get
        {
            // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
            var xdg = GetEnvironmentVariable("XDG_CACHE_HOME");
            string? cacheRoot = !string.IsNullOrEmpty(xdg) && Path.IsPathRooted(xdg) ? xdg
                : Path.IsPathRooted(HomeDirectory) ? Path.Combine(HomeDirectory, ".cache")
                : null;
            return cacheRoot is null ? null : Path.Combine(cacheRoot, "rawinfer", "models");
        }
    }

    /// <summary>$RAWINFER_MODELS when set, else null.</summary>
    public string? ModelsDirectoryFromEnvironment =>
        GetEnvironmentVariable(ModelsVariable) is { Length: > 0 } dir ? dir : null;

    public static CliContext FromProcess() => new()
    {
        GetEnvironmentVariable = Environment.GetEnvironmentVariable,
        // DoNotVerify: a home folder that does not exist yet is still where the cache belongs (it is created).
        HomeDirectory = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile, Environment.SpecialFolderOption.DoNotVerify),
    };
}
