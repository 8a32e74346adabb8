using System.Runtime.InteropServices;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// A retained primary context of one device (the context the CUDA runtime and cuBLAS share). Every thread that
/// issues CUDA work calls <see cref="MakeCurrent"/> first; object constructors here do it themselves. Disposing
/// releases the retain once every stream, buffer, module and handle created on it has been released too.
/// </summary>
public sealed unsafe class CudaContext : IDisposable
{
    /// <summary>Retains the primary context of <paramref name="device"/> and makes it current on this thread.</summary>
    public CudaContext(CudaDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        nint context;
        Check.Cuda(CudaApi.cuDevicePrimaryCtxRetain(&context, device.Handle));
        Handle = new PrimaryContextHandle(context, device.Handle);
        MakeCurrent();
    }

    /// <summary>The device this context belongs to.</summary>
    public CudaDevice Device { get; }

    /// <summary>The retained CUcontext; children add a reference so it outlives them.</summary>
    internal PrimaryContextHandle Handle { get; }

    /// <summary>Retains the primary context of the device with the given ordinal.</summary>
    public static CudaContext RetainPrimary(int deviceOrdinal = 0) => new(CudaDevice.Get(deviceOrdinal));

    /// <summary>Binds this context to the calling thread (cuCtxSetCurrent).</summary>
    public void MakeCurrent()
    {
        Check.Cuda(CudaApi.cuCtxSetCurrent(Handle.DangerousGetHandle()));
        GC.KeepAlive(Handle);
    }

    /// <summary>Free and total device memory in bytes (cuMemGetInfo).</summary>
    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        nuint free, total;
        Check.Cuda(CudaApi.cuMemGetInfo_v2(&free, &total));
        return ((long)free, (long)total);
    }

    /// <summary>Waits for all work in this context (cuCtxSynchronize).</summary>
    public void Synchronize()
    {
        MakeCurrent();
        Check.Cuda(CudaApi.cuCtxSynchronize());
    }

    /// <summary>Drops this object's retain of the primary context.</summary>
    public void Dispose() => Handle.Dispose();
}

/// <summary>One cuDevicePrimaryCtxRetain, released by cuDevicePrimaryCtxRelease.</summary>
internal sealed class PrimaryContextHandle : SafeHandle
{
    private readonly int _device;

    public PrimaryContextHandle(nint context, int device)
        : base(0, ownsHandle: true)
    {
        _device = device;
        SetHandle(context);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => CudaApi.cuDevicePrimaryCtxRelease_v2(_device) == 0;
}

/// <summary>
/// Base of every handle created inside a context: holds a reference on the context so the primary context is
/// released last, and makes the context current before the native release (finalizers run on another thread).
/// Release results are returned, never thrown.
/// </summary>
public abstract unsafe class CudaHandle : SafeHandle
{
    private PrimaryContextHandle? _context;

    private protected CudaHandle(CudaContext context)
        : base(0, ownsHandle: true)
    {
        ArgumentNullException.ThrowIfNull(context);
        var added = false;
        context.Handle.DangerousAddRef(ref added);
        _context = context.Handle;
    }

    /// <inheritdoc/>
    public override bool IsInvalid => handle == 0;

    /// <summary>Undoes the context reference when a derived constructor fails before it owns a native object.</summary>
    private protected void DetachContext()
    {
        var context = Interlocked.Exchange(ref _context, null);
        context?.DangerousRelease();
    }

    /// <summary>Frees the native object; the context is current. Returns false on a failed release, never throws.</summary>
    private protected abstract bool ReleaseNative();

    /// <inheritdoc/>
    protected sealed override bool ReleaseHandle()
    {
        var context = Interlocked.Exchange(ref _context, null);
        if (context is null)
        {
            return ReleaseNative();
        }

        try
        {
            var wanted = context.DangerousGetHandle();
            nint current;
            if (CudaApi.cuCtxGetCurrent(&current) != 0 || current != wanted)
            {
                _ = CudaApi.cuCtxSetCurrent(wanted);
            }

            return ReleaseNative();
        }
        finally
        {
            context.DangerousRelease();
        }
    }
}
