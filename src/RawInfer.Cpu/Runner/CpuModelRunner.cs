using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Threading;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.Cpu.Runner;

/// <summary>
/// The CPU backend of the engine: a float32 forward pass over a whole batch of rows (decode tokens and prefill
/// chunks mixed) on the paged KV cache (float32 or half, <see cref="KvCacheType"/>). Every weight matrix is applied to all rows of the step as one
/// matrix-matrix product, which is where batching pays on a CPU: the weights stream from memory once per step
/// instead of once per token. Attention is per row through each sequence's block table.
/// <para>
/// A row's logits depend only on its own sequence (its tokens, positions and cache), never on what else is in
/// the batch: every kernel sums in a fixed order per row (see <see cref="GemmF32"/>). Activation buffers are
/// allocated once, at the first batch (from its <see cref="ForwardBatch.MaxTokens"/>), and pinned; a step
/// allocates nothing after that. Called from the engine's step thread only.
/// </para>
/// </summary>
public sealed unsafe partial class CpuModelRunner : IModelRunner
{
    private readonly LlamaWeights _weights;        // the model's, with Q8_0 matrices carrying decoded scales
    private readonly List<float[]> _decodedScales = []; // pinned tables those tensors point into
    private readonly InterleavedCopies? _interleaved;  // the Q8_0 matrices' interleaved copies, likewise
    private readonly CpuWorkerPool _pool;
    private readonly GemmJob _gemm;
    private readonly PagedAttentionJob _attention;
    private readonly float[] _inverseFrequencies; // (headDim/2) 1 / theta^(2i/headDim)
    private PagedKvStorage? _storage;
    private bool _disposed;

    // Activations, one row per batch row; sized by EnsureCapacity and pinned so jobs can hold raw pointers.
    private int _capacityTokens;
    private int _capacitySequences;
    private AlignedFloats _x = AlignedFloats.Empty;       // (tokens, dim) residual stream
    private AlignedFloats _xb = AlignedFloats.Empty;      // (tokens, dim) normed input of a block; attention output
    private AlignedFloats _xb2 = AlignedFloats.Empty;     // (tokens, dim) output of wo or w2, before the residual add
    private AlignedFloats _q = AlignedFloats.Empty;       // (tokens, dim) = (tokens, nHeads, headDim) queries
    private AlignedFloats _k = AlignedFloats.Empty;       // (tokens, kvDim) keys of the new tokens
    private AlignedFloats _v = AlignedFloats.Empty;       // (tokens, kvDim) values of the new tokens
    private AlignedFloats _hb = AlignedFloats.Empty;      // (tokens, hidden) w1·x, then the SwiGLU activation
    private AlignedFloats _hb2 = AlignedFloats.Empty;     // (tokens, hidden) w3·x
    private AlignedFloats _ropeCos = AlignedFloats.Empty; // (tokens, dim) cos per element at each row's position, repeated per head
    private AlignedFloats _ropeSin = AlignedFloats.Empty; // (tokens, dim) signed sin per element at each row's position
    private AlignedFloats _final = AlignedFloats.Empty;   // (sequences, dim) final-normed rows that need logits
    private int[] _rowSequence = []; // (tokens) batch sequence of each row

    /// <summary>Binds a loaded model. The model must outlive the runner (it owns the weight mapping).</summary>
    /// <param name="model">A model whose tensors have CPU kernels.</param>
    /// <param name="threads">Threads per product, the caller included; 0 = <see cref="Environment.ProcessorCount"/>.</param>
    /// <exception cref="ArgumentException">A tensor's shape disagrees with the config.</exception>
    /// <param name="kvCacheType">
    /// The element type of the KV cache: float32 (the default; a row's logits are then the single-sequence
    /// <c>CpuTransformer</c>'s) or IEEE half (half the memory per token, so twice the tokens in the same budget,
    /// and half the bytes attention reads; K and V are rounded to nearest-even as they are stored).
    /// </param>
    /// <exception cref="NotSupportedException">A tensor's element type has no CPU kernel.</exception>
    public CpuModelRunner(LoadedModel model, int threads = 0, KvCacheType kvCacheType = KvCacheType.F32)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        _ = kvCacheType.ElementBytes(); // rejects an undefined type
        KvCacheType = kvCacheType;
        Config = model.Config;
        CheckWeights(Config, model.Weights);
        KernelClasses.EnsureInitialized(); // before any kernel is compiled: see there
        _weights = DecodedScaleTables.Attach(model.Weights, _decodedScales); // Q8_0 scales for the decode tiles, decoded once
        _weights = InterleavedCopies.Attach(_weights, out _interleaved);     // and their rows for decode steps, where they fit

        var c = Config;
        _inverseFrequencies = new float[c.HeadDim / 2];
        for (var i = 0; i < _inverseFrequencies.Length; i++)
        {
            // Same float arithmetic as llama2.c (and CpuTransformer): 1 / powf(theta, (2i) / headDim).
            _inverseFrequencies[i] = 1f / MathF.Pow(c.RopeTheta, 2 * i / (float)c.HeadDim);
        }

        _pool = new CpuWorkerPool(threads == 0 ? Environment.ProcessorCount : threads);
        _attention = new PagedAttentionJob(c, _pool.WorkerCount);
        _gemm = new GemmJob(_pool.WorkerCount);
    }

    /// <inheritdoc/>
    public ModelConfig Config { get; }

    /// <inheritdoc/>
    public long KvBytesPerToken => Config.KvBytesPerToken(KvCacheType.ElementBytes());

    /// <summary>The element type K and V are kept in.</summary>
    public KvCacheType KvCacheType { get; }

    /// <summary>Threads taking part in each product, the caller included.</summary>
    public int Threads => _pool.WorkerCount;

    /// <summary>The KV storage, once <see cref="AllocateKvCache"/> has run.</summary>
    internal PagedKvStorage? Storage => _storage;

    /// <summary>Bytes of the Q8_0 matrices' interleaved copies this runner made (0 where it made none, or the rows were rewritten in place).</summary>
    internal long InterleavedCopyBytes => _interleaved?.Bytes ?? 0;

    /// <summary>Q8_0 matrices given a decoded scale table (none for rows rewritten in place).</summary>
    internal int DecodedScaleTableCount => _decodedScales.Count;

    /// <summary>
    /// Products (and attention passes) smaller than this many multiply-adds run on the calling thread: waking the
    /// workers costs more than they save. Tests lower it to 0 to drive every step through the pool.
    /// </summary>
    internal long ParallelThreshold { get; set; } = 32 * 1024;

    /// <inheritdoc/>
    public void AllocateKvCache(int numBlocks, int blockSize)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_storage is not null)
        {
            throw new InvalidOperationException("the KV cache is already allocated");
        }

        // Each layer's K and V is one array: a pool past that size is refused with the budget it would take, before
        // the memory check (whose message would only say that it does not fit here).
        var maxBlocks = blockSize > 0 ? PagedKvStorage.MaxBlocks(blockSize, Config.KvDim) : int.MaxValue;
        if (numBlocks > maxBlocks)
        {
            throw new NotSupportedException(
                $"a KV cache of {numBlocks} blocks × {blockSize} tokens is more than the CPU backend holds for this model: at most " +
                $"{maxBlocks} blocks ({PagedKvStorage.BytesFor(Config.NumLayers, maxBlocks, blockSize, Config.KvDim, KvCacheType) >> 20} MiB), " +
                $"each layer's K and V being one array of at most {Array.MaxLength} elements: lower the KV-cache budget");
        }

        // A pool larger than the memory left would be mapped in as it fills (or all at once by PrefaultKvCache) until
        // the kernel kills the process: refuse it here, where the caller can still choose a smaller one.
        var bytes = PagedKvStorage.BytesFor(Config.NumLayers, numBlocks, blockSize, Config.KvDim, KvCacheType);
        var total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var inUse = Environment.WorkingSet;
        if (total > 0 && bytes > total - inUse)
        {
            throw new InsufficientMemoryException(
                $"a KV cache of {numBlocks} blocks × {blockSize} tokens ({KvCacheType.Name()}) takes {bytes >> 20} MiB, more than the " +
                $"{Math.Max(0, total - inUse) >> 20} MiB of memory left to this process ({total >> 20} MiB available, {inUse >> 20} MiB in use): " +
                "lower the KV-cache budget");
        }

        _storage = new PagedKvStorage(Config.NumLayers, numBlocks, blockSize, Config.KvDim, KvCacheType);
    }

    /// <inheritdoc/>
    public void PrefaultKvCache() => RequireStorage().Prefault();

    /// <inheritdoc/>
    public void CopyBlock(int source, int destination) => RequireStorage().CopyBlock(source, destination);

    /// <summary>Stops the worker threads. The model itself is not disposed (the caller owns it).</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _pool.Dispose();
            _interleaved?.Dispose(); // after the workers: nothing reads the copies now
        }
    }

    /// <summary>Sizes the activation buffers for the batch's limits; allocates only when they grow.</summary>
    private void EnsureCapacity(int maxTokens, int maxSequences)
    {
        if (maxTokens > _capacityTokens)
        {
            var c = Config;
            _capacityTokens = maxTokens;
            _x = Pinned(maxTokens, c.Dim);
            _xb = Pinned(maxTokens, c.Dim);
            _xb2 = Pinned(maxTokens, c.Dim);
            _q = Pinned(maxTokens, c.Dim);
            _k = Pinned(maxTokens, c.KvDim);
            _v = Pinned(maxTokens, c.KvDim);
            _hb = Pinned(maxTokens, c.HiddenDim);
            _hb2 = Pinned(maxTokens, c.HiddenDim);
            _ropeCos = Pinned(maxTokens, c.Dim);
            _ropeSin = Pinned(maxTokens, c.Dim);
            _rowSequence = new int[maxTokens];
        }

        if (maxSequences > _capacitySequences)
        {
            _capacitySequences = maxSequences;
            _final = Pinned(maxSequences, Config.Dim);
        }
    }

    private PagedKvStorage RequireStorage()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _storage ?? throw new InvalidOperationException("AllocateKvCache must run before the first step");
    }

    /// <summary>Activation rows on a cache line, so the GEMM's 64-byte loads of X never straddle two (<see cref="LineAligned"/>).</summary>
    private static AlignedFloats Pinned(int rows, int cols) => new(checked(rows * cols));

    private static float* Ptr(AlignedFloats buffer) => buffer.Pointer;

    private void Run(GemmJob job)
    {
        if (job.PrepareQuantizedX())
        {
            if (job.Work < ParallelThreshold || job.QuantizeInline)
            {
                job.Quantizer.Execute(0, 1);
            }
            else
            {
                _pool.Run(job.Quantizer);
            }
        }

        if (job.Work < ParallelThreshold)
        {
            job.Execute(0, 1);
        }
        else
        {
            _pool.Run(job);
        }
    }

    private static void CheckWeights(ModelConfig c, LlamaWeights w)
    {
        if (w.Layers.Count != c.NumLayers)
        {
            throw new ArgumentException($"model has {w.Layers.Count} layers of weights but its config says {c.NumLayers}", nameof(w));
        }

        if (c.HeadDim * c.NumHeads != c.Dim || c.NumHeads % c.NumKvHeads != 0 || c.HeadDim % 2 != 0)
        {
            throw new ArgumentException(
                $"dim {c.Dim}, heads {c.NumHeads}, kv heads {c.NumKvHeads}: heads must divide dim into even head widths and kv heads divide heads");
        }

        CheckShape(w.TokenEmbedding, "token_embedding", c.VocabSize, c.Dim, Embedding.Supports(w.TokenEmbedding.Type));
        CheckShape(w.FinalNorm, "final_norm", 1, c.Dim, w.FinalNorm.Type == TensorType.F32);
        CheckMatrix(w.Classifier, "classifier", c.VocabSize, c.Dim);
        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = w.Layers[l];
            CheckShape(layer.AttentionNorm, $"layers[{l}].attention_norm", 1, c.Dim, layer.AttentionNorm.Type == TensorType.F32);
            CheckMatrix(layer.Wq, $"layers[{l}].wq", c.Dim, c.Dim);
            CheckMatrix(layer.Wk, $"layers[{l}].wk", c.KvDim, c.Dim);
            CheckMatrix(layer.Wv, $"layers[{l}].wv", c.KvDim, c.Dim);
            CheckMatrix(layer.Wo, $"layers[{l}].wo", c.Dim, c.Dim);
            CheckShape(layer.FfnNorm, $"layers[{l}].ffn_norm", 1, c.Dim, layer.FfnNorm.Type == TensorType.F32);
            CheckMatrix(layer.W1, $"layers[{l}].w1", c.HiddenDim, c.Dim);
            CheckMatrix(layer.W2, $"layers[{l}].w2", c.Dim, c.HiddenDim);
            CheckMatrix(layer.W3, $"layers[{l}].w3", c.HiddenDim, c.Dim);
        }
    }

    private static void CheckMatrix(in WeightTensor t, string name, int rows, int cols) =>
        CheckShape(t, name, rows, cols, Gemm.Supports(t.Type));

    private static void CheckShape(in WeightTensor t, string name, int rows, int cols, bool typeSupported)
    {
        if (t.Rows != rows || t.Cols != cols || t.Data == null)
        {
            throw new ArgumentException($"{name}: expected ({rows}, {cols}) but the tensor is ({t.Rows}, {t.Cols})");
        }

        if (!typeSupported)
        {
            throw new NotSupportedException($"{name}: the CPU runner has no kernel for {t.Type} here");
        }
    }
}
