using System.Runtime.InteropServices;
using RawInfer.Gpu.Kernels;
using RawInfer.Gpu.Runner;
using RawInfer.Native;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>
/// Device 0 with every kernel loaded (compiled by NVRTC into a private cache), or the one-line reason there is none.
/// Tests call <see cref="Require"/> first, which skips them on machines without a GPU.
/// </summary>
public sealed class CudaKernelFixture : IDisposable
{
    private readonly DirectoryInfo? _cache;

    public CudaKernelFixture()
    {
        if (!CudaDriver.TryInitialize(out var reason))
        {
            Reason = $"no CUDA driver: {reason}";
            return;
        }

        if (CudaDriver.DeviceCount == 0)
        {
            Reason = "the CUDA driver reports no device";
            return;
        }

        if (!Nvrtc.TryLoad(out var nvrtcReason))
        {
            Reason = $"a GPU is present but NVRTC is not: {nvrtcReason}";
            return;
        }

        _cache = Directory.CreateTempSubdirectory("rawinfer-kernels-");
        Context = CudaContext.RetainPrimary(0);
        Stream = new CudaStream(Context);
        Kernels = CudaKernels.Create(Context, new KernelCompiler(Context.Device.Architecture, _cache.FullName));
    }

    public string Reason { get; } = "";

    public CudaContext? Context { get; }

    public CudaStream? Stream { get; }

    public CudaKernels? Kernels { get; }

    /// <summary>Skips the calling test without a usable GPU; returns the loaded kernels otherwise.</summary>
    public CudaKernels Require()
    {
        if (Kernels is null)
        {
            Assert.Skip(Reason);
        }

        Context!.MakeCurrent();
        return Kernels;
    }

    /// <summary>A device copy of <paramref name="data"/> (at least one byte, so empty inputs still have an address).</summary>
    public DeviceBuffer Upload<T>(ReadOnlySpan<T> data)
        where T : unmanaged
    {
        var buffer = new DeviceBuffer(Context!, Math.Max(1, (long)data.Length * Marshal.SizeOf<T>()));
        buffer.CopyFromHost(data, Stream!);
        Stream!.Synchronize();
        return buffer;
    }

    /// <summary>A zero-filled device buffer of <paramref name="count"/> elements.</summary>
    public DeviceBuffer Zeros<T>(long count)
        where T : unmanaged => Upload<T>(new T[count]);

    /// <summary>Waits for the stream and copies <paramref name="count"/> elements back.</summary>
    public T[] Download<T>(DeviceBuffer buffer, int count)
        where T : unmanaged
    {
        Stream!.Synchronize();
        var host = new T[count];
        buffer.CopyToHost<T>(host, Stream);
        Stream.Synchronize();
        return host;
    }

    public void Dispose()
    {
        Kernels?.Dispose();
        Stream?.Dispose();
        Context?.Dispose();
        _cache?.Delete(recursive: true);
    }
}

/// <summary>16-bit storage formats on the host, rounding to nearest even like the kernels.</summary>
internal static class Storage
{
    public static ushort Encode(GpuElementType type, float value)
    {
        if (type == GpuElementType.F16)
        {
            return BitConverter.HalfToUInt16Bits((Half)value);
        }

        var bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7fffffffu) > 0x7f800000u)
        {
            return (ushort)((bits >> 16) | 0x40);
        }

        bits += 0x7fffu + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }

    public static float Decode(GpuElementType type, ushort bits) =>
        type == GpuElementType.F16 ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>The contract's tolerance for a value stored in <paramref name="type"/>: relative, plus a small absolute floor.</summary>
    public static (double Relative, double Absolute) Tolerance(GpuElementType type) =>
        type == GpuElementType.F16 ? (1e-2, 1e-3) : (3e-2, 1e-2);

    public static void AssertClose(GpuElementType type, double expected, double actual, string where)
    {
        var (relative, absolute) = Tolerance(type);
        var error = Math.Abs(expected - actual);
        if (!(error <= (relative * Math.Abs(expected)) + absolute))
        {
            Xunit.Assert.Fail($"{where}: expected {expected}, got {actual} ({type}, tolerance {relative} relative + {absolute})");
        }
    }

    /// <summary>Random values in [-scale, scale) stored in <paramref name="type"/>, and their decoded floats.</summary>
    public static (ushort[] Bits, float[] Values) Random(GpuElementType type, Random random, long count, float scale = 1f)
    {
        var bits = new ushort[count];
        var values = new float[count];
        for (long i = 0; i < count; i++)
        {
            bits[i] = Encode(type, (float)((random.NextDouble() * 2) - 1) * scale);
            values[i] = Decode(type, bits[i]);
        }

        return (bits, values);
    }
}
