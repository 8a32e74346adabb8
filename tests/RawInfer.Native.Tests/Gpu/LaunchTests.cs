namespace RawInfer.Native.Tests.Gpu;

public sealed class LaunchTests
{
    private const string Saxpy = """
        extern "C" __global__ void saxpy(float* y, const float* x, float a, int n)
        {
            int i = blockIdx.x * blockDim.x + threadIdx.x;
            if (i < n) y[i] = a * x[i] + y[i];
        }
        """;

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(1025)]
    public void Vector_add_compiled_by_nvrtc_matches_the_cpu(int n)
    {
        var context = GpuGuard.RequireContextAndNvrtc();
        using var stream = new CudaStream(context);
        using var module = GpuGuard.CompileAndLoad(context, NvrtcTests.VectorAdd, "vec_add.cu");
        var kernel = module.GetFunction("vec_add");
        var a = GpuGuard.RandomFloats(n, seed: 1);
        var b = GpuGuard.RandomFloats(n, seed: 2);
        using var deviceA = new DeviceBuffer(context, n * sizeof(float));
        using var deviceB = new DeviceBuffer(context, n * sizeof(float));
        using var deviceC = new DeviceBuffer(context, n * sizeof(float));
        deviceA.CopyFromHost<float>(a, stream);
        deviceB.CopyFromHost<float>(b, stream);

        var args = new KernelArguments();
        args.Add(deviceC);
        args.Add(deviceA);
        args.Add(deviceB);
        args.Add(n);
        kernel.Launch((n + 255) / 256, 256, 0, stream, ref args);
        var c = new float[n];
        deviceC.CopyToHost<float>(c, stream);
        stream.Synchronize();

        for (var i = 0; i < n; i++)
        {
            Assert.Equal(a[i] + b[i], c[i]); // one rounding on both sides: exact
        }
    }

    [Fact]
    public void Float_scalar_arguments_reach_the_kernel()
    {
        var context = GpuGuard.RequireContextAndNvrtc();
        using var stream = new CudaStream(context);
        using var module = GpuGuard.CompileAndLoad(context, Saxpy, "saxpy.cu");
        var kernel = module.GetFunction("saxpy");
        const int N = 257;
        var x = GpuGuard.RandomFloats(N, seed: 3);
        var y = GpuGuard.RandomFloats(N, seed: 4);
        using var deviceX = new DeviceBuffer(context, N * sizeof(float));
        using var deviceY = new DeviceBuffer(context, N * sizeof(float));
        deviceX.CopyFromHost<float>(x, stream);
        deviceY.CopyFromHost<float>(y, stream);

        var args = new KernelArguments();
        args.Add(deviceY.Pointer);
        args.Add(deviceX.Pointer);
        args.Add(1.5f);
        args.Add(N);
        kernel.Launch(new Dim3((N + 63) / 64), new Dim3(64), 0, stream, ref args);
        var result = new float[N];
        deviceY.CopyToHost<float>(result, stream);
        stream.Synchronize();

        for (var i = 0; i < N; i++)
        {
            // The device may fuse a*x+y into one FMA; the CPU reference rounds twice. Allow one ulp-ish.
            Assert.Equal(MathF.FusedMultiplyAdd(1.5f, x[i], y[i]), result[i], 1e-6f);
        }
    }

    [Fact]
    public void Ptx_from_nvrtc_loads_through_the_driver_jit()
    {
        var context = GpuGuard.RequireContextAndNvrtc();
        var (major, minor) = context.Device.ComputeCapability;
        var output = Nvrtc.Compile(NvrtcTests.VectorAdd, "vec_add.cu", $"compute_{major}{minor}");

        CudaModule module;
        try
        {
            module = CudaModule.LoadData(context, output.ModuleImage());
        }
        catch (CudaModuleLoadException e) when (e.ErrorName == "CUDA_ERROR_UNSUPPORTED_PTX_VERSION")
        {
            Assert.Skip($"NVRTC {Nvrtc.Version} emits PTX newer than driver {CudaDriver.Version} accepts: {e.Message}");
            return;
        }

        using (module)
        {
            var kernel = module.GetFunction("vec_add");
            Assert.True(kernel.GetAttribute(CudaFunctionAttribute.MaxThreadsPerBlock) >= 256);
            Assert.True(kernel.GetAttribute(CudaFunctionAttribute.NumRegisters) > 0);
        }
    }

    [Fact]
    public void Broken_ptx_throws_with_the_jit_log()
    {
        var context = GpuGuard.RequireContext();
        const string Ptx = ".version 7.8\n.target sm_90\n.address_size 64\nthis is not ptx;\n";

        var error = Assert.Throws<CudaModuleLoadException>(() => CudaModule.LoadPtx(context, Ptx));

        Assert.Equal("cuModuleLoadDataEx", error.Call);
        Assert.NotEqual(0, error.Code);
        Assert.False(string.IsNullOrWhiteSpace(error.JitLog), $"no JIT log for {error.ErrorName}");
    }

    [Fact]
    public void Missing_kernel_name_throws_naming_it()
    {
        var context = GpuGuard.RequireContextAndNvrtc();
        using var module = GpuGuard.CompileAndLoad(context, NvrtcTests.VectorAdd, "vec_add.cu");

        var error = Assert.Throws<CudaException>(() => module.GetFunction("no_such_kernel"));

        Assert.Equal("cuModuleGetFunction", error.Call);
        Assert.Equal("CUDA_ERROR_NOT_FOUND", error.ErrorName);
        Assert.Contains("no_such_kernel", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Events_time_queued_work()
    {
        var context = GpuGuard.RequireContext();
        using var stream = new CudaStream(context);
        using var buffer = new DeviceBuffer(context, 64L << 20);
        using var start = new CudaEvent(context);
        using var end = new CudaEvent(context);

        start.Record(stream);
        for (var i = 0; i < 4; i++)
        {
            buffer.Memset((byte)i, stream);
        }

        end.Record(stream);
        end.Synchronize();
        var milliseconds = CudaEvent.ElapsedMilliseconds(start, end);

        Assert.True(float.IsFinite(milliseconds));
        Assert.True(milliseconds >= 0, $"elapsed {milliseconds} ms");
        var last = new byte[16];
        buffer.CopyToHost(last, stream, offsetBytes: (64L << 20) - 16);
        Assert.All(last, value => Assert.Equal(3, value));
    }
}
