namespace RawInfer.Native.Tests;

public sealed class NvrtcTests
{
    internal const string VectorAdd = """
        extern "C" __global__ void vec_add(float* c, const float* a, const float* b, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) c[i] = a[i] + b[i];
        }
        """;

    [Fact]
    public void Version_is_a_cuda_release_and_the_library_path_is_known()
    {
        NvrtcGuard.Require();

        var (major, minor) = Nvrtc.Version;

        Assert.InRange(major, 11, 99);
        Assert.InRange(minor, 0, 99);
        Assert.False(string.IsNullOrEmpty(Nvrtc.LibraryPath));
    }

    [Theory]
    [InlineData("compute_80", ".target sm_80")]
    [InlineData("compute_90", ".target sm_90")]
    public void Virtual_architecture_gives_ptx_with_target_and_entry(string architecture, string target)
    {
        NvrtcGuard.Require();

        var output = Nvrtc.Compile(VectorAdd, "vec_add.cu", architecture);

        Assert.NotNull(output.Ptx);
        Assert.Contains(target, output.Ptx, StringComparison.Ordinal);
        Assert.Contains(".entry vec_add(", output.Ptx, StringComparison.Ordinal);
        Assert.Null(output.Cubin);
        Assert.Equal(architecture, output.Architecture);
        Assert.Equal(0, output.ModuleImage()[^1]); // PTX handed to the driver is NUL-terminated
    }

    [Fact]
    public void Real_architecture_gives_an_elf_cubin_for_cuda()
    {
        NvrtcGuard.Require();

        var output = Nvrtc.Compile(VectorAdd, "vec_add.cu", "sm_90");

        var cubin = Assert.IsType<byte[]>(output.Cubin);
        Assert.True(cubin.Length > 64);
        Assert.Equal([0x7F, (byte)'E', (byte)'L', (byte)'F'], cubin[..4]);
        Assert.Equal(2, cubin[4]); // ELFCLASS64
        Assert.Equal(190, BitConverter.ToUInt16(cubin, 18)); // e_machine = EM_CUDA
        Assert.Same(cubin, output.ModuleImage());
    }

    [Fact]
    public void Options_and_headers_reach_the_compiler()
    {
        NvrtcGuard.Require();
        const string Source = """
            #include "scale.cuh"
            extern "C" __global__ void KERNEL_NAME(float* x) { x[threadIdx.x] *= SCALE; }
            """;
        var headers = new Dictionary<string, string> { ["scale.cuh"] = "#define SCALE 2.5f\n" };

        var output = Nvrtc.Compile(Source, "named.cu", "compute_80", ["-DKERNEL_NAME=named_by_option", "--std=c++17"], headers);

        Assert.Contains(".entry named_by_option(", output.Ptx, StringComparison.Ordinal);
    }

    [Fact]
    public void Broken_source_throws_with_a_log_naming_the_line()
    {
        NvrtcGuard.Require();
        const string Source = "extern \"C\" __global__ void k(float* x)\n{\n    x[0] = undefined_name;\n}\n";

        var error = Assert.Throws<NvrtcCompileException>(() => Nvrtc.Compile(Source, "broken.cu", "compute_90"));

        Assert.Equal("nvrtcCompileProgram", error.Call);
        Assert.Equal("NVRTC_ERROR_COMPILATION", error.ErrorName);
        Assert.Equal(6, error.Code);
        Assert.Contains("broken.cu(3)", error.Log, StringComparison.Ordinal);
        Assert.Contains("undefined_name", error.Log, StringComparison.Ordinal);
        Assert.Contains("broken.cu(3)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_option_throws_naming_the_option()
    {
        NvrtcGuard.Require();

        var error = Assert.Throws<NvrtcCompileException>(
            () => Nvrtc.Compile(NvrtcTests.VectorAdd, "vec_add.cu", "compute_90", ["--no-such-option"]));

        Assert.Equal("NVRTC_ERROR_INVALID_OPTION", error.ErrorName);
        Assert.Contains("--no-such-option", error.Log, StringComparison.Ordinal);
        Assert.StartsWith("nvrtcCompileProgram failed: NVRTC_ERROR_INVALID_OPTION (5)", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("sm_90", true)]
    [InlineData("sm_90a", true)]
    [InlineData("sm_100", true)]
    [InlineData("compute_80", false)]
    public void Architecture_names_choose_cubin_or_ptx(string architecture, bool cubin) =>
        Assert.Equal(cubin, Nvrtc.ParseArchitecture(architecture));

    [Theory]
    [InlineData("sm90")]
    [InlineData("sm_")]
    [InlineData("sm_9")]
    [InlineData("compute_9x0")]
    [InlineData("-arch=sm_90")]
    public void Malformed_architecture_is_rejected_before_nvrtc(string architecture)
    {
        var error = Assert.Throws<ArgumentException>(() => Nvrtc.Compile(VectorAdd, "vec_add.cu", architecture));

        Assert.Contains(architecture, error.Message, StringComparison.Ordinal);
    }
}
