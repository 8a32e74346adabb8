using RawInfer.Models;
using RawInfer.Native;

namespace RawInfer.Gpu.Runner;

public sealed unsafe partial class CudaModelRunner
{
    /// <summary>Rows converted per staging chunk are capped so each chunk is at most this many bytes.</summary>
    private const long StagingBytes = 32L << 20;

    private DeviceBuffer _embedding = null!;  // (vocab, dim) T
    private DeviceBuffer _classifier = null!; // (vocab, dim) T; the embedding itself when shared
    private DeviceBuffer _finalNorm = null!;  // (dim) F32
    private DeviceLayer[] _layers = [];

    /// <summary>One transformer block's weights on the device. Matrices are row-major (out, in) in T.</summary>
    private sealed class DeviceLayer
    {
        public required DeviceBuffer AttentionNorm { get; init; } // (dim) F32
        public required DeviceBuffer Wq { get; init; }            // (dim, dim)
        public required DeviceBuffer Wk { get; init; }            // (kvDim, dim)
        public required DeviceBuffer Wv { get; init; }            // (kvDim, dim)
        public required DeviceBuffer Wo { get; init; }            // (dim, dim)
        public required DeviceBuffer FfnNorm { get; init; }       // (dim) F32
        public required DeviceBuffer W1 { get; init; }            // (hidden, dim) gate
        public required DeviceBuffer W2 { get; init; }            // (dim, hidden) down
        public required DeviceBuffer W3 { get; init; }            // (hidden, dim) up
    }

    /// <summary>The element type most of the model's matrices are stored in (decides the default device type).</summary>
    private static TensorType StoredMatrixType(LlamaWeights w) => w.Layers.Count > 0 ? w.Layers[0].Wq.Type : w.TokenEmbedding.Type;

    /// <summary>
    /// Converts every matrix on the host into T through two pinned staging buffers (one is filled while the other
    /// is copying) and uploads it; norm weights go up as float32.
    /// </summary>
    private void UploadWeights(LlamaWeights w)
    {
        using var stagingA = new PinnedHostBuffer(_context, StagingBytes);
        using var stagingB = new PinnedHostBuffer(_context, StagingBytes);
        using var copiedA = new CudaEvent(_context, enableTiming: false);
        using var copiedB = new CudaEvent(_context, enableTiming: false);
        var uploader = new MatrixUploader(this, [stagingA, stagingB], [copiedA, copiedB]);

        _embedding = uploader.Upload(w.TokenEmbedding);
        _classifier = Config.SharedClassifier ? _embedding : uploader.Upload(w.Classifier);
        _finalNorm = UploadF32(w.FinalNorm);
        _layers = new DeviceLayer[w.Layers.Count];
        for (var l = 0; l < _layers.Length; l++)
        {
            var layer = w.Layers[l];
            _layers[l] = new DeviceLayer
            {
                AttentionNorm = UploadF32(layer.AttentionNorm),
                Wq = uploader.Upload(layer.Wq),
                Wk = uploader.Upload(layer.Wk),
                Wv = uploader.Upload(layer.Wv),
                Wo = uploader.Upload(layer.Wo),
                FfnNorm = UploadF32(layer.FfnNorm),
                W1 = uploader.Upload(layer.W1),
                W2 = uploader.Upload(layer.W2),
                W3 = uploader.Upload(layer.W3),
            };
        }

        // the staging buffers are freed when this returns: nothing may still be reading them
        _stream.Synchronize();
        WeightBytes = uploader.UploadedBytes;
    }

    /// <summary>A small float32 vector (norm weights): converted on the host, copied synchronously.</summary>
    private DeviceBuffer UploadF32(in WeightTensor tensor)
    {
        var values = HostWeightConverter.ToFloat32(tensor);
        var buffer = Allocate((long)values.Length * sizeof(float));
        buffer.CopyFromHost<float>(values, _stream);
        _stream.Synchronize(); // the managed array is pageable and goes out of scope
        WeightBytes += buffer.SizeBytes;
        return buffer;
    }

    /// <summary>Double-buffered conversion and upload of row-major matrices.</summary>
    private sealed class MatrixUploader(CudaModelRunner runner, PinnedHostBuffer[] staging, CudaEvent[] copied)
    {
        private readonly bool[] _inFlight = new bool[staging.Length];
        private int _next;

        public long UploadedBytes { get; private set; }

        public DeviceBuffer Upload(in WeightTensor tensor)
        {
            var rowBytes = (long)tensor.Cols * GpuElementTypes.ElementBytes;
            var buffer = runner.Allocate(tensor.Rows * rowBytes);
            var rowsPerChunk = (int)Math.Max(1, StagingBytes / rowBytes);
            for (var first = 0; first < tensor.Rows; first += rowsPerChunk)
            {
                var rows = Math.Min(rowsPerChunk, tensor.Rows - first);
                var slot = _next;
                _next = (_next + 1) % staging.Length;
                if (_inFlight[slot])
                {
                    copied[slot].Synchronize(); // the copy out of this staging buffer has finished
                }

                Convert(tensor, first, rows, runner.ElementType, (ushort*)staging[slot].Pointer);
                buffer.CopyFromHost((void*)staging[slot].Pointer, rows * rowBytes, runner._stream, first * rowBytes);
                copied[slot].Record(runner._stream);
                _inFlight[slot] = true;
            }

            UploadedBytes += buffer.SizeBytes;
            return buffer;
        }

        /// <summary>Converts rows in parallel slices (a 1B model is about a billion elements).</summary>
        private static void Convert(WeightTensor tensor, int firstRow, int rows, GpuElementType target, ushort* destination)
        {
            var slices = Math.Min(rows, Environment.ProcessorCount);
            var cols = tensor.Cols;
            Parallel.For(0, slices, s =>
            {
                var begin = (int)((long)rows * s / slices);
                var end = (int)((long)rows * (s + 1) / slices);
                var output = new Span<ushort>(destination + ((long)begin * cols), (end - begin) * cols);
                HostWeightConverter.ConvertRows(tensor, firstRow + begin, end - begin, target, output);
            });
        }
    }

    private static void CheckShapes(ModelConfig c, LlamaWeights w)
    {
        if (w.Layers.Count != c.NumLayers)
        {
            throw new ArgumentException($"model has {w.Layers.Count} layers of weights but its config says {c.NumLayers}", nameof(w));
        }

        if (c.HeadDim * c.NumHeads != c.Dim || c.NumHeads % c.NumKvHeads != 0 || c.HeadDim % 2 != 0
            || c.HeadDim > Kernels.PagedAttentionPlan.MaxHeadDim)
        {
            throw new ArgumentException(
                $"dim {c.Dim}, heads {c.NumHeads}, kv heads {c.NumKvHeads}: the CUDA kernels need even head widths of at most " +
                $"{Kernels.PagedAttentionPlan.MaxHeadDim} and kv heads that divide heads");
        }

        Check(w.TokenEmbedding, "token_embedding", c.VocabSize, c.Dim);
        Check(w.FinalNorm, "final_norm", 1, c.Dim);
        Check(w.Classifier, "classifier", c.VocabSize, c.Dim);
        for (var l = 0; l < c.NumLayers; l++)
        {
            var layer = w.Layers[l];
            Check(layer.AttentionNorm, $"layers[{l}].attention_norm", 1, c.Dim);
            Check(layer.Wq, $"layers[{l}].wq", c.Dim, c.Dim);
            Check(layer.Wk, $"layers[{l}].wk", c.KvDim, c.Dim);
            Check(layer.Wv, $"layers[{l}].wv", c.KvDim, c.Dim);
            Check(layer.Wo, $"layers[{l}].wo", c.Dim, c.Dim);
            Check(layer.FfnNorm, $"layers[{l}].ffn_norm", 1, c.Dim);
            Check(layer.W1, $"layers[{l}].w1", c.HiddenDim, c.Dim);
            Check(layer.W2, $"layers[{l}].w2", c.Dim, c.HiddenDim);
            Check(layer.W3, $"layers[{l}].w3", c.HiddenDim, c.Dim);
        }

        static void Check(in WeightTensor t, string name, int rows, int cols)
        {
            if (t.Rows != rows || t.Cols != cols || t.Data == null)
            {
                throw new ArgumentException($"{name}: expected ({rows}, {cols}) but the tensor is ({t.Rows}, {t.Cols})");
            }

            if (t.Type is not (TensorType.F32 or TensorType.F16 or TensorType.BF16 or TensorType.Q8_0))
            {
                throw new NotSupportedException($"{name}: the CUDA runner has no conversion for {t.Type}");
            }

            if (t.InterleavedInPlace)
            {
                throw new ArgumentException(
                    $"{name}: rewritten in place into the CPU backend's interleaved Q8_0 layout (CpuWeightLayout.TryRewriteInPlace); load the model again for the CUDA runner");
            }

            if (t.HalvesScaled)
            {
                throw new ArgumentException(
                    $"{name}: its F16 halves were scaled in place for the CPU backend (CpuWeightLayout.TryRewriteInPlace); load the model again for the CUDA runner");
            }
        }
    }
}
