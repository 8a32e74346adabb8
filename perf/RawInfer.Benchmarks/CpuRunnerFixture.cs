using RawInfer.Cpu;
using RawInfer.Cpu.Runner;
using RawInfer.Engine.Runner;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;

namespace RawInfer.Benchmarks;

/// <summary>
/// A synthetic 110M checkpoint (dim 768, hidden 2048, 12 layers, 12 heads, vocab 32000, F32), or a model file
/// given, behind a <see cref="CpuModelRunner"/>, with a real <see cref="BlockManager"/> building the batches the
/// way the engine does.
/// </summary>
internal sealed class CpuRunnerFixture : IDisposable
{
    public const int BlockSize = 16;

    private readonly string? _syntheticPath;
    private readonly LoadedModel _model;

    /// <param name="modelPath">A GGUF or llama2.c model to load; null writes (and deletes) the synthetic one.</param>
    /// <param name="inPlace">Rewrite the model's Q8_0 product matrices in place first (<see cref="CpuWeightLayout"/>); it must then be able to.</param>
    public CpuRunnerFixture(int maxTokens, int maxSequences, int numBlocks, int threads = 0, string? modelPath = null, bool inPlace = false)
    {
        if (modelPath is null)
        {
            modelPath = _syntheticPath = Path.Combine(Path.GetTempPath(), $"rawinfer-bench-runner-110m-{Environment.ProcessId}.bin");
            Llama2cCheckpointWriter.WriteSynthetic(modelPath, ModelShapes.Parse("110m"), seed: 1);
        }

        _model = modelPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)
            ? GgufLlamaLoader.Load(modelPath)
            : Llama2cCheckpoint.Load(modelPath);
        if (inPlace && !CpuWeightLayout.TryRewriteInPlace(_model, out var reason))
        {
            throw new InvalidOperationException($"{modelPath}: no rewrite in place: {reason}");
        }

        Runner = new CpuModelRunner(_model, threads);
        Runner.AllocateKvCache(numBlocks, BlockSize);
        Blocks = new BlockManager(numBlocks, BlockSize);
        Batch = new ForwardBatch(maxTokens, maxSequences, Config.MaxSeqLen / BlockSize);
        Logits = new float[maxSequences * Config.VocabSize];
    }

    public CpuModelRunner Runner { get; }

    public BlockManager Blocks { get; }

    public ForwardBatch Batch { get; }

    public float[] Logits { get; }

    public ModelConfig Config => _model.Config;

    /// <summary>
    /// A fixture whose batch is one decode step: <paramref name="sequences"/> sequences, each with
    /// <paramref name="context"/> tokens already cached (prefilled four sequences per step), one new token each.
    /// Every <see cref="Execute"/> rewrites the same slots, so the context stays the same.
    /// </summary>
    public static CpuRunnerFixture DecodeStep(int sequences, int context, int threads, string? modelPath = null, bool inPlace = false)
    {
        var blocksPerSequence = (context / BlockSize) + 1;
        var f = new CpuRunnerFixture(4 * context, sequences, sequences * blocksPerSequence, threads, modelPath, inPlace);
        for (var s = 0; s < sequences; s++)
        {
            var prompt = f.Tokens(context, seed: s);
            f.Blocks.Allocate(s, prompt);
            if (s % 4 == 0)
            {
                f.Batch.Clear();
            }

            f.AddRows(s, prompt, 0, wantLogits: true);
            if (s % 4 == 3 || s == sequences - 1)
            {
                f.Execute();
            }
        }

        f.Batch.Clear();
        for (var s = 0; s < sequences; s++)
        {
            var token = new[] { (s * 7919) % f.Config.VocabSize };
            f.Blocks.Append(s, token);
            f.AddRows(s, token, context, wantLogits: true);
        }

        return f;
    }

    /// <summary>
    /// A fixture whose batch is one prefill: a <paramref name="promptTokens"/>-token prompt as one chunk, logits for
    /// its last row. Every <see cref="Execute"/> rewrites the same slots.
    /// </summary>
    public static CpuRunnerFixture PrefillStep(int promptTokens, int threads, string? modelPath = null, bool inPlace = false)
    {
        var f = new CpuRunnerFixture(promptTokens, 1, (promptTokens / BlockSize) + 1, threads, modelPath, inPlace);
        var prompt = f.Tokens(promptTokens, seed: 1);
        f.Blocks.Allocate(0, prompt);
        f.Batch.Clear();
        f.AddRows(0, prompt, 0, wantLogits: true);
        return f;
    }

    /// <summary>Deterministic pseudo-random tokens for sequence <paramref name="seed"/> (distinct prompts: no prefix hits).</summary>
    public int[] Tokens(int count, int seed)
    {
        var random = new Random(seed);
        var tokens = new int[count];
        for (var i = 0; i < count; i++)
        {
            tokens[i] = random.Next(1, Config.VocabSize);
        }

        return tokens;
    }

    /// <summary>Appends sequence <paramref name="id"/>'s rows for positions start .. start + tokens.Length - 1 to the batch.</summary>
    public void AddRows(long id, ReadOnlySpan<int> tokens, int start, bool wantLogits)
    {
        var batch = Batch;
        var s = batch.NumSequences;
        var row = batch.NumTokens;
        for (var i = 0; i < tokens.Length; i++)
        {
            batch.TokenIds[row + i] = tokens[i];
            batch.Positions[row + i] = start + i;
        }

        Blocks.WriteSlotMapping(id, start, batch.SlotMapping.AsSpan(row, tokens.Length));
        Blocks.BlockTable(id).CopyTo(batch.BlockTable(s));
        batch.ContextLengths[s] = start + tokens.Length;
        batch.NumTokens = row + tokens.Length;
        batch.NumSequences = s + 1;
        batch.QueryStart[s + 1] = batch.NumTokens;
        if (wantLogits)
        {
            batch.LogitRows[batch.NumLogitRows++] = batch.NumTokens - 1;
        }
    }

    public void Execute() => Runner.Execute(Batch, Logits);

    public void Dispose()
    {
        Runner.Dispose();
        _model.Dispose();
        if (_syntheticPath is not null)
        {
            File.Delete(_syntheticPath);
        }
    }
}
