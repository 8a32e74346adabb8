namespace RawInfer.Native.Tests.Gpu;

/// <summary>
/// The device tests share one retained primary context. Without a driver or device they call Assert.Skip, so CI
/// reports them as skipped, never as passed.
/// </summary>
internal static class GpuGuard
{
    private static readonly Lazy<CudaContext?> s_context = new(() =>
        CudaDriver.TryInitialize(out _) ? CudaContext.RetainPrimary(0) : null);

    /// <summary>The context, current on the calling thread; skips the test when there is no CUDA device.</summary>
    public static CudaContext RequireContext()
    {
        if (!CudaDriver.TryInitialize(out var reason))
        {
            Assert.Skip($"no CUDA device: {reason}");
        }

        var context = s_context.Value!;
        context.MakeCurrent(); // xunit moves tests between threads; the context is per thread
        return context;
    }

    /// <summary>A context plus NVRTC (fails instead of skipping when RAWINFER_REQUIRE_NVRTC=1).</summary>
    public static CudaContext RequireContextAndNvrtc()
    {
        var context = RequireContext();
        NvrtcGuard.Require();
        return context;
    }

    /// <summary>A module built from <paramref name="source"/> as a cubin for this device (works whatever the driver's PTX ISA).</summary>
    public static CudaModule CompileAndLoad(CudaContext context, string source, string name)
    {
        var output = Nvrtc.Compile(source, name, context.Device.Architecture);
        return CudaModule.LoadData(context, output.ModuleImage());
    }

    public static float[] RandomFloats(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return values;
    }
}
