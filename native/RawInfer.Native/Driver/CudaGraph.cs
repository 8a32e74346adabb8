using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>
/// An executable CUDA graph: the work queued on a stream between <see cref="BeginCapture"/> and
/// <see cref="EndCapture"/>, recorded instead of run, then replayed by <see cref="Launch"/> as one submission.
/// Every kernel argument (pointers, sizes) is fixed at capture; only the contents of device memory change
/// between replays. Capture is thread-local: a capture-unsafe call on the capturing thread (an allocation, a
/// synchronisation) fails and invalidates the capture; <see cref="EndCapture"/> then throws, and the stream
/// leaves capture mode either way.
/// </summary>
public sealed unsafe class CudaGraph : CudaHandle
{
    private CudaGraph(CudaContext context, nint executable)
        : base(context) => SetHandle(executable);

    /// <summary>Starts recording <paramref name="stream"/>'s work instead of running it.</summary>
    public static void BeginCapture(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Check.Cuda(CudaApi.cuStreamBeginCapture_v2(stream.DangerousGetHandle(), CudaApi.StreamCaptureModeThreadLocal));
        GC.KeepAlive(stream);
    }

    /// <summary>Whether <paramref name="stream"/> is being captured.</summary>
    public static bool IsCapturing(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        int status;
        Check.Cuda(CudaApi.cuStreamIsCapturing(stream.DangerousGetHandle(), &status));
        GC.KeepAlive(stream);
        return status != 0; // CU_STREAM_CAPTURE_STATUS_NONE = 0
    }

    /// <summary>
    /// Ends the capture begun by <see cref="BeginCapture"/> and instantiates what was recorded.
    /// </summary>
    /// <exception cref="CudaException">The capture was invalidated, or instantiation failed; the stream is no longer capturing.</exception>
    public static CudaGraph EndCapture(CudaContext context, CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(stream);
        nint graph;
        Check.Cuda(CudaApi.cuStreamEndCapture(stream.DangerousGetHandle(), &graph));
        GC.KeepAlive(stream);
        try
        {
            nint executable;
            Check.Cuda(CudaApi.cuGraphInstantiateWithFlags(&executable, graph, 0));
            return new CudaGraph(context, executable);
        }
        finally
        {
            // the executable keeps its own copy of the recorded nodes
            _ = CudaApi.cuGraphDestroy(graph);
        }
    }

    /// <summary>Queues one replay of the graph on <paramref name="stream"/>.</summary>
    public void Launch(CudaStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        Check.Cuda(CudaApi.cuGraphLaunch(handle, stream.DangerousGetHandle()));
        GC.KeepAlive(stream);
        GC.KeepAlive(this);
    }

    private protected override bool ReleaseNative() => CudaApi.cuGraphExecDestroy(handle) == 0;
}
