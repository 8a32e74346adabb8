using System.Runtime.InteropServices;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Cpu.Runner;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;
using RawInfer.Tests;

namespace RawInfer.Cpu.Tests.Runner;

/// <summary>
/// The batched runner against the single-sequence <see cref="CpuTransformer"/>: a prompt run as one chunk, as
/// several chunks across steps, and mixed with other sequences at prefill and decode. Within the runner a row's
/// logits must be bit-identical whatever the schedule or thread count; against the transformer (whose
/// matrix-vector kernel sums in another order) they agree to a stated tolerance.
/// </summary>
public sealed class CpuModelRunnerTests : IDisposable
{
    private const int BlockSize = 16;
    private readonly string _directory = Directory.CreateTempSubdirectory("rawinfer-runner-tests-").FullName;

    public static TheoryData<string, int> Cases() => new()
    {
        // model, threads (0 = 3 threads with every product and attention pass forced through the pool)
        { "stories260K", 1 },
        { "stories260K", 0 },
        { "gqa-unshared", 1 },
        { "gqa-unshared", 0 },
        { "gqa-head16", 1 },
        { "gqa-head16", 0 },
        { "mha-head16", 1 },
        { "mha-head16", 0 },
        { "q8_0-gqa", 1 },
        { "q8_0-gqa", 0 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Every_schedule_matches_the_single_sequence_path(string name, int threads)
    {
        using var model = LoadModel(name);
        var streams = Streams(model.Config.VocabSize);

        // one chunk, then decode
        var alone = Run(model, threads, h =>
        {
            h.Start(0, streams[0], 30);
            h.Step((0, 30));
            DecodeUntilDone(h, streams, 0);
        });

        // several chunks of awkward sizes across steps, then decode
        var chunked = Run(model, threads, h =>
        {
            h.Start(0, streams[0], 30);
            h.Step((0, 7));
            h.Step((0, 1));
            h.Step((0, 13));
            h.Step((0, 9));
            DecodeUntilDone(h, streams, 0);
        });

        // mixed with other sequences: prefill chunks next to decode rows in the same step
        var mixed = Run(model, threads, h => RunMixed(h, streams));

        var expected = new Dictionary<long, float[][]>();
        foreach (var (id, tokens) in streams)
        {
            expected[id] = SingleSequenceLogits(model, tokens);
        }

        AssertMatchesTransformer(alone, expected);
        AssertMatchesTransformer(chunked, expected);
        AssertMatchesTransformer(mixed, expected);
        AssertSameBits(alone, chunked, 0);
        AssertSameBits(alone, mixed, 0);
    }

    public static TheoryData<KvCacheType, string, int> SixteenBitCases()
    {
        var data = new TheoryData<KvCacheType, string, int>();
        foreach (var type in new[] { KvCacheType.F16, KvCacheType.BF16 })
        {
            foreach (var row in Cases())
            {
                // not the Q8_0 model: quantizing each layer's input per block turns the cache's rounding into whole
                // quantization steps here and there (2-2.5% of the largest logit measured), beyond this test's bound
                if (row.Data.Item1 != "q8_0-gqa")
                {
                    data.Add(type, row.Data.Item1, row.Data.Item2);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SixteenBitCases))]
    public void A_16_bit_cache_gives_every_schedule_the_same_bits_close_to_the_float_cache(KvCacheType type, string name, int threads)
    {
        using var model = LoadModel(name);
        var streams = Streams(model.Config.VocabSize);
        var alone = Run(model, threads, h =>
        {
            h.Start(0, streams[0], 30);
            h.Step((0, 30));
            DecodeUntilDone(h, streams, 0);
        }, type);
        var chunked = Run(model, threads, h =>
        {
            h.Start(0, streams[0], 30);
            h.Step((0, 7));
            h.Step((0, 1));
            h.Step((0, 13));
            h.Step((0, 9));
            DecodeUntilDone(h, streams, 0);
        }, type);
        var mixed = Run(model, threads, h => RunMixed(h, streams), type);
        var otherThreads = Run(model, threads == 1 ? 0 : 1, h => RunMixed(h, streams), type);
        AssertSameBits(alone, chunked, 0);
        AssertSameBits(alone, mixed, 0);
        foreach (var id in streams.Keys)
        {
            AssertSameBits(mixed, otherThreads, id);
        }

        // against the float32 cache: K and V rounded to half (relative error ≤ 2^-11) or bfloat16 (≤ 2^-8) move the
        // logits by a small fraction of the row's largest; measured 0.7e-3 to 1.1e-3 of it with halves and
        // 4.4e-3 to 1.3e-2 with bfloat16 on these models, bounds 5e-3 and 2e-2
        var floatCache = Run(model, threads, h => RunMixed(h, streams));
        var worst = 0f;
        foreach (var ((id, position), logits) in mixed)
        {
            var reference = floatCache[(id, position)];
            var scale = Math.Max(1f, reference.Max(Math.Abs));
            for (var i = 0; i < reference.Length; i++)
            {
                worst = Math.Max(worst, Math.Abs(logits[i] - reference[i]) / scale);
            }
        }

        Assert.True(worst <= (type == KvCacheType.F16 ? 5e-3f : 2e-2f), $"largest logit change {worst:R} of the row's largest logit");
        Assert.True(worst > 0f, "the half cache rounded nothing: it is not in use");
        TestContext.Current.TestOutputHelper?.WriteLine($"{type} {name}: largest logit change {worst:R} of the row's largest logit");
    }

    [Fact]
    public void Thread_count_never_changes_a_bit()
    {
        using var model = LoadModel("gqa-unshared");
        var streams = Streams(model.Config.VocabSize);
        var one = Run(model, 1, h => RunMixed(h, streams));
        var three = Run(model, 0, h => RunMixed(h, streams));
        foreach (var id in streams.Keys)
        {
            AssertSameBits(one, three, id);
        }
    }

    [Theory]
    [InlineData("stories260K")]
    [InlineData("gqa-unshared")]
    [InlineData("gqa-head16")]
    public void Prefix_hits_and_forks_read_shared_blocks_correctly(string name)
    {
        using var model = LoadModel(name);
        var logits = RunPrefixAndFork(model, KvCacheType.F32, out var streams);
        AssertMatchesTransformer(logits, streams.ToDictionary(s => s.Key, s => SingleSequenceLogits(model, s.Value)));
    }

    [Theory]
    [InlineData(KvCacheType.F16, "stories260K")]
    [InlineData(KvCacheType.F16, "gqa-head16")]
    [InlineData(KvCacheType.BF16, "gqa-head16")]
    public void On_a_16_bit_cache_prefix_hits_and_forks_give_the_bits_of_computing_each_sequence_alone(KvCacheType type, string name)
    {
        using var model = LoadModel(name);
        var logits = RunPrefixAndFork(model, type, out var streams);
        foreach (var (id, tokens) in streams)
        {
            var alone = Run(model, 1, h =>
            {
                h.Start(id, tokens, tokens.Length);
                h.Step((id, tokens.Length));
            }, type);
            foreach (var ((sequence, position), row) in logits)
            {
                if (sequence == id)
                {
                    Assert.True(row.AsSpan().SequenceEqual(alone[(id, position)]), $"sequence {id} position {position}");
                }
            }
        }
    }

    /// <summary>A fork mid-block and a prefix-cache hit: every row's logits, and each sequence's tokens in <paramref name="streams"/>.</summary>
    private static Dictionary<(long Id, int Position), float[]> RunPrefixAndFork(
        LoadedModel model, KvCacheType kvCacheType, out Dictionary<long, int[]> streams)
    {
        var vocab = model.Config.VocabSize;
        var parent = RandomTokens(vocab, 45, seed: 21);
        var sharer = parent[..(2 * BlockSize)].Concat(RandomTokens(vocab, 10, seed: 22)).ToArray();
        var child = parent[..20].Concat(RandomTokens(vocab, 8, seed: 23)).ToArray();

        var logits = Run(model, 1, h =>
        {
            h.Start(0, parent, 20);
            h.Step((0, 20));

            // fork mid-block: the first append of each side copies the shared, partly filled tail block
            h.Fork(0, 2, child);
            for (var i = 0; i < 8; i++)
            {
                h.Step((0, 1), (2, 1));
            }

            h.Step((0, parent.Length - h.Computed(0)));

            // a later prompt sharing two full blocks is served from the prefix cache and computes only the rest
            Assert.Equal(2 * BlockSize, h.Start(1, sharer, sharer.Length));
            h.Step((1, sharer.Length - (2 * BlockSize)));
        }, kvCacheType);

        Assert.Equal(parent.Length + child.Length - 20 + sharer.Length - (2 * BlockSize), logits.Count);
        streams = new Dictionary<long, int[]> { [0] = parent, [1] = sharer, [2] = child };
        return logits;
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    internal LoadedModel LoadModel(string name)
    {
        if (name == "stories260K")
        {
            return Llama2cCheckpoint.Load(TestPaths.Model("stories260K.bin"));
        }

        if (name is "q8_0-edges" or "q8_0-shared" or "f16-edges" or "f16-shared")
        {
            // Q8_0 or F16 GGUF whose w1 and w3 have 100 rows (twelve groups or tiles of eight and four rows past them)
            // and w2 100 columns (Q8_0: not whole blocks, so kept in F16; F16: six 16-column chunks and four left over)
            var checkpoint = Path.Combine(_directory, $"{name}.bin");
            var gguf = Path.Combine(_directory, $"{name}.gguf");
            if (!File.Exists(gguf))
            {
                Llama2cCheckpointWriter.WriteSynthetic(checkpoint, new ModelConfig(64, 100, 2, 4, 2, 512, 96, SharedClassifier: name.EndsWith("-shared", StringComparison.Ordinal)), seed: 6);
                Llama2cToGguf.Convert(checkpoint, TestPaths.Model("tok512.bin"), gguf, name.StartsWith("f16", StringComparison.Ordinal) ? TensorType.F16 : TensorType.Q8_0);
            }

            return GgufLlamaLoader.Load(gguf);
        }

        if (name == "q8_0-gqa")
        {
            // GQA in Q8_0 GGUF, every width a multiple of 32, so each product takes the integer kernel (GemmQ8_0):
            // one to three rows of a step unpacked, more in packed tiles, the same bits either way
            var checkpoint = Path.Combine(_directory, "q8_0-gqa.bin");
            var gguf = Path.Combine(_directory, "q8_0-gqa.gguf");
            if (!File.Exists(gguf))
            {
                Llama2cCheckpointWriter.WriteSynthetic(checkpoint, new ModelConfig(64, 96, 2, 4, 2, 512, 96, SharedClassifier: false), seed: 5);
                Llama2cToGguf.Convert(checkpoint, TestPaths.Model("tok512.bin"), gguf, TensorType.Q8_0);
            }

            return GgufLlamaLoader.Load(gguf);
        }

        var config = name switch
        {
            // 6 query heads over 2 KV heads (3 per group), head size 8, odd hidden width, separate classifier
            "gqa-unshared" => new ModelConfig(48, 37, 2, 6, 2, 67, 96, SharedClassifier: false),
            // head size 16: attention takes the 512-bit paged kernel (where the machine has it)
            "gqa-head16" => new ModelConfig(64, 96, 2, 4, 2, 67, 96, SharedClassifier: false),
            // five KV heads of one query head each, size 16: decode rows take two heads at a time, then one
            "mha-head16" => new ModelConfig(80, 96, 2, 5, 5, 67, 96, SharedClassifier: false),
            _ => throw new ArgumentException($"no test model {name}", nameof(name)),
        };
        var path = Path.Combine(_directory, $"{name}.bin");
        if (!File.Exists(path))
        {
            Llama2cCheckpointWriter.WriteSynthetic(path, config, seed: 5);
        }

        return Llama2cCheckpoint.Load(path);
    }

    /// <summary>
    /// A Q8_0 model rewritten in place into the CPU layout (<see cref="CpuWeightLayout.TryRewriteInPlace"/>) gives
    /// every schedule the bits of the same file in its own layout: decode rows and prefill chunks up to 48 rows through
    /// the group kernel, a 50-row chunk through packed tiles made from the groups, rows past a matrix's last group
    /// in the file's layout; and the runner makes no copy of the rewritten matrices, where the other makes one.
    /// </summary>
    [Theory]
    [InlineData("q8_0-edges", 1)]
    [InlineData("q8_0-edges", 0)]
    [InlineData("q8_0-shared", 1)] // the classifier, rewritten, is the embedding table too
    public void Q8_0_rewritten_in_place_gives_the_bits_of_the_files_layout(string name, int threads)
    {
        Assert.SkipUnless(GemmQ8_0.InterleavedSupported, "no AVX-VNNI here: no rewrite in place");
        using var file = LoadModel(name);
        using var rewritten = LoadModel(name);
        Assert.True(CpuWeightLayout.TryRewriteInPlace(rewritten, out var reason), reason);
        Assert.True(rewritten.WeightsRewritten);
        var layer = rewritten.Weights.Layers[0];
        Assert.True(layer.Wq.InterleavedInPlace && layer.W1.InterleavedInPlace && rewritten.Weights.Classifier.InterleavedInPlace);
        Assert.Equal(100, layer.W1.Rows);
        Assert.Equal(name == "q8_0-shared", rewritten.Weights.TokenEmbedding.InterleavedInPlace);
        Assert.NotEqual(TensorType.Q8_0, layer.W2.Type); // 100 columns: not whole blocks, kept in F16 by the converter

        var streams = Streams(file.Config.VocabSize);
        void Schedule(RunnerHarness h) => EdgeSchedule(h, streams); // 50 rows: packed tiles; 30: the group kernel

        var expected = Run(file, threads, Schedule, copyBytes: bytes => Assert.True(bytes > 0));
        var actual = Run(rewritten, threads, Schedule, copyBytes: bytes => Assert.Equal(0, bytes));
        using (var runner = new CpuModelRunner(rewritten, 1))
        using (var other = new CpuModelRunner(file, 1))
        {
            Assert.Equal(0, runner.DecodedScaleTableCount); // the groups hold their scales: no table beside them
            Assert.True(other.DecodedScaleTableCount > 0);
        }
        foreach (var id in new long[] { 0, 1, 2, 3 })
        {
            AssertSameBits(expected, actual, id);
        }
    }

    /// <summary>
    /// An F16 model whose product halves were scaled in place (<see cref="CpuWeightLayout.TryRewriteInPlace"/>)
    /// gives every schedule the bits of the same file's halves: decode rows through the in-register kernel against
    /// inputs scaled by 2^102, prefill chunks through the widened tiles, edge rows and leftover columns.
    /// </summary>
    [Theory]
    [InlineData("f16-edges", 1)]
    [InlineData("f16-edges", 0)]
    [InlineData("f16-shared", 1)] // the classifier is the embedding table: left as it is
    public void F16_halves_scaled_in_place_give_the_bits_of_the_files_halves(string name, int threads)
    {
        Assert.SkipUnless(WidenInRegisters.Supports(TensorType.F16, 64), "no AVX-512 F16 kernels here: no halves scaled");
        using var file = LoadModel(name);
        using var scaled = LoadModel(name);
        Assert.True(CpuWeightLayout.TryRewriteInPlace(scaled, out var reason), reason);
        var layer = scaled.Weights.Layers[0];
        Assert.True(layer.Wq.HalvesScaled && layer.W1.HalvesScaled && layer.W2.HalvesScaled);
        Assert.Equal(name == "f16-edges", scaled.Weights.Classifier.HalvesScaled);
        Assert.Equal(100, layer.W2.Cols);

        var streams = Streams(file.Config.VocabSize);
        void Schedule(RunnerHarness h) => EdgeSchedule(h, streams); // 50 and 30 rows: widened tiles; decode rows: the in-register kernel

        var expected = Run(file, threads, Schedule, copyBytes: _ => { });
        var actual = Run(scaled, threads, Schedule, copyBytes: _ => { });
        foreach (var id in new long[] { 0, 1, 2, 3 })
        {
            AssertSameBits(expected, actual, id);
        }
    }

    /// <summary>
    /// The single-sequence <see cref="CpuTransformer"/> (the path of <c>rawinfer generate</c>) on the scaled model:
    /// every position's logits the bits of the file's halves, so none of its F16 products reads the scaled halves as
    /// the file's (or refuses them).
    /// </summary>
    [Theory]
    [InlineData("f16-edges")]
    [InlineData("f16-shared")]
    public void F16_halves_scaled_in_place_give_the_single_sequence_transformer_the_files_bits(string name)
    {
        Assert.SkipUnless(WidenInRegisters.Supports(TensorType.F16, 64), "no AVX-512 F16 kernels here: no halves scaled");
        using var file = LoadModel(name);
        using var scaled = LoadModel(name);
        Assert.True(CpuWeightLayout.TryRewriteInPlace(scaled, out var reason), reason);
        Assert.True(scaled.Weights.Layers[0].W1.HalvesScaled);
        var tokens = Streams(file.Config.VocabSize)[1];
        var expected = SingleSequenceLogits(file, tokens);
        var actual = SingleSequenceLogits(scaled, tokens);
        for (var p = 0; p < tokens.Length; p++)
        {
            Assert.True(
                MemoryMarshal.AsBytes(expected[p].AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(actual[p].AsSpan())),
                $"position {p}: logits differ in bits");
        }
    }

    /// <summary>
    /// A 50-row prefill chunk, then 30 rows of two sequences, a mixed step, and one to three decode rows a step until
    /// every stream is done: the rewritten tests' schedule.
    /// </summary>
    private static void EdgeSchedule(RunnerHarness h, Dictionary<long, int[]> streams)
    {
        h.Start(0, streams[0], 50);
        h.Step((0, 50));
        h.Start(1, streams[1], 25);
        h.Start(2, streams[2], 5);
        h.Step((1, 25), (2, 5));
        h.Start(3, streams[3], 20);
        h.Step((1, 1), (2, 1), (3, 20));
        while (new long[] { 1, 2, 3 }.Where(id => h.Computed(id) < streams[id].Length).Select(id => (id, 1)).ToArray() is { Length: > 0 } work)
        {
            h.Step(work); // one to three decode rows
        }
    }

    /// <summary>Four teacher-forced token streams; sequence 0 is the one every schedule runs.</summary>
    private static Dictionary<long, int[]> Streams(int vocab) => new()
    {
        [0] = RandomTokens(vocab, 50, seed: 1),
        [1] = RandomTokens(vocab, 40, seed: 2),
        [2] = RandomTokens(vocab, 35, seed: 3),
        [3] = RandomTokens(vocab, 24, seed: 4),
    };

    private static void RunMixed(RunnerHarness h, Dictionary<long, int[]> streams)
    {
        h.Start(1, streams[1], 25);
        h.Start(0, streams[0], 30);
        h.Step((1, 25), (0, 7));
        h.Start(2, streams[2], 5);
        h.Step((2, 5), (0, 10), (1, 1));
        h.Start(3, streams[3], 20);
        h.Step((0, 13), (1, 1), (2, 1), (3, 20));
        h.Step((3, 1), (2, 2), (0, 1), (1, 1)); // a two-token "decode" too (speculative-style append)
        while (true)
        {
            var work = new List<(long, int)>();
            foreach (var id in new long[] { 2, 0, 3, 1 })
            {
                if (h.Computed(id) < streams[id].Length)
                {
                    work.Add((id, 1));
                }
            }

            if (work.Count == 0)
            {
                return;
            }

            h.Step([.. work]);
        }
    }

    private static void DecodeUntilDone(RunnerHarness h, Dictionary<long, int[]> streams, long id)
    {
        while (h.Computed(id) < streams[id].Length)
        {
            h.Step((id, 1));
        }
    }

    private static Dictionary<(long Id, int Position), float[]> Run(
        LoadedModel model, int threads, Action<RunnerHarness> schedule, KvCacheType kvCacheType = KvCacheType.F32, Action<long>? copyBytes = null)
    {
        using var runner = new CpuModelRunner(model, threads == 0 ? 3 : threads, kvCacheType);
        copyBytes?.Invoke(runner.InterleavedCopyBytes);
        if (threads == 0)
        {
            runner.ParallelThreshold = 0;
        }

        var harness = new RunnerHarness(runner, numBlocks: 48, BlockSize, maxTokens: 64);
        schedule(harness);
        harness.Blocks.CheckInvariants();
        return harness.Logits;
    }

    internal static float[][] SingleSequenceLogits(LoadedModel model, int[] tokens)
    {
        using var transformer = new CpuTransformer(model, 1);
        var kv = transformer.CreateKvCache(tokens.Length);
        var logits = new float[tokens.Length][];
        for (var p = 0; p < tokens.Length; p++)
        {
            logits[p] = transformer.Forward(tokens[p], p, kv).ToArray();
        }

        return logits;
    }

    private static void AssertMatchesTransformer(
        Dictionary<(long Id, int Position), float[]> actual, Dictionary<long, float[][]> expected)
    {
        foreach (var ((id, position), logits) in actual)
        {
            var reference = expected[id][position];
            var scale = 1f;
            foreach (var value in reference)
            {
                scale = Math.Max(scale, Math.Abs(value));
            }

            // Same kernels except, where the engine's one-row kernel does not run, the matrix products' summation
            // order (without AVX-512, CpuTransformer's F32/F16 matrix-vector kernels split each dot product over
            // several accumulators): a few ulps per product, grown through the layers. (Q8_0 takes the engine's
            // kernel wherever AVX2 runs, MatVecQ8_0.ViaGemm: a path that only summed in another order would
            // quantize an activation an ulp from a rounding boundary a whole step apart now and then.) Bound: 1e-5
            // relative to the row's largest logit.
            var tolerance = 1e-5f * scale;
            for (var i = 0; i < reference.Length; i++)
            {
                Assert.True(
                    Math.Abs(logits[i] - reference[i]) <= tolerance,
                    $"sequence {id}, position {position}, logit {i}: transformer {reference[i]:R}, runner {logits[i]:R}, bound {tolerance:R}");
            }
        }
    }

    private static void AssertSameBits(
        Dictionary<(long Id, int Position), float[]> a, Dictionary<(long Id, int Position), float[]> b, long id)
    {
        var positions = 0;
        foreach (var ((sequence, position), logits) in a)
        {
            if (sequence == id)
            {
                Assert.True(b.TryGetValue((id, position), out var other), $"sequence {id} position {position} missing");
                Assert.True(
                    MemoryMarshal.AsBytes(logits.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(other.AsSpan())),
                    $"sequence {id}, position {position}: logits differ in bits");
                positions++;
            }
        }

        Assert.True(positions > 0);
    }

    internal static int[] RandomTokens(int vocab, int count, int seed)
    {
        var random = new Random(seed);
        var tokens = new int[count];
        for (var i = 0; i < count; i++)
        {
            tokens[i] = random.Next(vocab);
        }

        return tokens;
    }
}
