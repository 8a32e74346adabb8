namespace RawInfer.Native;

/// <summary>The search order, as a pure function of the environment and the file system.</summary>
public static partial class NativeLibraryResolver
{
    /// <summary>Override variable for the CUDA driver library file.</summary>
    public const string CudaDriverPathVariable = "RAWINFER_CUDA_DRIVER_PATH";

    /// <summary>Override variable for the NVRTC library file (or a folder holding it).</summary>
    public const string NvrtcPathVariable = "RAWINFER_NVRTC_PATH";

    /// <summary>Override variable for the cuBLAS library file (or a folder); cuBLASLt is taken from the same folder.</summary>
    public const string CublasPathVariable = "RAWINFER_CUBLAS_PATH";

    /// <summary>Extra python site-packages folders (separated by ':') searched before the standard ones.</summary>
    public const string PythonSitePackagesVariable = "RAWINFER_PYTHON_SITE_PACKAGES";

    private sealed record Spec(
        string OverrideVariable,
        string[] FileNames,
        bool SearchFolders,
        string[] WheelFolders,
        string? PreloadPrefix);

    private static Spec SpecOf(NativeLibraryKind kind) => kind switch
    {
        NativeLibraryKind.CudaDriver => new(
            CudaDriverPathVariable, ["libcuda.so.1", "libcuda.so"], SearchFolders: false, [], null),
        NativeLibraryKind.Nvrtc => new(
            NvrtcPathVariable,
            ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
            SearchFolders: true,
            ["nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib"],
            "libnvrtc-builtins.so"),
        NativeLibraryKind.Cublas => new(
            CublasPathVariable,
            ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
            SearchFolders: true,
            ["nvidia/cu13/lib", "nvidia/cublas/lib"],
            "libcublasLt.so"),
        NativeLibraryKind.CublasLt => new(
            CublasPathVariable,
            ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"],
            SearchFolders: true,
            ["nvidia/cu13/lib", "nvidia/cublas/lib"],
            null),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown native library kind"),
    };

    /// <summary>
    /// The places <see cref="TryLoad"/> tries for <paramref name="kind"/> on this machine, in order.
    /// </summary>
    public static IReadOnlyList<LibraryCandidate> GetCandidates(NativeLibraryKind kind) =>
        GetCandidates(kind, Environment.GetEnvironmentVariable, FileSystemProbe.Instance);

    /// <summary>
    /// The search order: (1) the override variable alone when set (a file, or a folder searched for the usual file
    /// names); (2) bare names for the dynamic loader, newest release first; (3) CUDA_HOME/CUDA_PATH and
    /// /usr/local/cuda*/lib64; (4) pip wheels in python site-packages (nvidia/cu13/lib, then the per-library
    /// wheel folder). Folders contribute only files that exist; each full-path candidate preloads its helper
    /// libraries (libnvrtc-builtins, libcublasLt) from the same folder.
    /// </summary>
    internal static IReadOnlyList<LibraryCandidate> GetCandidates(
        NativeLibraryKind kind, Func<string, string?> environment, IFileSystemProbe files)
    {
        var spec = SpecOf(kind);
        var result = new List<LibraryCandidate>();
        var seen = new HashSet<string>(StringComparer.Ordinal);

        var overridePath = environment(spec.OverrideVariable);
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            // A folder is searched for the usual names; cuBLASLt follows a cuBLAS file override into its folder.
            string? folder = files.DirectoryExists(overridePath) ? overridePath
                : kind == NativeLibraryKind.CublasLt ? Path.GetDirectoryName(overridePath)
                : null;
            if (folder is null)
            {
                result.Add(FullPath(overridePath, spec, files));
            }
            else
            {
                AddFolder(folder, spec, files, result, seen);
                if (result.Count == 0)
                {
                    // Nothing there: keep one candidate so the error names the folder the user pointed at.
                    result.Add(new LibraryCandidate(Path.Combine(folder, spec.FileNames[0]), []));
                }
            }

            return result;
        }

        foreach (var name in spec.FileNames)
        {
            result.Add(new LibraryCandidate(name, []));
        }

        if (!spec.SearchFolders)
        {
            return result;
        }

        foreach (var folder in ToolkitFolders(environment, files))
        {
            AddFolder(folder, spec, files, result, seen);
        }

        foreach (var site in SitePackagesFolders(environment, files))
        {
            foreach (var wheelFolder in spec.WheelFolders)
            {
                AddFolder(Path.Combine(site, wheelFolder), spec, files, result, seen);
            }
        }

        return result;
    }

    private static void AddFolder(
        string folder, Spec spec, IFileSystemProbe files, List<LibraryCandidate> result, HashSet<string> seen)
    {
        foreach (var name in spec.FileNames)
        {
            var path = Path.Combine(folder, name);
            if (files.FileExists(path) && seen.Add(path))
            {
                result.Add(FullPath(path, spec, files));
            }
        }
    }

    private static LibraryCandidate FullPath(string path, Spec spec, IFileSystemProbe files)
    {
        if (spec.PreloadPrefix is null)
        {
            return new LibraryCandidate(path, []);
        }

        var folder = Path.GetDirectoryName(path);
        if (string.IsNullOrEmpty(folder))
        {
            return new LibraryCandidate(path, []);
        }

        var preload = new List<string>(files.GetFiles(folder, spec.PreloadPrefix));
        preload.Sort(NaturalDescending);
        return new LibraryCandidate(path, preload);
    }

    private static List<string> ToolkitFolders(Func<string, string?> environment, IFileSystemProbe files)
    {
        var folders = new List<string>();
        foreach (var variable in (string[])["CUDA_HOME", "CUDA_PATH"])
        {
            var root = environment(variable);
            if (!string.IsNullOrWhiteSpace(root))
            {
                folders.Add(Path.Combine(root, "lib64"));
            }
        }

        // /usr/local/cuda (the administrator's default) first, then versioned installs newest first.
        var installs = new List<string>(files.GetDirectories("/usr/local", "cuda"));
        installs.Sort(NaturalDescending);
        var plain = installs.IndexOf("/usr/local/cuda");
        if (plain > 0)
        {
            installs.RemoveAt(plain);
            installs.Insert(0, "/usr/local/cuda");
        }

        foreach (var install in installs)
        {
            folders.Add(Path.Combine(install, "lib64"));
        }

        return folders;
    }

    /// <summary>
    /// Python site-packages folders without running python: the variable's list, the active virtualenv or conda
    /// environment, the user site, /usr/local and /usr (Debian's dist-packages), /opt/conda; newest python first.
    /// </summary>
    internal static IReadOnlyList<string> SitePackagesFolders(Func<string, string?> environment, IFileSystemProbe files)
    {
        var folders = new List<string>();
        var extra = environment(PythonSitePackagesVariable);
        if (!string.IsNullOrWhiteSpace(extra))
        {
            foreach (var part in extra.Split(':', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                folders.Add(part);
            }
        }

        var prefixes = new List<(string Lib, string[] Sites)>();
        foreach (var variable in (string[])["VIRTUAL_ENV", "CONDA_PREFIX"])
        {
            var root = environment(variable);
            if (!string.IsNullOrWhiteSpace(root))
            {
                prefixes.Add((Path.Combine(root, "lib"), ["site-packages"]));
            }
        }

        var home = environment("HOME");
        if (!string.IsNullOrWhiteSpace(home))
        {
            prefixes.Add((Path.Combine(home, ".local/lib"), ["site-packages"]));
        }

        prefixes.Add(("/usr/local/lib", ["site-packages", "dist-packages"]));
        prefixes.Add(("/usr/lib", ["site-packages", "dist-packages"]));
        prefixes.Add(("/opt/conda/lib", ["site-packages"]));

        foreach (var (lib, sites) in prefixes)
        {
            var pythons = new List<string>(files.GetDirectories(lib, "python3"));
            pythons.Sort(NaturalDescending);
            foreach (var python in pythons)
            {
                foreach (var site in sites)
                {
                    var folder = Path.Combine(python, site);
                    if (files.DirectoryExists(folder) && !folders.Contains(folder))
                    {
                        folders.Add(folder);
                    }
                }
            }
        }

        return folders;
    }

    /// <summary>Orders "python3.12" before "python3.9" and "cuda-13.0" before "cuda-12.4": digit runs compare as numbers.</summary>
    internal static int NaturalDescending(string? x, string? y) => NaturalCompare(y ?? "", x ?? "");

    private static int NaturalCompare(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (char.IsAsciiDigit(a[i]) && char.IsAsciiDigit(b[j]))
            {
                var startA = i;
                var startB = j;
                while (i < a.Length && char.IsAsciiDigit(a[i]))
                {
                    i++;
                }

                while (j < b.Length && char.IsAsciiDigit(b[j]))
                {
                    j++;
                }

                var numberA = a.AsSpan(startA, i - startA).TrimStart('0');
                var numberB = b.AsSpan(startB, j - startB).TrimStart('0');
                var byLength = numberA.Length.CompareTo(numberB.Length);
                if (byLength != 0)
                {
                    return byLength;
                }

                var byDigits = numberA.SequenceCompareTo(numberB);
                if (byDigits != 0)
                {
                    return byDigits;
                }
            }
            else
            {
                var byChar = a[i].CompareTo(b[j]);
                if (byChar != 0)
                {
                    return byChar;
                }

                i++;
                j++;
            }
        }

        return (a.Length - i).CompareTo(b.Length - j);
    }
}
