using System.Runtime.InteropServices;

namespace RawInfer.Native.Tests;

public sealed class NativeLibraryResolverTests
{
    private const string Cu13 = "/usr/local/lib/python3.12/dist-packages/nvidia/cu13/lib";

    private static string[] Paths(IReadOnlyList<LibraryCandidate> candidates) => [.. candidates.Select(c => c.Path)];

    [Fact]
    public void Nvrtc_order_is_bare_names_then_toolkits_then_python_wheels()
    {
        var files = new FakeFileSystem(
            "/usr/local/cuda-12.4/lib64/libnvrtc.so.12",
            "/usr/local/cuda-13.0/lib64/libnvrtc.so.13",
            "/usr/local/cuda/lib64/libnvrtc.so.13",
            "/usr/local/cuda-9.2/lib64/libnvrtc.so",
            $"{Cu13}/libnvrtc.so.13",
            $"{Cu13}/libnvrtc-builtins.so.13.0",
            "/home/u/.local/lib/python3.9/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
            "/home/u/.local/lib/python3.11/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
            "/usr/lib/python3/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.11.2");

        var candidates = NativeLibraryResolver.GetCandidates(
            NativeLibraryKind.Nvrtc, FakeFileSystem.Environment(("HOME", "/home/u")), files);

        Assert.Equal(
            [
                "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so",
                "/usr/local/cuda/lib64/libnvrtc.so.13",
                "/usr/local/cuda-13.0/lib64/libnvrtc.so.13",
                "/usr/local/cuda-12.4/lib64/libnvrtc.so.12",
                "/usr/local/cuda-9.2/lib64/libnvrtc.so",
                "/home/u/.local/lib/python3.11/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
                "/home/u/.local/lib/python3.9/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12",
                $"{Cu13}/libnvrtc.so.13",
                "/usr/lib/python3/dist-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.11.2",
            ],
            Paths(candidates));
    }

    [Fact]
    public void Nvrtc_by_full_path_loads_builtins_from_its_folder_first()
    {
        var files = new FakeFileSystem($"{Cu13}/libnvrtc.so.13", $"{Cu13}/libnvrtc-builtins.so.13.0", "/other/libnvrtc-builtins.so.12.4");

        var candidates = NativeLibraryResolver.GetCandidates(NativeLibraryKind.Nvrtc, FakeFileSystem.Environment(), files);

        var wheel = Assert.Single(candidates, c => !c.IsBareName);
        Assert.Equal($"{Cu13}/libnvrtc.so.13", wheel.Path);
        Assert.Equal([$"{Cu13}/libnvrtc-builtins.so.13.0"], wheel.Preload);
        Assert.All(candidates.Where(c => c.IsBareName), c => Assert.Empty(c.Preload));
    }

    [Fact]
    public void Cublas_by_full_path_loads_cublasLt_from_its_folder_first()
    {
        var files = new FakeFileSystem($"{Cu13}/libcublas.so.13", $"{Cu13}/libcublasLt.so.13");

        var cublas = NativeLibraryResolver.GetCandidates(NativeLibraryKind.Cublas, FakeFileSystem.Environment(), files);
        var lt = NativeLibraryResolver.GetCandidates(NativeLibraryKind.CublasLt, FakeFileSystem.Environment(), files);

        Assert.Equal(["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so", $"{Cu13}/libcublas.so.13"], Paths(cublas));
        Assert.Equal([$"{Cu13}/libcublasLt.so.13"], cublas[^1].Preload);
        Assert.Equal($"{Cu13}/libcublasLt.so.13", lt[^1].Path);
    }

    [Fact]
    public void Override_variable_replaces_the_search()
    {
        var files = new FakeFileSystem("/opt/nv/libnvrtc.so.13", "/opt/nv/libnvrtc-builtins.so.13.0", $"{Cu13}/libnvrtc.so.13");

        var candidates = NativeLibraryResolver.GetCandidates(
            NativeLibraryKind.Nvrtc, FakeFileSystem.Environment((NativeLibraryResolver.NvrtcPathVariable, "/opt/nv/libnvrtc.so.13")), files);

        var only = Assert.Single(candidates);
        Assert.Equal("/opt/nv/libnvrtc.so.13", only.Path);
        Assert.Equal(["/opt/nv/libnvrtc-builtins.so.13.0"], only.Preload);
    }

    [Fact]
    public void Override_naming_a_folder_searches_that_folder_and_cublasLt_follows_cublas()
    {
        var files = new FakeFileSystem("/opt/blas/libcublas.so.12", "/opt/blas/libcublasLt.so.12");
        var environment = FakeFileSystem.Environment((NativeLibraryResolver.CublasPathVariable, "/opt/blas"));

        var cublas = NativeLibraryResolver.GetCandidates(NativeLibraryKind.Cublas, environment, files);
        var lt = NativeLibraryResolver.GetCandidates(
            NativeLibraryKind.CublasLt, FakeFileSystem.Environment((NativeLibraryResolver.CublasPathVariable, "/opt/blas/libcublas.so.12")), files);

        Assert.Equal(["/opt/blas/libcublas.so.12"], Paths(cublas));
        Assert.Equal(["/opt/blas/libcublasLt.so.12"], Paths(lt));
    }

    [Fact]
    public void Override_pointing_at_nothing_keeps_one_candidate_so_the_error_names_it()
    {
        var environment = FakeFileSystem.Environment((NativeLibraryResolver.CudaDriverPathVariable, "/nowhere/libcuda.so.1"));

        var candidates = NativeLibraryResolver.GetCandidates(NativeLibraryKind.CudaDriver, environment, new FakeFileSystem());

        Assert.Equal(["/nowhere/libcuda.so.1"], Paths(candidates));
    }

    [Fact]
    public void Driver_is_searched_by_name_only()
    {
        var files = new FakeFileSystem("/usr/local/cuda/lib64/stubs/libcuda.so", $"{Cu13}/libcuda.so.1");

        var candidates = NativeLibraryResolver.GetCandidates(NativeLibraryKind.CudaDriver, FakeFileSystem.Environment(), files);

        Assert.Equal(["libcuda.so.1", "libcuda.so"], Paths(candidates));
    }

    [Fact]
    public void Site_packages_variable_and_virtualenv_come_before_system_folders()
    {
        var files = new FakeFileSystem(
            "/custom/site/nvidia/cu13/lib/libnvrtc.so.13",
            "/venv/lib/python3.10/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
            $"{Cu13}/libnvrtc.so.13",
            "/opt/conda/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13");
        var environment = FakeFileSystem.Environment(
            (NativeLibraryResolver.PythonSitePackagesVariable, "/custom/site:/missing"), ("VIRTUAL_ENV", "/venv"));

        var candidates = NativeLibraryResolver.GetCandidates(NativeLibraryKind.Nvrtc, environment, files);

        Assert.Equal(
            [
                "/custom/site/nvidia/cu13/lib/libnvrtc.so.13",
                "/venv/lib/python3.10/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
                $"{Cu13}/libnvrtc.so.13",
                "/opt/conda/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13",
            ],
            Paths(candidates).Where(p => !new LibraryCandidate(p, []).IsBareName));
    }

    [Theory]
    [InlineData("python3.12", "python3.9")]
    [InlineData("cuda-13.0", "cuda-12.4")]
    [InlineData("cuda-12.10", "cuda-12.9")]
    [InlineData("libnvrtc-builtins.so.13.0", "libnvrtc-builtins.so.13")]
    public void Natural_order_puts_the_newer_version_first(string newer, string older)
    {
        Assert.True(NativeLibraryResolver.NaturalDescending(newer, older) < 0);
        Assert.True(NativeLibraryResolver.NaturalDescending(older, newer) > 0);
    }

    [Theory]
    [InlineData("rawinfer_cuda", NativeLibraryKind.CudaDriver)]
    [InlineData("rawinfer_nvrtc", NativeLibraryKind.Nvrtc)]
    [InlineData("rawinfer_cublas", NativeLibraryKind.Cublas)]
    [InlineData("rawinfer_cublaslt", NativeLibraryKind.CublasLt)]
    public void Logical_import_names_map_to_their_library(string importName, NativeLibraryKind kind) =>
        Assert.Equal(kind, NativeLibraryResolver.KindOfImport(importName));

    [Fact]
    public void Other_import_names_are_left_to_the_runtime() => Assert.Null(NativeLibraryResolver.KindOfImport("libc"));

    [Fact]
    public void Ilgpu_cuda_import_maps_to_the_versioned_driver_except_on_wsl()
    {
        Assert.Equal("libcuda.so.1", NativeLibraryResolver.MapIlgpuLibrary("cuda", isWsl: false));
        Assert.Null(NativeLibraryResolver.MapIlgpuLibrary("cuda", isWsl: true));
        Assert.Null(NativeLibraryResolver.MapIlgpuLibrary("nvcuda", isWsl: false));
        Assert.True(NativeLibraryResolver.IsWslKernel("5.15.153.1-microsoft-standard-WSL2"));
        Assert.False(NativeLibraryResolver.IsWslKernel("6.1.0-18-amd64"));
    }

    [Fact]
    public void Installed_ilgpu_resolver_answers_cuda_with_the_driver_handle()
    {
        // This test assembly stands in for ILGPU's: the resolver is per assembly, and the test assembly imports nothing.
        var assembly = typeof(NativeLibraryResolverTests).Assembly;
        if (NativeLibraryResolver.IsWsl())
        {
            Assert.False(NativeLibraryResolver.InstallIlgpuResolver(assembly));
            return;
        }

        Assert.True(NativeLibraryResolver.InstallIlgpuResolver(assembly));
        Assert.True(NativeLibraryResolver.InstallIlgpuResolver(assembly)); // idempotent

        var driverFound = NativeLibraryResolver.TryLoad(NativeLibraryKind.CudaDriver, out var driver, out _);
        var cudaFound = NativeLibrary.TryLoad("cuda", assembly, null, out var cuda);

        Assert.Equal(driverFound, cudaFound);
        if (driverFound)
        {
            Assert.Equal(driver, cuda);
        }
    }

    [Fact]
    public void Failure_line_names_what_was_tried_and_the_override()
    {
        var candidates = NativeLibraryResolver.GetCandidates(NativeLibraryKind.Nvrtc, FakeFileSystem.Environment(), new FakeFileSystem());

        var line = NativeLibraryResolver.DescribeFailure(NativeLibraryKind.Nvrtc, candidates, null);

        Assert.Contains("NVRTC not found", line, StringComparison.Ordinal);
        Assert.Contains("libnvrtc.so.13, libnvrtc.so.12, libnvrtc.so.11.2, libnvrtc.so", line, StringComparison.Ordinal);
        Assert.Contains(NativeLibraryResolver.NvrtcPathVariable, line, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', line);
    }
}
