using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Threading;
using RawInfer.KvCache;
using RawInfer.Models;

namespace RawInfer.Cpu;

/// <summary>
/// The float32 forward pass of a Llama-architecture decoder on the CPU, one token at a time, with llama2.c's
/// semantics. All activation buffers are allocated (and pinned) once here, like llama2.c's RunState, so a
/// <see cref="Forward"/> call allocates nothing. Not thread-safe: one forward pass at a time per instance.
/// </summary>
public sealed unsafe partial class CpuTransformer : IDisposable
{
    private readonly LoadedModel _model;
    private readonly LlamaWeights _weights;        // the model's, with Q8_0 matrices carrying decoded scales and copies
    private readonly List<float[]> _decodedScales;  // pinned tables those tensors point into
    private readonly InterleavedCopies? _interleaved; // the Q8_0 matrices' interleaved copies, likewise
    private readonly CpuWorkerPool _pool;
    private readonly MatVecJob _matVec;
    private readonly AttentionJob _attention;

    // Run state. Arrays are pinned (allocated on the pinned object heap) so jobs can hold raw pointers.
    private readonly AlignedFloats _x;   // (dim) residual stream
    private readonly AlignedFloats _xb;  // (dim) normed input of a block; attention output
    private readonly AlignedFloats _xb2; // (dim) output of wo or w2, before the residual add
    private readonly AlignedFloats _hb;  // (hidden) w1·x, then the SwiGLU activation
    private readonly AlignedFloats _hb2; // (hidden) w3·x
    private readonly AlignedFloats _q;   // (dim) = (nHeads, headDim) query of this token
    private readonly AlignedFloats _k;   // (kvDim) = (nKvHeads, headDim) key of this token
    private readonly AlignedFloats _v;   // (kvDim) = (nKvHeads, headDim) value of this token
    private readonly AlignedFloats _att; // (nHeads, maxSeqLen) attention scores, then probabilities
    private readonly AlignedFloats _logits; // (vocab)
    private readonly AlignedFloats _ropeCos; // (dim) cos per element for this position, repeated per head
    private readonly AlignedFloats _ropeSin; // (dim) signed sin per element for this position, repeated per head
    private readonly float[] _inverseFrequencies; // (headDim/2) 1 / theta^(2i/headDim)
    private bool _disposed;

    /// <summary>Binds a loaded model. The model must outlive this transformer (it owns the weight mapping).</summary>
    /// <param name="model">A model whose tensors have CPU kernels (F32 here).</param>
    /// <param name="threads">Threads per matrix product, the caller included; 0 = <see cref="Environment.ProcessorCount"/>.</param>
    /// <exception cref="ArgumentException">A tensor's shape disagrees with the config.</exception>
    /// <exception cref="NotSupportedException">A tensor's element type has no CPU kernel.</exception>
    public CpuTransformer(LoadedModel model, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        _model = model;
        Config = model.Config;
        CheckWeights(Config, model.Weights);
        KernelClasses.EnsureInitialized(); // before any kernel is compiled: see there
        _decodedScales = [];
        _weights = DecodedScaleTables.Attach(model.Weights, _decodedScales); // the decode kernel's Q8_0 scales, decoded once
        _weights = InterleavedCopies.Attach(_weights, out _interleaved);     // and its rows, where they fit

        var c = Config;
        _x = Pinned(c.Dim);
        _xb = Pinned(c.Dim);
        _xb2 = Pinned(c.Dim);
        _hb = Pinned(c.HiddenDim);
        _hb2 = Pinned(c.HiddenDim);
        _q = Pinned(c.Dim);
        _k = Pinned(c.KvDim);
        _v = Pinned(c.KvDim);
        _att = Pinned(checked(c.NumHeads * c.MaxSeqLen));
        _logits = Pinned(c.VocabSize);
        _ropeCos = Pinned(c.Dim);
        _ropeSin = Pinned(c.Dim);
        _inverseFrequencies = new float[c.HeadDim / 2];
        for (var i = 0; i < _inverseFrequencies.Length; i++)
        {
            // Same float arithmetic as llama2.c: 1 / powf(theta, (2i) / headDim).
            _inverseFrequencies[i] = 1f / MathF.Pow(c.RopeTheta, 2 * i / (float)c.HeadDim);
        }

        _attention = new AttentionJob(c, _q, _att, _xb);
        _pool = new CpuWorkerPool(threads == 0 ? Environment.ProcessorCount : threads);
        _matVec = new MatVecJob(_pool.WorkerCount);
    }

    /// <summary>The model's shape.</summary>
    public ModelConfig Config { get; }

    /// <summary>The model this transformer reads its weights from.</summary>
    public LoadedModel Model => _model;

    /// <summary>Q8_0 matrices whose block scales this transformer decoded (<see cref="DecodedScaleTables"/>).</summary>
    internal int DecodedScaleTableCount => _decodedScales.Count;

    /// <summary>Threads taking part in each matrix product.</summary>
    public int Threads => _pool.WorkerCount;

    /// <summary>
    /// Products (and attention steps) smaller than this many multiply-adds run on the calling thread: waking the
    /// workers costs more than they save. Tests lower it to 0 to drive every step through the pool.
    /// </summary>
    internal long ParallelThreshold { get; set; } = 32 * 1024;

    /// <summary>A single-sequence KV cache sized for this model, holding up to <paramref name="capacityTokens"/> positions.</summary>
    public ContiguousKvCache CreateKvCache(int capacityTokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacityTokens);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacityTokens, Config.MaxSeqLen);
        return new ContiguousKvCache(Config.NumLayers, capacityTokens, Config.KvDim);
    }

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

    /// <summary>An activation buffer on a cache line (<see cref="LineAligned"/>).</summary>
    private static AlignedFloats Pinned(int length) => new(length);

    private static float* Ptr(AlignedFloats buffer) => buffer.Pointer;

    private void RunMatVec(MatVecJob job)
    {
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

        CheckEmbedding(w.TokenEmbedding, "token_embedding", c.VocabSize, c.Dim);
        CheckVector(w.FinalNorm, "final_norm", c.Dim);
        CheckMatrix(w.Classifier, "classifier", c.VocabSize, c.Dim);
        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = w.Layers[l];
            CheckVector(layer.AttentionNorm, $"layers[{l}].attention_norm", c.Dim);
            CheckMatrix(layer.Wq, $"layers[{l}].wq", c.NumHeads * c.HeadDim, c.Dim);
            CheckMatrix(layer.Wk, $"layers[{l}].wk", c.KvDim, c.Dim);
            CheckMatrix(layer.Wv, $"layers[{l}].wv", c.KvDim, c.Dim);
            CheckMatrix(layer.Wo, $"layers[{l}].wo", c.Dim, c.NumHeads * c.HeadDim);
            CheckVector(layer.FfnNorm, $"layers[{l}].ffn_norm", c.Dim);
            CheckMatrix(layer.W1, $"layers[{l}].w1", c.HiddenDim, c.Dim);
            CheckMatrix(layer.W2, $"layers[{l}].w2", c.Dim, c.HiddenDim);
            CheckMatrix(layer.W3, $"layers[{l}].w3", c.HiddenDim, c.Dim);
        }
    }

    private static void CheckMatrix(in WeightTensor t, string name, int rows, int cols)
    {
        CheckShape(t, name, rows, cols);
        if (!MatVec.Supports(t.Type))
        {
            throw new NotSupportedException($"{name}: the CPU backend has no matrix-vector kernel for {t.Type}");
        }
    }

    private static void CheckEmbedding(in WeightTensor t, string name, int rows, int cols)
    {
        CheckShape(t, name, rows, cols);
        if (!Embedding.Supports(t.Type))
        {
            throw new NotSupportedException($"{name}: the CPU backend cannot look up {t.Type} embeddings");
        }
    }

    private static void CheckVector(in WeightTensor t, string name, int length)
    {
        CheckShape(t, name, 1, length);
        if (t.Type != TensorType.F32)
        {
            throw new NotSupportedException($"{name}: norm weights must be F32, not {t.Type}");
        }
    }

    private static void CheckShape(in WeightTensor t, string name, int rows, int cols)
    {
        if (t.Rows != rows || t.Cols != cols || t.Data == null)
        {
            throw new ArgumentException($"{name}: expected ({rows}, {cols}) but the tensor is ({t.Rows}, {t.Cols})");
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadArgument(string name, int value, int limit) =>
        throw new ArgumentOutOfRangeException(name, value, $"{name} must be in 0..{limit - 1}");
}
