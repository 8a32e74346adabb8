using System.Collections.Frozen;
using System.Reflection;
using System.Text;

namespace RawInfer.Gpu.Kernels;

/// <summary>
/// The CUDA C sources of kernels/, embedded in this assembly as resources named "kernels/&lt;file&gt;". Each
/// <c>.cu</c> file is one translation unit (one CUDA module); the <c>.cuh</c> files are the headers they include,
/// handed to NVRTC by name because NVRTC has no file system to look in.
/// </summary>
public static class CudaKernelSources
{
    /// <summary>Prefix of the embedded resource names.</summary>
    public const string ResourcePrefix = "kernels/";

    private static readonly Lazy<Catalog> Sources = new(Load);

    /// <summary>The translation units, e.g. "paged_attention.cu", sorted by name.</summary>
    public static IReadOnlyList<string> KernelFiles => Sources.Value.KernelFiles;

    /// <summary>Every header by file name (e.g. "common.cuh"), for NVRTC's include resolution.</summary>
    public static IReadOnlyDictionary<string, string> Headers => Sources.Value.Headers;

    /// <summary>The text of one embedded file (a <c>.cu</c> or a <c>.cuh</c>).</summary>
    /// <exception cref="ArgumentException">No such kernel source is embedded.</exception>
    public static string Read(string fileName)
    {
        ArgumentException.ThrowIfNullOrEmpty(fileName);
        var catalog = Sources.Value;
        if (catalog.Files.TryGetValue(fileName, out var text))
        {
            return text;
        }

        throw new ArgumentException(
            $"No kernel source '{fileName}' is embedded; known: {string.Join(", ", catalog.Files.Keys.Order(StringComparer.Ordinal))}",
            nameof(fileName));
    }

    private static Catalog Load()
    {
        var assembly = typeof(CudaKernelSources).Assembly;
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            if (resource.StartsWith(ResourcePrefix, StringComparison.Ordinal))
            {
                files[resource[ResourcePrefix.Length..]] = ReadResource(assembly, resource);
            }
        }

        var kernels = files.Keys.Where(f => f.EndsWith(".cu", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();
        var headers = files.Where(f => f.Key.EndsWith(".cuh", StringComparison.Ordinal))
            .ToFrozenDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
        return new Catalog(files.ToFrozenDictionary(StringComparer.Ordinal), kernels, headers);
    }

    private static string ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"Embedded resource '{name}' is listed but cannot be opened");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private sealed record Catalog(
        FrozenDictionary<string, string> Files,
        IReadOnlyList<string> KernelFiles,
        IReadOnlyDictionary<string, string> Headers);
}
