using System.Text.RegularExpressions;
using RawInfer.Gpu.Kernels;
using RawInfer.Native;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>Every kernels/*.cu compiles through NVRTC for Ampere and Hopper and exports the contract's entry points.</summary>
public sealed partial class KernelSourceCompileTests
{
    public static TheoryData<string, string> FilesAndArchitectures()
    {
        var data = new TheoryData<string, string>();
        foreach (var file in CudaKernelSources.KernelFiles)
        {
            data.Add(file, "compute_80");
            data.Add(file, "compute_90");
        }

        return data;
    }

    public static TheoryData<string> Files() => [.. CudaKernelSources.KernelFiles];

    [Fact]
    public void Every_embedded_kernel_file_has_an_entry_point_table_and_the_reverse()
    {
        Assert.Equal(
            CudaKernelSources.KernelFiles.Order(StringComparer.Ordinal),
            CudaKernels.EntryPoints.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("common.cuh", CudaKernelSources.Headers.Keys);
    }

    [Fact]
    public void Sources_are_ascii_so_every_nvrtc_reads_them_alike()
    {
        foreach (var file in CudaKernelSources.KernelFiles.Concat(CudaKernelSources.Headers.Keys))
        {
            var text = CudaKernelSources.Read(file);
            var index = text.AsSpan().IndexOfAnyExceptInRange('\0', '\x7f');
            Assert.True(index < 0, $"{file} has a non-ASCII character at offset {index}");
        }
    }

    [Theory]
    [MemberData(nameof(FilesAndArchitectures))]
    public void Compiles_to_ptx_exporting_every_entry_point_unmangled(string file, string architecture)
    {
        NvrtcRequirement.Ensure();

        var image = new KernelCompiler(architecture, cacheDirectory: null, NvrtcCodeGenerator.Load()).Compile(file);

        Assert.Equal(KernelImageKind.Ptx, image.Kind);
        var entries = EntryRegex().Matches(image.PtxText).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        foreach (var name in CudaKernels.EntryPoints[file])
        {
            Assert.Contains(name, entries);
        }

        Assert.Contains($".target sm_{architecture["compute_".Length..]}", image.PtxText, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Compiles_to_an_sm90_cubin(string file)
    {
        NvrtcRequirement.Ensure();

        var image = new KernelCompiler("sm_90", cacheDirectory: null, NvrtcCodeGenerator.Load()).Compile(file);

        Assert.Equal(KernelImageKind.Cubin, image.Kind);
        Assert.True(image.Data.Span.StartsWith((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F']),
            $"{file}: the sm_90 image is not an ELF cubin");
    }

    [Fact]
    public void A_source_error_surfaces_with_the_nvrtc_log()
    {
        NvrtcRequirement.Ensure();

        var compiler = new KernelCompiler("compute_90", cacheDirectory: null, NvrtcCodeGenerator.Load());
        var e = Assert.Throws<NvrtcCompileException>(() => compiler.Compile(
            "broken.cu", "#include \"common.cuh\"\nextern \"C\" __global__ void k() { undefined_name(); }\n", CudaKernelSources.Headers));

        Assert.Contains("undefined_name", e.Log, StringComparison.Ordinal);
    }

    [Fact]
    public void Ahead_of_time_compile_writes_one_image_per_file()
    {
        NvrtcRequirement.Ensure();
        var dir = Directory.CreateTempSubdirectory("rawinfer-aot-");
        try
        {
            var written = KernelCompiler.CompileAll("sm_90", dir.FullName);

            Assert.Equal(CudaKernelSources.KernelFiles.Count, written.Count);
            foreach (var file in CudaKernelSources.KernelFiles)
            {
                var path = Path.Combine(dir.FullName, KernelImage.ArtifactName(file, "sm_90"));
                Assert.Contains(path, written);
                Assert.True(new FileInfo(path).Length > 0, path);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [GeneratedRegex(@"\.visible\s+\.entry\s+(\w+)\s*\(")]
    private static partial Regex EntryRegex();
}
