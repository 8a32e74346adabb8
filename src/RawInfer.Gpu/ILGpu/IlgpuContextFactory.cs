using System.Diagnostics.CodeAnalysis;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using RawInfer.Native;

namespace RawInfer.Gpu.ILGpu;

/// <summary>An ILGPU context with the one accelerator created on it; disposing releases both.</summary>
public sealed class IlgpuDevice : IDisposable
{
    internal IlgpuDevice(Context context, Accelerator accelerator)
    {
        Context = context;
        Accelerator = accelerator;
    }

    /// <summary>The ILGPU context (owns the compiled-kernel cache).</summary>
    public Context Context { get; }

    /// <summary>The accelerator kernels run on.</summary>
    public Accelerator Accelerator { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Accelerator.Dispose();
        Context.Dispose();
    }
}

/// <summary>
/// Creates ILGPU contexts: a CPU one with warp-sized groups (kernel tests without a GPU) and a CUDA one that first
/// maps ILGPU's "cuda" import to libcuda.so.1 (without it ILGPU 1.5.3 silently sees no device on a driver-only
/// machine).
/// </summary>
public static class IlgpuContextFactory
{
    /// <summary>Lanes per warp of the CPU test device, as on NVIDIA GPUs.</summary>
    public const int CpuWarpSize = 32;

    /// <summary>Warps per group of the CPU test device: groups of up to 64 threads.</summary>
    public const int CpuWarpsPerGroup = 2;

    /// <summary>
    /// A context holding only a CPU device with 32-lane warps and 64-thread groups (ILGPU's default CPU device
    /// allows 16 threads per group), one multiprocessor per core, and its accelerator. Correct but very slow
    /// with barriers: for tests on tiny shapes, never as a CPU backend.
    /// </summary>
    public static IlgpuDevice CreateCpu()
    {
        var cpu = new CPUDevice(CpuWarpSize, CpuWarpsPerGroup, Environment.ProcessorCount);
        var context = Context.Create(builder => builder.CPU(cpu));
        try
        {
            return new IlgpuDevice(context, cpu.CreateCPUAccelerator(context));
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A CUDA context and accelerator on device <paramref name="ordinal"/>. Returns false with one line in
    /// <paramref name="reason"/> (starting "no CUDA device") when the driver library is missing, ILGPU sees no
    /// device, or ILGPU fails to create the accelerator; never throws for those.
    /// </summary>
    public static bool TryCreateCuda(int ordinal, [NotNullWhen(true)] out IlgpuDevice? device, [NotNullWhen(false)] out string? reason)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ordinal);
        device = null;
        NativeLibraryResolver.InstallIlgpuResolver(typeof(Context).Assembly);
        if (!NativeLibraryResolver.TryLoad(NativeLibraryKind.CudaDriver, out _, out var driverError))
        {
            reason = $"no CUDA device: {driverError}";
            return false;
        }

        Context? context = null;
        try
        {
            context = Context.Create(builder => builder.Cuda());
            var devices = context.GetCudaDevices();
            if (ordinal >= devices.Count)
            {
                reason = $"no CUDA device: ILGPU found {devices.Count} CUDA device(s), asked for ordinal {ordinal}";
                context.Dispose();
                return false;
            }

            device = new IlgpuDevice(context, devices[ordinal].CreateCudaAccelerator(context));
            reason = null;
            return true;
        }
        catch (Exception e) when (e is ILGPU.Runtime.Cuda.CudaException or DllNotFoundException or EntryPointNotFoundException
            or TypeInitializationException or NotSupportedException)
        {
            context?.Dispose();
            reason = $"no CUDA device: ILGPU could not open CUDA device {ordinal}: {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}";
            return false;
        }
    }
}
