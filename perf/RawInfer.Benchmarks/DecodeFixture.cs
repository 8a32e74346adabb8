using RawInfer.Cpu;
using RawInfer.KvCache;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using RawInfer.Models.Llama2c;

namespace RawInfer.Benchmarks;

/// <summary>
/// Single-sequence decode through <see cref="CpuTransformer"/> (what <c>rawinfer generate</c> and the llama.cpp
/// comparison's decode test run): each <see cref="Execute"/> decodes <paramref name="tokens"/> positions after a
/// 16-token prompt, rewriting the same cache positions every time.
/// </summary>
internal sealed class DecodeFixture : IDisposable
{
    private const int Prompt = 16;

    private readonly LoadedModel _model;
    private readonly CpuTransformer _transformer;
    private readonly ContiguousKvCache _kv;
    private readonly int _tokens;

    /// <param name="modelPath">A GGUF or llama2.c model; null: the synthetic 110M F32 checkpoint, written to the temp folder.</param>
    public DecodeFixture(string? modelPath, int tokens, int threads)
    {
        string? synthetic = null;
        if (modelPath is null)
        {
            modelPath = synthetic = Path.Combine(Path.GetTempPath(), $"rawinfer-bench-decode-110m-{Environment.ProcessId}.bin");
            Llama2cCheckpointWriter.WriteSynthetic(modelPath, ModelShapes.Parse("110m"), seed: 1);
        }

        _model = modelPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) ? GgufLlamaLoader.Load(modelPath) : Llama2cCheckpoint.Load(modelPath);
        if (synthetic is not null)
        {
            File.Delete(synthetic);
        }

        _tokens = tokens;
        _transformer = new CpuTransformer(_model, threads);
        _kv = _transformer.CreateKvCache(Prompt + tokens);
        for (var p = 0; p < Prompt; p++)
        {
            _transformer.Forward(Token(p), p, _kv);
        }
    }

    public void Execute()
    {
        for (var t = 0; t < _tokens; t++)
        {
            _transformer.Forward(Token(Prompt + t), Prompt + t, _kv);
        }
    }

    public void Dispose()
    {
        _transformer.Dispose();
        _model.Dispose();
    }

    private int Token(int position) => 1 + ((position * 7919) % (_model.Config.VocabSize - 1));
}
