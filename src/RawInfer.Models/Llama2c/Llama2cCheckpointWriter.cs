using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace RawInfer.Models.Llama2c;

/// <summary>
/// Writes llama2.c checkpoints with random weights, for benchmarks and tests of shapes no real file has.
/// </summary>
public static class Llama2cCheckpointWriter
{
    private const int ChunkFloats = 1 << 16; // 256 KiB per write: the model is streamed, never held in memory

    /// <summary>
    /// Writes a checkpoint of shape <paramref name="config"/> with deterministic pseudo-random weights drawn from
    /// <paramref name="seed"/>. Matrices are uniform with variance 1/cols (activations keep their scale through
    /// the layers), norm weights are near 1, the legacy RoPE tables are zero. An unshared classifier is written
    /// when <see cref="ModelConfig.SharedClassifier"/> is false (the header's vocab_size is then negative).
    /// </summary>
    /// <exception cref="ArgumentException">The config breaks a checkpoint header limit.</exception>
    public static void WriteSynthetic(string path, ModelConfig config, int seed)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(config);
        if (Llama2cLayout.CheckLimits(config) is { } problem)
        {
            throw new ArgumentException($"cannot write a llama2.c checkpoint: {problem.Field} {problem.Reason}", nameof(config));
        }

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 20);
        Span<byte> header = stackalloc byte[Llama2cLayout.HeaderBytes];
        int[] fields =
        {
            config.Dim, config.HiddenDim, config.NumLayers, config.NumHeads, config.NumKvHeads,
            config.SharedClassifier ? config.VocabSize : -config.VocabSize, config.MaxSeqLen,
        };
        for (var i = 0; i < fields.Length; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(header[(i * sizeof(int))..], fields[i]);
        }

        stream.Write(header);

        var random = new SplitMix64((ulong)(uint)seed);
        var chunk = new float[ChunkFloats];
        for (var i = 0; i < (int)Llama2cTensor.Count; i++)
        {
            var tensor = (Llama2cTensor)i;
            if (tensor == Llama2cTensor.Classifier && config.SharedClassifier)
            {
                continue;
            }

            var (rows, cols) = Llama2cTensors.Shape(tensor, config);
            var count = checked((long)rows * cols * (Llama2cTensors.IsPerLayer(tensor) ? config.NumLayers : 1));
            var (center, halfWidth) = tensor switch
            {
                Llama2cTensor.AttentionNorm or Llama2cTensor.FfnNorm or Llama2cTensor.FinalNorm => (1f, 0.1f),
                Llama2cTensor.FreqCisReal or Llama2cTensor.FreqCisImag => (0f, 0f),
                Llama2cTensor.TokenEmbedding => (0f, 1f),
                _ => (0f, MathF.Sqrt(3f / cols)), // uniform(-a, a) has variance a²/3
            };
            WriteUniform(stream, chunk, count, center, halfWidth, ref random);
        }
    }

    private static void WriteUniform(
        FileStream stream, float[] chunk, long count, float center, float halfWidth, ref SplitMix64 random)
    {
        for (long written = 0; written < count; written += chunk.Length)
        {
            var n = (int)Math.Min(chunk.Length, count - written);
            for (var j = 0; j < n; j++)
            {
                chunk[j] = center + (halfWidth * ((2f * random.NextUnitFloat()) - 1f));
            }

            var bytes = MemoryMarshal.AsBytes(chunk.AsSpan(0, n));
            if (!BitConverter.IsLittleEndian)
            {
                throw new PlatformNotSupportedException("llama2.c checkpoints are little-endian");
            }

            stream.Write(bytes);
        }
    }

    /// <summary>Small, fast, seedable generator; the weights only need to be deterministic, not strong.</summary>
    private struct SplitMix64
    {
        private ulong _state;

        public SplitMix64(ulong seed) => _state = seed;

        /// <summary>Uniform in [0, 1) with 24 random bits.</summary>
        public float NextUnitFloat()
        {
            var z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (z >> 40) * (1f / (1 << 24));
        }
    }
}
