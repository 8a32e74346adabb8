using RawInfer.Gpu.Kernels;
using RawInfer.Native;

namespace RawInfer.Gpu.Runner;

public sealed unsafe partial class CudaModelRunner
{
    // Activations, one row per batch row, allocated for the limits given at construction (grown if a batch
    // exceeds them, which the KV plan then did not account for).
    private int _capacityTokens;
    private int _capacitySequences;
    private int _capacitySplitRows;
    private DeviceBuffer _x = null!;          // (tokens, dim) F32 residual stream
    private DeviceBuffer _normed = null!;     // (tokens, dim) T rmsnorm output: the input of q/k/v, w1/w3, the classifier
    private DeviceBuffer _q = null!;          // (tokens, heads, headDim) F32 queries
    private DeviceBuffer _k = null!;          // (tokens, kvDim) F32 keys of the new rows
    private DeviceBuffer _v = null!;          // (tokens, kvDim) F32 values of the new rows
    private DeviceBuffer _attention = null!;  // (tokens, dim) T attention output, the input of wo
    private DeviceBuffer _gate = null!;       // (tokens, hidden) F32 w1·x
    private DeviceBuffer _up = null!;         // (tokens, hidden) F32 w3·x
    private DeviceBuffer _activated = null!;  // (tokens, hidden) T SwiGLU output, the input of w2
    private DeviceBuffer _gathered = null!;   // (sequences, dim) F32 normed rows that need logits, gathered
    private DeviceBuffer _final = null!;      // (sequences, dim) T the same rows as GEMM input
    private DeviceBuffer _logits = null!;     // (sequences, vocab) F32
    private DeviceBuffer _partialOut = null!; // (splitRows, heads, headDim) F32 decode partial outputs
    private DeviceBuffer _partialMax = null!; // (splitRows, heads) F32
    private DeviceBuffer _partialSum = null!; // (splitRows, heads) F32

    // Batch metadata: packed into one pinned buffer on the host, copied up with one async copy per step.
    private int _capacityMetadataInts;
    private PinnedHostBuffer? _hostMetadata;
    private DeviceBuffer? _deviceMetadata;

    // KV cache: per layer (blocks, blockSize, kvHeads, headDim) T.
    private DeviceBuffer[] _keyCache = [];
    private DeviceBuffer[] _valueCache = [];

    /// <summary>Bytes of the activation buffers (for the memory report of benchmarks).</summary>
    public long ActivationBytes { get; private set; }

    /// <inheritdoc/>
    public void AllocateKvCache(int numBlocks, int blockSize)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBlocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        if (NumKvBlocks != 0)
        {
            throw new InvalidOperationException("the KV cache is already allocated");
        }

        _context.MakeCurrent();
        var layerBytes = checked((long)numBlocks * blockSize * Config.KvDim * GpuElementTypes.ElementBytes);
        _keyCache = new DeviceBuffer[Config.NumLayers];
        _valueCache = new DeviceBuffer[Config.NumLayers];
        for (var l = 0; l < Config.NumLayers; l++)
        {
            _keyCache[l] = Allocate(layerBytes);
            _valueCache[l] = Allocate(layerBytes);
        }

        NumKvBlocks = numBlocks;
        KvBlockSize = blockSize;
    }

    /// <inheritdoc/>
    /// <remarks>Queued on the step stream (device-to-device), so it lands before the next step reads the block.</remarks>
    public void CopyBlock(int source, int destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (NumKvBlocks == 0)
        {
            throw new InvalidOperationException("AllocateKvCache must run before CopyBlock");
        }

        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)source, (uint)NumKvBlocks, nameof(source));
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)destination, (uint)NumKvBlocks, nameof(destination));
        _context.MakeCurrent();
        var blockBytes = (long)KvBlockSize * Config.KvDim * GpuElementTypes.ElementBytes;
        for (var l = 0; l < Config.NumLayers; l++)
        {
            _keyCache[l].CopyFrom(_keyCache[l], blockBytes, _stream, source * blockBytes, destination * blockBytes);
            _valueCache[l].CopyFrom(_valueCache[l], blockBytes, _stream, source * blockBytes, destination * blockBytes);
        }
    }

    /// <summary>Allocates the activation buffers for steps of up to the given rows and sequences.</summary>
    private void AllocateActivations(int maxTokens, int maxSequences)
    {
        var c = Config;
        var t = GpuElementTypes.ElementBytes;
        var f = sizeof(float);
        if (maxTokens > _capacityTokens)
        {
            _capacityTokens = maxTokens;
            long rows = maxTokens;
            _x = Replace(_x, rows * c.Dim * f);
            _normed = Replace(_normed, rows * c.Dim * t);
            _q = Replace(_q, rows * c.Dim * f);
            _k = Replace(_k, rows * c.KvDim * f);
            _v = Replace(_v, rows * c.KvDim * f);
            _attention = Replace(_attention, rows * c.Dim * t);
            _gate = Replace(_gate, rows * c.HiddenDim * f);
            _up = Replace(_up, rows * c.HiddenDim * f);
            _activated = Replace(_activated, rows * c.HiddenDim * t);
        }

        if (maxSequences > _capacitySequences)
        {
            _capacitySequences = maxSequences;
            long seqs = maxSequences;
            _gathered = Replace(_gathered, seqs * c.Dim * f);
            _final = Replace(_final, seqs * c.Dim * t);
            _logits = Replace(_logits, seqs * c.VocabSize * f);
            _capacitySplitRows = PagedAttentionPlan.MaxSplitRows(maxSequences, c.NumKvHeads, _multiprocessors);
            long splitRows = _capacitySplitRows;
            _partialOut = Replace(_partialOut, splitRows * c.NumHeads * c.HeadDim * f);
            _partialMax = Replace(_partialMax, splitRows * c.NumHeads * f);
            _partialSum = Replace(_partialSum, splitRows * c.NumHeads * f);
        }

        ActivationBytes = _x.SizeBytes + _normed.SizeBytes + _q.SizeBytes + _k.SizeBytes + _v.SizeBytes + _attention.SizeBytes
            + _gate.SizeBytes + _up.SizeBytes + _activated.SizeBytes + _gathered.SizeBytes
            + _final.SizeBytes + _logits.SizeBytes + _partialOut.SizeBytes + _partialMax.SizeBytes + _partialSum.SizeBytes;
    }

    /// <summary>Makes sure the metadata buffers hold <paramref name="ints"/> ints.</summary>
    private void EnsureMetadata(int ints)
    {
        if (ints <= _capacityMetadataInts)
        {
            return;
        }

        _capacityMetadataInts = Math.Max(ints, 4096);
        var bytes = (long)_capacityMetadataInts * sizeof(int);
        _hostMetadata = ReplaceOwned(_hostMetadata, new PinnedHostBuffer(_context, bytes));
        _deviceMetadata = ReplaceOwned(_deviceMetadata, new DeviceBuffer(_context, bytes));
    }

    private DeviceBuffer Replace(DeviceBuffer? old, long bytes)
    {
        if (old is not null)
        {
            // growing mid-run: the stream may still read the old buffer, and captured graphs point into it
            _stream.Synchronize();
            ClearDecodeGraphs();
            _owned.Remove(old);
            old.Dispose();
        }

        return Allocate(bytes);
    }

    private T ReplaceOwned<T>(T? old, T fresh)
        where T : class, IDisposable
    {
        if (old is not null)
        {
            _stream.Synchronize();
            ClearDecodeGraphs();
            _owned.Remove(old);
            old.Dispose();
        }

        return Own(fresh);
    }
}
