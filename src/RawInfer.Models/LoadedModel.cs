namespace RawInfer.Models;

/// <summary>
/// A model opened from a file: its shape, its weights (pointers into the file's memory mapping) and the
/// mapping's lifetime. Disposing unmaps the file; no <see cref="WeightTensor"/> may be used afterwards.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly IDisposable _mapping;

    public LoadedModel(string path, string format, ModelConfig config, LlamaWeights weights, IDisposable mapping)
    {
        Path = path;
        Format = format;
        Config = config;
        Weights = weights;
        _mapping = mapping;
    }

    /// <summary>File the model was read from.</summary>
    public string Path { get; }

    /// <summary>"llama2c" or "gguf".</summary>
    public string Format { get; }

    public ModelConfig Config { get; }

    public LlamaWeights Weights { get; }

    public void Dispose() => _mapping.Dispose();
}
