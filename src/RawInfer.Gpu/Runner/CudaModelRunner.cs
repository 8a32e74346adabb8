using RawInfer.Engine.Runner;
using RawInfer.Gpu.Kernels;
using RawInfer.Models;
using RawInfer.Native;

namespace RawInfer.Gpu.Runner;

/// <summary>
/// The CUDA backend of the engine: the same batched forward pass as the CPU runner, on one device and one
/// stream. Weights are uploaded once as F16 or BF16 (norm weights as float32); the residual stream and every
/// activation between kernels are float32, GEMM inputs are the 16-bit type, GEMMs run in cuBLAS with float32
/// accumulation and output, and every other op is one of our kernels (kernels/*.cu through
/// <see cref="CudaKernels"/>). The KV cache is one pair of device buffers per layer, (blocks, blockSize, kvHeads,
/// headDim) in the 16-bit type, addressed by the batch's slot mapping and block tables.
/// <para>
/// A step queues everything on the stream without waiting: one upload of the batch metadata from one pinned
/// buffer, the layers, and one copy of the logit rows back; the host waits once, for that copy. Pure-decode steps
/// of a recurring shape replay a captured CUDA graph instead of queuing the layers launch by launch
/// (<see cref="CudaRunnerOptions.DecodeGraphs"/>).
/// Thread-affine like every CUDA object: each entry point makes the context current on the calling thread, so
/// the engine's step thread may differ from the thread that built the runner.
/// </para>
/// </summary>
public sealed unsafe partial class CudaModelRunner : IModelRunner
{
    private readonly CudaContext _context;
    private readonly CudaStream _stream;
    private readonly CublasHandle _cublas;
    private readonly CudaKernels _kernels;
    private readonly List<IDisposable> _owned = [];
    private readonly int _multiprocessors;
    private readonly int _minTokensPerSplit;
    private bool _disposed;

    /// <summary>cuBLAS scratch the runner gives the handle: the size NVIDIA recommends for Hopper.</summary>
    private const long CublasWorkspaceBytes = 32L << 20;

    /// <summary>
    /// Opens the device, compiles (or loads from the cache) the kernels, uploads the weights and allocates the
    /// activation buffers for the limits in <paramref name="options"/>. The model may be disposed afterwards:
    /// the runner keeps no pointer into it.
    /// </summary>
    /// <exception cref="ArgumentException">A tensor's shape disagrees with the config, or the shape is one the kernels cannot run.</exception>
    /// <exception cref="NotSupportedException">A tensor's element type has no conversion.</exception>
    /// <exception cref="CudaException">A driver call failed (out of memory, no device).</exception>
    public CudaModelRunner(LoadedModel model, CudaRunnerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new CudaRunnerOptions();
        options.Validate();
        Config = model.Config;
        CheckShapes(Config, model.Weights);
        ElementType = options.ElementType ?? GpuElementTypes.DefaultFor(StoredMatrixType(model.Weights));
        CudaDriver.EnsureInitialized();
        _context = CudaContext.RetainPrimary(options.DeviceOrdinal);
        try
        {
            Device = _context.Device;
            _multiprocessors = Device.MultiprocessorCount;
            _stream = Own(new CudaStream(_context));
            _cublas = Own(new CublasHandle(_context));
            _cublas.SetStream(_stream);
            _cublas.SetWorkspace(Allocate(CublasWorkspaceBytes)); // after SetStream, which resets it
            _decodeGraphsEnabled = options.DecodeGraphs;
            _minTokensPerSplit = options.MinTokensPerSplit;
            _kernels = Own(CudaKernels.Create(_context, options.KernelCacheDirectory));
            UploadWeights(model.Weights);
            AllocateActivations(options.MaxBatchedTokens, options.MaxSequences);
            _stream.Synchronize();
        }
        catch
        {
            DisposeOwned();
            _context.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public ModelConfig Config { get; }

    /// <summary>The device the runner runs on.</summary>
    public CudaDevice Device { get; }

    /// <summary>Device storage type of weights, KV cache and GEMM inputs.</summary>
    public GpuElementType ElementType { get; }

    /// <inheritdoc/>
    public long KvBytesPerToken => Config.KvBytesPerToken(GpuElementTypes.ElementBytes);

    /// <summary>Bytes of weights on the device: what one decode step must read at least once (the roofline's numerator).</summary>
    public long WeightBytes { get; private set; }

    /// <summary>KV blocks allocated by <see cref="AllocateKvCache"/> (0 before).</summary>
    public int NumKvBlocks { get; private set; }

    /// <summary>Token slots per KV block (0 before <see cref="AllocateKvCache"/>).</summary>
    public int KvBlockSize { get; private set; }

    /// <summary>
    /// KV blocks of <paramref name="blockSize"/> tokens that fit in the memory free now (after the weights and the
    /// activation buffers), see <see cref="KvBlockPlanner"/>. Give the result to the engine as its NumKvBlocks.
    /// </summary>
    public int PlanKvBlocks(int blockSize, double fraction = KvBlockPlanner.DefaultFraction)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var (free, _) = _context.MemoryInfo();
        return PlanKvBlocks(free, KvBytesPerToken, blockSize, fraction);
    }

    /// <summary>The planning arithmetic alone (see <see cref="KvBlockPlanner.PlanBlocks"/>).</summary>
    public static int PlanKvBlocks(long freeBytes, long kvBytesPerToken, int blockSize, double fraction) =>
        KvBlockPlanner.PlanBlocks(freeBytes, kvBytesPerToken, blockSize, fraction);

    /// <summary>Waits for all queued work (tests and benchmarks; a step already ends synchronised).</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _context.MakeCurrent();
        _stream.Synchronize();
    }

    /// <summary>Frees every device allocation and releases the context. Never throws.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            _context.MakeCurrent();
            _stream.Synchronize();
        }
        catch (CudaException)
        {
            // a failed step leaves the context in an error state: free what we can regardless
        }

        ClearDecodeGraphs();
        DisposeOwned();
        _context.Dispose();
    }

    private T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    private void DisposeOwned()
    {
        // reverse order: buffers before the handles and the stream they were used with
        for (var i = _owned.Count - 1; i >= 0; i--)
        {
            try
            {
                _owned[i].Dispose();
            }
            catch (CudaException)
            {
                // SafeHandles report release failures instead of throwing; this only guards wrapper objects
            }
        }

        _owned.Clear();
    }

    private DeviceBuffer Allocate(long bytes) => Own(new DeviceBuffer(_context, Math.Max(bytes, 1)));
}
