namespace RawInfer.Native.Tests;

public sealed class CudaDriverTests
{
    [Fact]
    public void TryInitialize_reports_one_clear_line_when_there_is_no_driver()
    {
        var driverLoads = NativeLibraryResolver.TryLoad(NativeLibraryKind.CudaDriver, out _, out _);

        var available = CudaDriver.TryInitialize(out var reason);

        if (!driverLoads)
        {
            Assert.False(available);
            Assert.Contains("CUDA driver library not found", reason, StringComparison.Ordinal);
            Assert.Contains("libcuda.so.1", reason, StringComparison.Ordinal);
            Assert.Contains(NativeLibraryResolver.CudaDriverPathVariable, reason, StringComparison.Ordinal);
            var unavailable = Assert.Throws<InvalidOperationException>(() => CudaDevice.Get(0));
            Assert.Contains(reason!, unavailable.Message, StringComparison.Ordinal);
        }
        else if (available)
        {
            Assert.Null(reason);
            Assert.True(CudaDriver.DeviceCount >= 1);
            Assert.True(CudaDriver.Version >= 11000);
        }
        else
        {
            Assert.False(string.IsNullOrWhiteSpace(reason));
        }

        if (reason is not null)
        {
            Assert.DoesNotContain('\n', reason);
        }
    }

    [Fact]
    public void Each_kind_of_driver_failure_has_its_own_reason()
    {
        var missing = CudaDriver.DescribeBindFailure(new DllNotFoundException("libcuda.so.1: cannot open shared object file"));
        var notADriver = CudaDriver.DescribeBindFailure(new EntryPointNotFoundException("cuInit"));
        var noDevice = CudaDriver.DescribeInitResult(100);
        var other = CudaDriver.DescribeInitResult(3);

        Assert.StartsWith("CUDA driver library could not be loaded", missing, StringComparison.Ordinal);
        Assert.Contains("cannot open shared object file", missing, StringComparison.Ordinal);
        Assert.Contains("lacks cuInit", notADriver, StringComparison.Ordinal);
        Assert.Contains("CUDA_ERROR_NO_DEVICE", noDevice, StringComparison.Ordinal);
        Assert.Equal("cuInit failed: CUDA_ERROR_NOT_INITIALIZED (3)", other);
        Assert.Equal(4, new[] { missing, notADriver, noDevice, other }.Distinct().Count());
    }

    [Theory]
    [InlineData(0, "CUDA_SUCCESS")]
    [InlineData(1, "CUDA_ERROR_INVALID_VALUE")]
    [InlineData(2, "CUDA_ERROR_OUT_OF_MEMORY")]
    [InlineData(100, "CUDA_ERROR_NO_DEVICE")]
    [InlineData(218, "CUDA_ERROR_INVALID_PTX")]
    [InlineData(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION")]
    [InlineData(500, "CUDA_ERROR_NOT_FOUND")]
    [InlineData(700, "CUDA_ERROR_ILLEGAL_ADDRESS")]
    [InlineData(12345, "CUDA_ERROR_12345")]
    public void Cuda_error_codes_have_their_cuda_h_names(int code, string name) => Assert.Equal(name, ErrorNames.Cuda(code));

    [Fact]
    public void Nvrtc_and_cublas_codes_have_their_names()
    {
        Assert.Equal("NVRTC_ERROR_INVALID_OPTION", ErrorNames.Nvrtc(5));
        Assert.Equal("NVRTC_ERROR_COMPILATION", ErrorNames.Nvrtc(6));
        Assert.Equal("CUBLAS_STATUS_INVALID_VALUE", ErrorNames.Cublas(7));
        Assert.Equal("CUBLAS_STATUS_NOT_SUPPORTED", ErrorNames.Cublas(15));
    }

    private static int FailingCall(int code) => code;

    [Fact]
    public void A_failed_check_names_the_call_and_the_error()
    {
        var error = Assert.Throws<CudaException>(() => Check.Cuda(FailingCall(2)));

        Assert.Equal("FailingCall", error.Call);
        Assert.Equal(2, error.Code);
        Assert.Equal("CUDA_ERROR_OUT_OF_MEMORY", error.ErrorName);
        Assert.StartsWith("FailingCall failed: CUDA_ERROR_OUT_OF_MEMORY (2)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nvrtc_and_cublas_checks_name_the_call()
    {
        var nvrtc = Assert.Throws<NvrtcException>(() => Check.Nvrtc(FailingCall(5)));
        var cublas = Assert.Throws<CublasException>(() => Check.Cublas(FailingCall(7)));

        Assert.Equal("FailingCall failed: NVRTC_ERROR_INVALID_OPTION (5)", nvrtc.Message);
        Assert.Equal("FailingCall failed: CUBLAS_STATUS_INVALID_VALUE (7)", cublas.Message);
    }

    [Theory]
    [InlineData("CudaApi.cuMemAlloc_v2(&pointer, (nuint)sizeBytes)", "cuMemAlloc_v2")]
    [InlineData("cuInit(0)", "cuInit")]
    [InlineData("  NvrtcApi.nvrtcCompileProgram(program, count, options) ", "nvrtcCompileProgram")]
    [InlineData("result", "result")]
    public void Call_name_is_the_member_before_the_argument_list(string expression, string name) =>
        Assert.Equal(name, Check.CallName(expression));

    [Fact]
    public void Module_load_error_carries_the_jit_log_in_its_message()
    {
        var error = new CudaModuleLoadException("cuModuleLoadDataEx", 218, "CUDA_ERROR_INVALID_PTX", null, "ptxas fatal: line 4: syntax error");

        Assert.Equal("ptxas fatal: line 4: syntax error", error.JitLog);
        Assert.Contains("JIT log: ptxas fatal: line 4", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0x7F, (byte)'E', (byte)'L', (byte)'F', 2 }, true)]
    [InlineData(new byte[] { 0x50, 0xED, 0x55, 0xBA, 1 }, true)]
    [InlineData(new byte[] { (byte)'/', (byte)'/', (byte)' ' }, false)]
    public void Binary_module_images_are_told_from_ptx(byte[] image, bool binary) =>
        Assert.Equal(binary, CudaModule.IsBinaryImage(image));

    [Theory]
    [InlineData(0, 16, 16)]
    [InlineData(8, 8, 16)]
    [InlineData(16, 0, 16)]
    public void Ranges_inside_a_buffer_pass(long offset, long bytes, long size) =>
        DeviceBuffer.CheckRange(offset, bytes, size);

    [Theory]
    [InlineData(-1, 4, 16)]
    [InlineData(0, 17, 16)]
    [InlineData(12, 8, 16)]
    [InlineData(0, -1, 16)]
    [InlineData(long.MaxValue, 2, 16)]
    public void Ranges_outside_a_buffer_throw_with_the_numbers(long offset, long bytes, long size)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => DeviceBuffer.CheckRange(offset, bytes, size));

        Assert.Contains($"buffer of {size} bytes", error.Message, StringComparison.Ordinal);
    }
}
