namespace RawInfer.Native;

/// <summary>
/// The few file-system questions the library search asks, so the candidate list is a pure function of the
/// environment and this probe (tests pass a fake one).
/// </summary>
internal interface IFileSystemProbe
{
    bool FileExists(string path);

    bool DirectoryExists(string path);

    /// <summary>Full paths of the sub-folders of <paramref name="parent"/> whose names start with <paramref name="prefix"/>.</summary>
    IReadOnlyList<string> GetDirectories(string parent, string prefix);

    /// <summary>Full paths of the files in <paramref name="directory"/> whose names start with <paramref name="prefix"/>.</summary>
    IReadOnlyList<string> GetFiles(string directory, string prefix);
}

/// <summary>The real file system; unreadable or missing folders read as empty.</summary>
internal sealed class FileSystemProbe : IFileSystemProbe
{
    public static readonly FileSystemProbe Instance = new();

    public bool FileExists(string path) => File.Exists(path);

    public bool DirectoryExists(string path) => Directory.Exists(path);

    public IReadOnlyList<string> GetDirectories(string parent, string prefix) =>
        Enumerate(parent, prefix, directories: true);

    public IReadOnlyList<string> GetFiles(string directory, string prefix) =>
        Enumerate(directory, prefix, directories: false);

    private static string[] Enumerate(string parent, string prefix, bool directories)
    {
        try
        {
            if (!Directory.Exists(parent))
            {
                return [];
            }

            var pattern = prefix + "*";
            return directories
                ? Directory.GetDirectories(parent, pattern)
                : Directory.GetFiles(parent, pattern);
        }
        catch (IOException)
        {
            return [];
        }
        catch (UnauthorizedAccessException)
        {
            return [];
        }
    }
}
