using RawInfer.Models;
using RawInfer.Models.Llama2c;

namespace RawInfer.Cpu.Tests;

/// <summary>The CPU forward pass against the naive reference on synthetic checkpoints of awkward shapes.</summary>
public sealed class ForwardTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("rawinfer-cpu-tests-").FullName;

    public static TheoryData<string, int, bool> Cases() => new()
    {
        // name, threads, force every step through the worker pool
        { "gqa-unshared", 1, false },
        { "gqa-unshared", 3, true },
        { "mha-shared", 1, false },
        { "mha-shared", 2, true },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Logits_match_the_naive_reference(string name, int threads, bool forcePool)
    {
        var config = name == "gqa-unshared"
            // 6 query heads over 2 KV heads (3 per group), head size 8, odd hidden width, separate classifier.
            ? new ModelConfig(48, 37, 2, 6, 2, 67, 16, SharedClassifier: false)
            : new ModelConfig(32, 64, 3, 4, 4, 50, 12, SharedClassifier: true);
        var path = Path.Combine(_directory, $"{name}.bin");
        Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 7);

        using var model = Llama2cCheckpoint.Load(path);
        using var transformer = new CpuTransformer(model, threads);
        if (forcePool)
        {
            transformer.ParallelThreshold = 0;
        }

        var kv = transformer.CreateKvCache(config.MaxSeqLen);
        var reference = new ReferenceTransformer(model);
        var random = new Random(11);
        for (var position = 0; position < config.MaxSeqLen; position++)
        {
            var token = random.Next(config.VocabSize);
            var expected = reference.Forward(token, position);
            var actual = transformer.Forward(token, position, kv);
            Assert.Equal(config.VocabSize, actual.Length);
            for (var i = 0; i < expected.Length; i++)
            {
                // Float kernels vs double loops through a few layers: agree to ~1e-5 relative; 1e-4 is the bound.
                var tolerance = 1e-4f * Math.Max(1f, Math.Abs(expected[i]));
                Assert.True(
                    Math.Abs(actual[i] - expected[i]) <= tolerance,
                    $"position {position}, logit {i}: expected {expected[i]}, got {actual[i]}");
            }
        }
    }

    /// <summary>
    /// The contiguous cache takes the grouped paged-attention path, any other cache the per-position one: the
    /// logits must be the same bits (head size 16 reaches the 512-bit kernel where the machine has one).
    /// </summary>
    [Theory]
    [InlineData(1, false)]
    [InlineData(2, true)]
    public void Grouped_attention_on_the_contiguous_cache_gives_the_bits_of_the_per_position_path(int threads, bool forcePool)
    {
        // 8 query heads over 2 KV heads, head size 16
        var config = new ModelConfig(128, 96, 2, 8, 2, 61, 40, SharedClassifier: false);
        var path = Path.Combine(_directory, "grouped.bin");
        Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 5);
        using var model = Llama2cCheckpoint.Load(path);
        using var transformer = new CpuTransformer(model, threads);
        if (forcePool)
        {
            transformer.ParallelThreshold = 0;
        }

        var contiguous = transformer.CreateKvCache(config.MaxSeqLen);
        var forwarded = new ForwardingKvCache(transformer.CreateKvCache(config.MaxSeqLen));
        var random = new Random(3);
        for (var position = 0; position < config.MaxSeqLen; position++)
        {
            var token = random.Next(config.VocabSize);
            var grouped = transformer.Forward(token, position, contiguous).ToArray();
            var perPosition = transformer.Forward(token, position, forwarded).ToArray();
            Assert.True(grouped.AsSpan().SequenceEqual(perPosition), $"position {position}: logits differ");
        }
    }

    /// <summary>A cache that is not a <see cref="KvCache.ContiguousKvCache"/> to the transformer.</summary>
    private sealed class ForwardingKvCache(KvCache.ISequenceKvCache inner) : KvCache.ISequenceKvCache
    {
        public int CapacityTokens => inner.CapacityTokens;

        public Span<float> Key(int layer, int position) => inner.Key(layer, position);

        public Span<float> Value(int layer, int position) => inner.Value(layer, position);
    }

    [Fact]
    public void Forward_rejects_a_bad_token_or_position()
    {
        var config = new ModelConfig(16, 24, 1, 2, 1, 10, 8, SharedClassifier: true);
        var path = Path.Combine(_directory, "small.bin");
        Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 1);
        using var model = Llama2cCheckpoint.Load(path);
        using var transformer = new CpuTransformer(model, 1);
        var kv = transformer.CreateKvCache(4);

        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.Forward(10, 0, kv));
        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.Forward(-1, 0, kv));
        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.Forward(0, 4, kv));
        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.Forward(0, -1, kv));
        Assert.Throws<ArgumentOutOfRangeException>(() => transformer.CreateKvCache(9));
        Assert.Equal(10, transformer.Forward(0, 0, kv).Length);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);
}
