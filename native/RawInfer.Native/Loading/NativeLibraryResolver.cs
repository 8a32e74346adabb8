using System.Reflection;
using System.Runtime.InteropServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// Finds and loads the CUDA libraries (see <see cref="GetCandidates(NativeLibraryKind)"/> for the order) and maps
/// this assembly's logical import names ("rawinfer_cuda", "rawinfer_nvrtc", "rawinfer_cublas",
/// "rawinfer_cublaslt") to them. Results are cached per kind for the life of the process.
/// </summary>
public static partial class NativeLibraryResolver
{
    private static readonly Lock s_lock = new();
    private static readonly LoadResult?[] s_results = new LoadResult?[4];
    private static readonly HashSet<Assembly> s_ilgpuAssemblies = [];
    private static bool s_registered;

    private sealed record LoadResult(nint Handle, string? Path, string? Error);

    /// <summary>
    /// Loads <paramref name="kind"/> from the first candidate that loads. On failure <paramref name="error"/> is one
    /// line naming what was tried and the variable that overrides the search.
    /// </summary>
    public static bool TryLoad(NativeLibraryKind kind, out nint handle, out string? error)
    {
        LoadResult result;
        lock (s_lock)
        {
            result = LoadLocked(kind);
        }

        handle = result.Handle;
        error = result.Error;
        return handle != 0;
    }

    /// <summary>The file <paramref name="kind"/> was loaded from (a bare name when the loader found it), or null.</summary>
    public static string? LoadedPath(NativeLibraryKind kind)
    {
        lock (s_lock)
        {
            return s_results[(int)kind]?.Path;
        }
    }

    /// <summary>
    /// Maps ILGPU's "cuda" import to libcuda.so.1: ILGPU 1.5.3 imports the driver as "cuda", so .NET probes only
    /// libcuda.so, which a driver-only machine lacks, and ILGPU then reports no CUDA device. Call before creating an
    /// ILGPU context. Returns false on WSL (ILGPU installs its own resolver there) or when the assembly already has
    /// a resolver from someone else; true when ours is in place.
    /// </summary>
    public static bool InstallIlgpuResolver(Assembly ilgpu)
    {
        ArgumentNullException.ThrowIfNull(ilgpu);
        if (IsWsl())
        {
            return false;
        }

        lock (s_lock)
        {
            if (s_ilgpuAssemblies.Contains(ilgpu))
            {
                return true;
            }

            try
            {
                NativeLibrary.SetDllImportResolver(ilgpu, ResolveIlgpu);
            }
            catch (InvalidOperationException)
            {
                return false;
            }

            s_ilgpuAssemblies.Add(ilgpu);
            return true;
        }
    }

    /// <summary>The driver file ILGPU's import <paramref name="libraryName"/> maps to, or null to leave it to .NET.</summary>
    internal static string? MapIlgpuLibrary(string libraryName, bool isWsl) =>
        !isWsl && string.Equals(libraryName, "cuda", StringComparison.Ordinal) ? "libcuda.so.1" : null;

    /// <summary>WSL's kernel release names Microsoft; its libcuda lives in /usr/lib/wsl/lib.</summary>
    internal static bool IsWslKernel(string osRelease) =>
        osRelease.Contains("microsoft", StringComparison.OrdinalIgnoreCase)
        || osRelease.Contains("WSL", StringComparison.Ordinal);

    /// <summary>Registers the resolver for this assembly's imports; the binding classes call it from their static constructors.</summary>
    internal static void EnsureRegistered()
    {
        lock (s_lock)
        {
            if (s_registered)
            {
                return;
            }

            NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, ResolveOwn);
            s_registered = true;
        }
    }

    /// <summary>The kind a logical import name of this assembly stands for, or null for any other name.</summary>
    internal static NativeLibraryKind? KindOfImport(string libraryName) => libraryName switch
    {
        LibraryNames.CudaDriver => NativeLibraryKind.CudaDriver,
        LibraryNames.Nvrtc => NativeLibraryKind.Nvrtc,
        LibraryNames.Cublas => NativeLibraryKind.Cublas,
        LibraryNames.CublasLt => NativeLibraryKind.CublasLt,
        _ => null,
    };

    private static nint ResolveOwn(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        // Zero lets the runtime fail with DllNotFoundException; callers check TryLoad first for a clear message.
        var kind = KindOfImport(libraryName);
        return kind is not null && TryLoad(kind.Value, out var handle, out _) ? handle : 0;
    }

    private static nint ResolveIlgpu(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        MapIlgpuLibrary(libraryName, isWsl: false) is not null
        && TryLoad(NativeLibraryKind.CudaDriver, out var handle, out _) ? handle : 0;

    internal static bool IsWsl()
    {
        try
        {
            return OperatingSystem.IsLinux()
                && (Environment.GetEnvironmentVariable("WSL_DISTRO_NAME") is not null
                    || IsWslKernel(File.ReadAllText("/proc/sys/kernel/osrelease")));
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static LoadResult LoadLocked(NativeLibraryKind kind)
    {
        if (s_results[(int)kind] is { } cached)
        {
            return cached;
        }

        // cuBLASLt comes from cuBLAS's folder: loading cuBLAS preloads it and records it.
        if (kind == NativeLibraryKind.CublasLt)
        {
            LoadLocked(NativeLibraryKind.Cublas);
            if (s_results[(int)kind] is { } fromCublas)
            {
                return fromCublas;
            }
        }

        var candidates = GetCandidates(kind);
        string? firstPathError = null;
        foreach (var candidate in candidates)
        {
            var preloaded = Preload(candidate);
            if (candidate.IsBareName)
            {
                if (NativeLibrary.TryLoad(candidate.Path, out var byName))
                {
                    return Remember(kind, new LoadResult(byName, candidate.Path, null));
                }

                continue;
            }

            try
            {
                var handle = NativeLibrary.Load(candidate.Path);
                if (kind == NativeLibraryKind.Cublas && preloaded is { } lt && s_results[(int)NativeLibraryKind.CublasLt] is null)
                {
                    s_results[(int)NativeLibraryKind.CublasLt] = new LoadResult(lt.Handle, lt.Path, null);
                }

                return Remember(kind, new LoadResult(handle, candidate.Path, null));
            }
            catch (DllNotFoundException e)
            {
                firstPathError ??= $"{candidate.Path}: {OneLine(e.Message)}";
            }
            catch (BadImageFormatException e)
            {
                firstPathError ??= $"{candidate.Path}: {OneLine(e.Message)}";
            }
        }

        return Remember(kind, new LoadResult(0, null, DescribeFailure(kind, candidates, firstPathError)));
    }

    private static LoadResult Remember(NativeLibraryKind kind, LoadResult result)
    {
        s_results[(int)kind] = result;
        return result;
    }

    /// <summary>Loads the candidate's helper libraries; returns the last one that loaded (cuBLASLt for cuBLAS).</summary>
    private static (nint Handle, string Path)? Preload(LibraryCandidate candidate)
    {
        (nint, string)? last = null;
        foreach (var path in candidate.Preload)
        {
            if (NativeLibrary.TryLoad(path, out var handle))
            {
                last = (handle, path);
            }
        }

        return last;
    }

    internal static string DescribeFailure(NativeLibraryKind kind, IReadOnlyList<LibraryCandidate> candidates, string? firstPathError)
    {
        var what = kind switch
        {
            NativeLibraryKind.CudaDriver => "CUDA driver library not found (no NVIDIA driver on this machine?)",
            NativeLibraryKind.Nvrtc => "NVRTC not found",
            NativeLibraryKind.Cublas => "cuBLAS not found",
            _ => "cuBLASLt not found",
        };
        var tried = new List<string>(candidates.Count);
        foreach (var candidate in candidates)
        {
            tried.Add(candidate.Path);
        }

        var detail = firstPathError is null ? "" : $"; {firstPathError}";
        return $"{what}: tried {string.Join(", ", tried)}{detail}; set {SpecOf(kind).OverrideVariable} to the library file";
    }

    /// <summary>The loader's own reason (dlerror) without .NET's "consider using strace / LD_DEBUG" advice.</summary>
    internal static string OneLine(string text)
    {
        const string Boilerplate = "environment variable:";
        var line = text.ReplaceLineEndings(" ");
        var advice = line.LastIndexOf(Boilerplate, StringComparison.Ordinal);
        return (advice >= 0 ? line[(advice + Boilerplate.Length)..] : line).Trim();
    }
}
