using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// Device memory from cuMemAlloc (256-byte aligned). Copies are queued on a stream. The span overloads are safe
/// with managed memory: CUDA stages a pageable source before returning and completes a copy into pageable memory
/// before returning. The pointer overloads are truly asynchronous when the host memory is pinned
/// (<see cref="PinnedHostBuffer"/>): keep it alive until the stream is synchronized.
/// </summary>
public sealed unsafe class DeviceBuffer : CudaHandle
{
    /// <summary>Allocates <paramref name="sizeBytes"/> bytes (uninitialized) on the context's device.</summary>
    public DeviceBuffer(CudaContext context, long sizeBytes)
        : base(context)
    {
        try
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeBytes);
            context.MakeCurrent();
            ulong pointer;
            Check.Cuda(CudaApi.cuMemAlloc_v2(&pointer, (nuint)sizeBytes));
            SetHandle((nint)pointer);
            SizeBytes = sizeBytes;
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>Size in bytes.</summary>
    public long SizeBytes { get; }

    /// <summary>The CUdeviceptr, for kernel arguments and cuBLAS. Valid while this buffer is not disposed.</summary>
    public nint Pointer => handle;

    /// <summary>Queues a copy of <paramref name="source"/> into this buffer at <paramref name="offsetBytes"/>.</summary>
    public void CopyFromHost(ReadOnlySpan<byte> source, CudaStream stream, long offsetBytes = 0)
    {
        fixed (byte* pointer = source)
        {
            CopyFromHost(pointer, source.Length, stream, offsetBytes);
        }
    }

    /// <summary>Queues a copy of <paramref name="source"/> (as raw bytes) into this buffer at <paramref name="offsetBytes"/>.</summary>
    public void CopyFromHost<T>(ReadOnlySpan<T> source, CudaStream stream, long offsetBytes = 0)
        where T : unmanaged =>
        CopyFromHost(MemoryMarshal.AsBytes(source), stream, offsetBytes);

    /// <summary>Queues a host-to-device copy from raw host memory (asynchronous when it is pinned).</summary>
    public void CopyFromHost(void* source, long bytes, CudaStream stream, long offsetBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offsetBytes, bytes, SizeBytes);
        if (bytes == 0)
        {
            return;
        }

        Check.Cuda(CudaApi.cuMemcpyHtoDAsync_v2(
            (ulong)handle + (ulong)offsetBytes, source, (nuint)bytes, stream.DangerousGetHandle()));
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    /// <summary>Copies from this buffer at <paramref name="offsetBytes"/> into <paramref name="destination"/>.</summary>
    public void CopyToHost(Span<byte> destination, CudaStream stream, long offsetBytes = 0)
    {
        fixed (byte* pointer = destination)
        {
            CopyToHost(pointer, destination.Length, stream, offsetBytes);
        }
    }

    /// <summary>Copies from this buffer at <paramref name="offsetBytes"/> into <paramref name="destination"/> (raw bytes).</summary>
    public void CopyToHost<T>(Span<T> destination, CudaStream stream, long offsetBytes = 0)
        where T : unmanaged =>
        CopyToHost(MemoryMarshal.AsBytes(destination), stream, offsetBytes);

    /// <summary>Queues a device-to-host copy into raw host memory (asynchronous when it is pinned).</summary>
    public void CopyToHost(void* destination, long bytes, CudaStream stream, long offsetBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offsetBytes, bytes, SizeBytes);
        if (bytes == 0)
        {
            return;
        }

        Check.Cuda(CudaApi.cuMemcpyDtoHAsync_v2(
            destination, (ulong)handle + (ulong)offsetBytes, (nuint)bytes, stream.DangerousGetHandle()));
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    /// <summary>Queues a device-to-device copy of <paramref name="bytes"/> bytes from <paramref name="source"/>.</summary>
    public void CopyFrom(
        DeviceBuffer source, long bytes, CudaStream stream, long sourceOffsetBytes = 0, long destinationOffsetBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(sourceOffsetBytes, bytes, source.SizeBytes);
        CheckRange(destinationOffsetBytes, bytes, SizeBytes);
        if (bytes == 0)
        {
            return;
        }

        Check.Cuda(CudaApi.cuMemcpyDtoDAsync_v2(
            (ulong)handle + (ulong)destinationOffsetBytes,
            (ulong)source.handle + (ulong)sourceOffsetBytes,
            (nuint)bytes,
            stream.DangerousGetHandle()));
        GC.KeepAlive(source);
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    /// <summary>Queues setting every byte of the buffer to <paramref name="value"/>.</summary>
    public void Memset(byte value, CudaStream stream) => Memset(value, 0, SizeBytes, stream);

    /// <summary>Queues setting <paramref name="bytes"/> bytes from <paramref name="offsetBytes"/> to <paramref name="value"/>.</summary>
    public void Memset(byte value, long offsetBytes, long bytes, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        CheckRange(offsetBytes, bytes, SizeBytes);
        if (bytes == 0)
        {
            return;
        }

        Check.Cuda(CudaApi.cuMemsetD8Async((ulong)handle + (ulong)offsetBytes, value, (nuint)bytes, stream.DangerousGetHandle()));
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    private protected override bool ReleaseNative() => CudaApi.cuMemFree_v2((ulong)handle) == 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CheckRange(long offsetBytes, long bytes, long sizeBytes)
    {
        if (offsetBytes < 0 || bytes < 0 || offsetBytes > sizeBytes || bytes > sizeBytes - offsetBytes)
        {
            ThrowOutOfRange(offsetBytes, bytes, sizeBytes);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowOutOfRange(long offsetBytes, long bytes, long sizeBytes) =>
        throw new ArgumentOutOfRangeException(
            nameof(bytes), $"range [{offsetBytes}, {offsetBytes}+{bytes}) lies outside a buffer of {sizeBytes} bytes");
}

/// <summary>
/// Page-locked host memory from cuMemAllocHost: copies to and from it run asynchronously at full PCIe speed.
/// </summary>
public sealed unsafe class PinnedHostBuffer : CudaHandle
{
    /// <summary>Allocates <paramref name="sizeBytes"/> bytes of pinned host memory (uninitialized).</summary>
    public PinnedHostBuffer(CudaContext context, long sizeBytes)
        : base(context)
    {
        try
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sizeBytes);
            context.MakeCurrent();
            void* pointer;
            Check.Cuda(CudaApi.cuMemAllocHost_v2(&pointer, (nuint)sizeBytes));
            SetHandle((nint)pointer);
            SizeBytes = sizeBytes;
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>Size in bytes.</summary>
    public long SizeBytes { get; }

    /// <summary>The host address. Valid while this buffer is not disposed.</summary>
    public nint Pointer => handle;

    /// <summary>The memory as bytes (the first 2^31-1 bytes at most).</summary>
    public Span<byte> AsSpan() => new((void*)handle, (int)Math.Min(SizeBytes, int.MaxValue));

    /// <summary>The memory as whole elements of <typeparamref name="T"/>.</summary>
    public Span<T> AsSpan<T>()
        where T : unmanaged =>
        new((void*)handle, (int)Math.Min(SizeBytes / sizeof(T), int.MaxValue));

    private protected override bool ReleaseNative() => CudaApi.cuMemFreeHost((void*)handle) == 0;
}
