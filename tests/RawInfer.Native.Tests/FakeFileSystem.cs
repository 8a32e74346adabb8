namespace RawInfer.Native.Tests;

/// <summary>A file system made of a list of file paths; folders are their ancestors.</summary>
internal sealed class FakeFileSystem : IFileSystemProbe
{
    private readonly HashSet<string> _files;
    private readonly HashSet<string> _directories = [];

    public FakeFileSystem(params string[] files)
    {
        _files = [.. files];
        foreach (var file in files)
        {
            for (var dir = Path.GetDirectoryName(file); !string.IsNullOrEmpty(dir); dir = Path.GetDirectoryName(dir))
            {
                _directories.Add(dir);
            }
        }
    }

    public bool FileExists(string path) => _files.Contains(path);

    public bool DirectoryExists(string path) => _directories.Contains(path);

    public IReadOnlyList<string> GetDirectories(string parent, string prefix) =>
        [.. _directories.Where(d => Path.GetDirectoryName(d) == parent && Path.GetFileName(d).StartsWith(prefix, StringComparison.Ordinal))];

    public IReadOnlyList<string> GetFiles(string directory, string prefix) =>
        [.. _files.Where(f => Path.GetDirectoryName(f) == directory && Path.GetFileName(f).StartsWith(prefix, StringComparison.Ordinal))];

    public static Func<string, string?> Environment(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value);
        return name => map.GetValueOrDefault(name);
    }
}
