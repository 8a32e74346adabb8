using RawInfer.Gpu.Kernels;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>The kernel disk cache: hits, misses on every key input, and damaged entries recompiled, never used.</summary>
public sealed class KernelCacheTests : IDisposable
{
    private const string Source = "extern \"C\" __global__ void k() {}\n";
    private static readonly Dictionary<string, string> Headers = new(StringComparer.Ordinal) { ["common.cuh"] = "// h\n" };

    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("rawinfer-kcache-");

    public void Dispose() => _dir.Delete(recursive: true);

    [Fact]
    public void Second_compile_is_a_hit_with_identical_bytes()
    {
        var generator = new CountingGenerator("gen 1");
        var first = new KernelCompiler("sm_90", _dir.FullName, generator).Compile("a.cu", Source, Headers);
        var secondCompiler = new KernelCompiler("sm_90", _dir.FullName, generator);
        var second = secondCompiler.Compile("a.cu", Source, Headers);

        Assert.Equal(1, generator.Calls);
        Assert.Equal(1, secondCompiler.CacheHits);
        Assert.Equal(0, secondCompiler.CacheMisses);
        Assert.Equal(first.Data.ToArray(), second.Data.ToArray());
        Assert.Equal(KernelImageKind.Cubin, second.Kind);
    }

    [Fact]
    public void Ptx_entries_round_trip_with_their_terminator()
    {
        var generator = new CountingGenerator("gen 1");
        var first = new KernelCompiler("compute_90", _dir.FullName, generator).Compile("a.cu", Source, Headers);
        var second = new KernelCompiler("compute_90", _dir.FullName, generator).Compile("a.cu", Source, Headers);

        Assert.Equal(1, generator.Calls);
        Assert.Equal(first.PtxText, second.PtxText);
        Assert.Equal(0, second.Data.Span[^1]);
    }

    [Fact]
    public void Every_key_input_changes_the_entry()
    {
        var generator = new CountingGenerator("gen 1");
        var compiler = new KernelCompiler("sm_90", _dir.FullName, generator);
        compiler.Compile("a.cu", Source, Headers);
        compiler.Compile("a.cu", Source + "// edit\n", Headers);                                         // source
        compiler.Compile("b.cu", Source, Headers);                                                       // file name
        compiler.Compile("a.cu", Source, new Dictionary<string, string> { ["common.cuh"] = "// h2\n" }); // header
        new KernelCompiler("sm_80", _dir.FullName, generator).Compile("a.cu", Source, Headers);          // architecture
        new KernelCompiler("sm_90", _dir.FullName, new CountingGenerator("gen 2")).Compile("a.cu", Source, Headers); // compiler

        Assert.Equal(5, generator.Calls);
        Assert.Equal(6, Directory.GetFiles(_dir.FullName, "*.kernel").Length);
    }

    [Theory]
    [InlineData("flip-payload")]
    [InlineData("flip-digest")]
    [InlineData("truncate")]
    [InlineData("extend")]
    [InlineData("empty")]
    [InlineData("garbage")]
    [InlineData("wrong-kind")]
    public void A_damaged_entry_is_recompiled_and_replaced(string damage)
    {
        var generator = new CountingGenerator("gen 1");
        var good = new KernelCompiler("sm_90", _dir.FullName, generator).Compile("a.cu", Source, Headers);
        var path = Assert.Single(Directory.GetFiles(_dir.FullName, "*.kernel"));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, Damage(bytes, damage));

        var compiler = new KernelCompiler("sm_90", _dir.FullName, generator);
        var again = compiler.Compile("a.cu", Source, Headers);

        Assert.Equal(1, compiler.CacheRejected);
        Assert.Equal(1, compiler.CacheMisses);
        Assert.Equal(2, generator.Calls);
        Assert.Equal(good.Data.ToArray(), again.Data.ToArray());
        Assert.Equal(bytes, File.ReadAllBytes(path)); // the entry was rewritten whole

        var third = new KernelCompiler("sm_90", _dir.FullName, generator);
        third.Compile("a.cu", Source, Headers);
        Assert.Equal(1, third.CacheHits);
        Assert.Equal(2, generator.Calls);
    }

    [Fact]
    public void No_cache_directory_means_no_files_and_always_compiling()
    {
        var generator = new CountingGenerator("gen 1");
        var compiler = new KernelCompiler("sm_90", cacheDirectory: null, generator);
        compiler.Compile("a.cu", Source, Headers);
        compiler.Compile("a.cu", Source, Headers);

        Assert.Equal(2, generator.Calls);
        Assert.Empty(Directory.GetFiles(_dir.FullName));
    }

    [Theory]
    [InlineData("sm90")]
    [InlineData("sm_9")]
    [InlineData("compute_")]
    [InlineData("gfx90a")]
    public void Malformed_architectures_are_rejected_by_name(string architecture)
    {
        var e = Assert.Throws<ArgumentException>(() => new KernelCompiler(architecture, null, new CountingGenerator("g")));
        Assert.Contains(architecture, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Real_nvrtc_compiles_are_cached()
    {
        NvrtcRequirement.Ensure();
        var first = new KernelCompiler("compute_90", _dir.FullName, NvrtcCodeGenerator.Load());
        var a = first.Compile("rope.cu");
        var second = new KernelCompiler("compute_90", _dir.FullName, NvrtcCodeGenerator.Load());
        var b = second.Compile("rope.cu");

        Assert.Equal((0, 1), (first.CacheHits, first.CacheMisses));
        Assert.Equal((1, 0), (second.CacheHits, second.CacheMisses));
        Assert.Equal(a.PtxText, b.PtxText);
    }

    private static byte[] Damage(byte[] bytes, string damage)
    {
        var copy = (byte[])bytes.Clone();
        switch (damage)
        {
            case "flip-payload":
                copy[^3] ^= 0x10;
                return copy;
            case "flip-digest":
                copy[30] ^= 0x01;
                return copy;
            case "truncate":
                return copy[..^5];
            case "extend":
                return [.. copy, 0];
            case "empty":
                return [];
            case "garbage":
                return new Random(7).GetItems<byte>(Enumerable.Range(0, 256).Select(i => (byte)i).ToArray(), copy.Length);
            case "wrong-kind":
                copy[8] ^= 1; // header's image kind: a PTX entry under a cubin key
                return copy;
            default:
                throw new ArgumentOutOfRangeException(nameof(damage), damage, null);
        }
    }

    /// <summary>Stands in for NVRTC: a deterministic image derived from the inputs, counting calls.</summary>
    private sealed class CountingGenerator(string version) : IKernelCodeGenerator
    {
        public int Calls { get; private set; }

        public string Version { get; } = version;

        public KernelImage Compile(string fileName, string source, string architecture, IReadOnlyList<string> options,
            IReadOnlyDictionary<string, string> headers)
        {
            Calls++;
            var text = $"image of {fileName} for {architecture} by {Version}: {source.Length} chars, {headers.Count} headers";
            var bytes = System.Text.Encoding.UTF8.GetBytes(text);
            return KernelCompiler.IsCubinArchitecture(architecture)
                ? new KernelImage(fileName, architecture, KernelImageKind.Cubin, bytes)
                : new KernelImage(fileName, architecture, KernelImageKind.Ptx, bytes);
        }
    }
}
