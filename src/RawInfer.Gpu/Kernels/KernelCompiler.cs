using System.Security.Cryptography;
using System.Text;

namespace RawInfer.Gpu.Kernels;

/// <summary>
/// Compiles kernels/*.cu with NVRTC for one architecture ("sm_90" gives a cubin, "compute_90" PTX) and keeps the
/// results in a disk cache keyed by the SHA-256 of the sources, options, compiler version and architecture, so a
/// second start-up loads them without compiling. A cache entry that fails its checksum is recompiled and replaced,
/// never used. Not thread-safe.
/// </summary>
public sealed partial class KernelCompiler
{
    /// <summary>Environment variable naming the cache folder (default: the user cache folder, "rawinfer/kernels").</summary>
    public const string CacheVariable = "RAWINFER_KERNEL_CACHE";

    /// <summary>NVRTC options every kernel is compiled with (the architecture is added per compile).</summary>
    public static readonly IReadOnlyList<string> Options = ["--std=c++17", "-lineinfo"];

    private readonly IKernelCodeGenerator _generator;

    /// <summary>A compiler over NVRTC with the disk cache in <paramref name="cacheDirectory"/>.</summary>
    /// <param name="architecture">"sm_XX" (cubin, the device's own arch) or "compute_XX" (PTX).</param>
    /// <param name="cacheDirectory">The cache folder; null uses <see cref="DefaultCacheDirectory"/>.</param>
    /// <exception cref="InvalidOperationException">NVRTC cannot be loaded (the message says why).</exception>
    public KernelCompiler(string architecture, string? cacheDirectory = null)
        : this(architecture, cacheDirectory ?? DefaultCacheDirectory(), NvrtcCodeGenerator.Load())
    {
    }

    internal KernelCompiler(string architecture, string? cacheDirectory, IKernelCodeGenerator generator)
    {
        ValidateArchitecture(architecture);
        Architecture = architecture;
        CacheDirectory = cacheDirectory;
        _generator = generator;
    }

    /// <summary>The target: "sm_XX" or "compute_XX".</summary>
    public string Architecture { get; }

    /// <summary>The cache folder, or null when caching is off.</summary>
    public string? CacheDirectory { get; }

    /// <summary>The compiler build in use, e.g. "nvrtc 12.8".</summary>
    public string CompilerVersion => _generator.Version;

    /// <summary>Compiles served from the cache.</summary>
    public int CacheHits { get; private set; }

    /// <summary>Compiles that ran the compiler (no entry, or a rejected one).</summary>
    public int CacheMisses { get; private set; }

    /// <summary>Cache entries found damaged (bad header, length or checksum) and replaced.</summary>
    public int CacheRejected { get; private set; }

    /// <summary>"sm_90" for compute capability 9.0: the device's own cubin architecture.</summary>
    public static string ArchitectureFor(int major, int minor) => $"sm_{major}{minor}";

    /// <summary>True for "sm_XX" (cubin) targets, false for "compute_XX" (PTX).</summary>
    public static bool IsCubinArchitecture(string architecture) =>
        architecture.StartsWith("sm_", StringComparison.Ordinal);

    /// <summary>RAWINFER_KERNEL_CACHE, else $XDG_CACHE_HOME or ~/.cache (LocalApplicationData on Windows) + rawinfer/kernels.</summary>
    public static string DefaultCacheDirectory()
    {
        var fromEnv = Environment.GetEnvironmentVariable(CacheVariable);
        if (!string.IsNullOrEmpty(fromEnv))
        {
            return fromEnv;
        }

        string root;
        if (OperatingSystem.IsWindows())
        {
            root = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
        }
        else
        {
            var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            root = !string.IsNullOrEmpty(xdg)
                ? xdg
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        }

        return Path.Combine(root, "rawinfer", "kernels");
    }

    /// <summary>Compiles one embedded kernel file (e.g. "rmsnorm.cu"), through the cache.</summary>
    /// <exception cref="ArgumentException">No such file is embedded.</exception>
    public KernelImage Compile(string fileName) =>
        Compile(fileName, CudaKernelSources.Read(fileName), CudaKernelSources.Headers);

    /// <summary>Compiles every embedded kernel file.</summary>
    public IReadOnlyList<KernelImage> CompileAll()
    {
        var images = new KernelImage[CudaKernelSources.KernelFiles.Count];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = Compile(CudaKernelSources.KernelFiles[i]);
        }

        return images;
    }

    /// <summary>
    /// Ahead of time: compiles every kernel file for <paramref name="architecture"/> with NVRTC and writes
    /// <see cref="KernelImage.ArtifactName"/> files into <paramref name="outputDir"/>. Returns the paths written.
    /// </summary>
    /// <exception cref="InvalidOperationException">NVRTC cannot be loaded.</exception>
    public static IReadOnlyList<string> CompileAll(string architecture, string outputDir)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputDir);
        var compiler = new KernelCompiler(architecture, cacheDirectory: null, NvrtcCodeGenerator.Load());
        Directory.CreateDirectory(outputDir);
        var written = new List<string>();
        foreach (var image in compiler.CompileAll())
        {
            var path = Path.Combine(outputDir, KernelImage.ArtifactName(image.FileName, image.Architecture));
            var data = image.Kind == KernelImageKind.Ptx ? image.Data[..^1] : image.Data; // PTX as plain text
            File.WriteAllBytes(path, data.ToArray());
            written.Add(path);
        }

        return written;
    }

    internal KernelImage Compile(string fileName, string source, IReadOnlyDictionary<string, string> headers)
    {
        var key = CacheKey(fileName, source, headers, Options, _generator.Version, Architecture);
        var kind = IsCubinArchitecture(Architecture) ? KernelImageKind.Cubin : KernelImageKind.Ptx;
        if (CacheDirectory is not null)
        {
            switch (KernelCache.TryRead(EntryPath(key), kind, out var cached))
            {
                case KernelCache.ReadResult.Hit:
                    CacheHits++;
                    return new KernelImage(fileName, Architecture, kind, cached);
                case KernelCache.ReadResult.Damaged:
                    CacheRejected++;
                    break;
            }
        }

        CacheMisses++;
        var image = _generator.Compile(fileName, source, Architecture, Options, headers);
        if (CacheDirectory is not null)
        {
            KernelCache.TryWrite(CacheDirectory, EntryPath(key), kind, image.Data.Span);
        }

        return image;
    }

    /// <summary>The cache file of a key (64 hex digits).</summary>
    internal string EntryPath(string key) =>
        Path.Combine(CacheDirectory ?? throw new InvalidOperationException("caching is off"), key + ".kernel");

    /// <summary>SHA-256 over every input that changes the output, each length-prefixed so no two inputs collide.</summary>
    internal static string CacheKey(string fileName, string source, IReadOnlyDictionary<string, string> headers,
        IReadOnlyList<string> options, string compilerVersion, string architecture)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Append(hash, KernelCache.FormatTag);
        Append(hash, fileName);
        Append(hash, source);
        foreach (var name in headers.Keys.Order(StringComparer.Ordinal))
        {
            Append(hash, name);
            Append(hash, headers[name]);
        }

        foreach (var option in options)
        {
            Append(hash, option);
        }

        Append(hash, compilerVersion);
        Append(hash, architecture);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    private static void Append(IncrementalHash hash, string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        Span<byte> length = stackalloc byte[sizeof(int)];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        hash.AppendData(length);
        hash.AppendData(bytes);
    }

    private static void ValidateArchitecture(string architecture)
    {
        ArgumentException.ThrowIfNullOrEmpty(architecture);
        var digits = architecture.StartsWith("sm_", StringComparison.Ordinal) ? architecture[3..]
            : architecture.StartsWith("compute_", StringComparison.Ordinal) ? architecture[8..]
            : "";
        if (digits.Length < 2 || !digits.All(char.IsAsciiDigit))
        {
            throw new ArgumentException(
                $"architecture '{architecture}' is not of the form sm_XX (cubin) or compute_XX (PTX), e.g. sm_90",
                nameof(architecture));
        }
    }
}
