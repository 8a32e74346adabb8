using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>A CUDA stream. Work on one stream runs in order; the host waits only in <see cref="Synchronize"/>.</summary>
public sealed unsafe class CudaStream : CudaHandle
{
    /// <summary>
    /// Creates a stream. Non-blocking (the default) means it does not wait on the legacy default stream, so cuBLAS
    /// or library work elsewhere cannot serialize it.
    /// </summary>
    public CudaStream(CudaContext context, bool nonBlocking = true)
        : base(context)
    {
        try
        {
            context.MakeCurrent();
            nint stream;
            Check.Cuda(CudaApi.cuStreamCreate(&stream, nonBlocking ? CudaApi.StreamNonBlocking : 0));
            SetHandle(stream);
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>Blocks the calling thread until all work queued on this stream has finished.</summary>
    public void Synchronize()
    {
        Check.Cuda(CudaApi.cuStreamSynchronize(handle));
        GC.KeepAlive(this);
    }

    private protected override bool ReleaseNative() => CudaApi.cuStreamDestroy_v2(handle) == 0;
}

/// <summary>A CUDA event: a marker recorded on a stream, for ordering and GPU-side timing.</summary>
public sealed unsafe class CudaEvent : CudaHandle
{
    /// <summary>Creates an event; <paramref name="enableTiming"/> false makes it a cheaper ordering-only event.</summary>
    public CudaEvent(CudaContext context, bool enableTiming = true)
        : base(context)
    {
        try
        {
            context.MakeCurrent();
            nint evt;
            Check.Cuda(CudaApi.cuEventCreate(&evt, enableTiming ? CudaApi.EventDefault : CudaApi.EventDisableTiming));
            SetHandle(evt);
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>Records the event after the work queued so far on <paramref name="stream"/>.</summary>
    public void Record(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Check.Cuda(CudaApi.cuEventRecord(handle, stream.DangerousGetHandle()));
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    /// <summary>Blocks until the work before the recorded point has finished.</summary>
    public void Synchronize()
    {
        Check.Cuda(CudaApi.cuEventSynchronize(handle));
        GC.KeepAlive(this);
    }

    /// <summary>GPU time between two completed timing events, in milliseconds (about 0.5 µs resolution).</summary>
    public static float ElapsedMilliseconds(CudaEvent start, CudaEvent end)
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(end);
        float milliseconds;
        Check.Cuda(CudaApi.cuEventElapsedTime(&milliseconds, start.DangerousGetHandle(), end.DangerousGetHandle()));
        GC.KeepAlive(start);
        GC.KeepAlive(end);
        return milliseconds;
    }

    private protected override bool ReleaseNative() => CudaApi.cuEventDestroy_v2(handle) == 0;
}
