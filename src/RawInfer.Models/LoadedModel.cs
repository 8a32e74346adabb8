namespace RawInfer.Models;

/// <summary>
/// A model opened from a file: its shape, its weights (pointers into the file's memory mapping) and the
/// mapping's lifetime. Disposing unmaps the file; no <see cref="WeightTensor"/> may be used afterwards.
/// </summary>
public sealed class LoadedModel : IDisposable
{
    private readonly IDisposable _mapping;
    private readonly Lock _lock = new();
    private LlamaWeights _weights;
    private bool _handedOut;
    private bool _broken;

    public LoadedModel(string path, string format, ModelConfig config, LlamaWeights weights, IDisposable mapping)
    {
        Path = path;
        Format = format;
        Config = config;
        _weights = weights;
        _mapping = mapping;
    }

    /// <summary>File the model was read from.</summary>
    public string Path { get; }

    /// <summary>"llama2c" or "gguf".</summary>
    public string Format { get; }

    public ModelConfig Config { get; }

    /// <summary>The weights. Once handed out, they can no longer be rewritten in place (<see cref="TryRewriteWeights"/>).</summary>
    public LlamaWeights Weights
    {
        get
        {
            lock (_lock)
            {
                if (_broken)
                {
                    throw new InvalidOperationException($"{Path}: a rewrite of the weights in place failed part way; load the model again");
                }

                _handedOut = true;
                return _weights;
            }
        }
    }

    /// <summary>
    /// True when a backend rewrote some of the weights in place into its own layout (<see cref="TryRewriteWeights"/>):
    /// only that backend may run this model.
    /// </summary>
    public bool WeightsRewritten { get; private set; }

    /// <summary>The reason <see cref="TryRewriteWeights"/> gives when its rewrite found nothing to do.</summary>
    internal const string NothingToRewrite = "nothing to rewrite";

    /// <summary>
    /// Lets a backend rewrite the weights' bytes in place, into a layout of its own, before anyone has read them: only
    /// where the bytes are the process's own private copy of the file (not a read-only mapping) and the weights have
    /// not been handed out (<see cref="Weights"/>), whose readers would then meet bytes in a layout they do not know.
    /// <paramref name="rewrite"/> rewrites the bytes and returns the weights that describe them, or null, having
    /// written nothing, where it finds nothing to rewrite. False, with the reason, where the rewrite may not happen
    /// or found nothing to do.
    /// </summary>
    internal bool TryRewriteWeights(Func<LlamaWeights, LlamaWeights?> rewrite, out string? reason)
    {
        lock (_lock)
        {
            reason = WeightsRewritten ? "the weights were already rewritten"
                : _handedOut ? "the weights were already handed out to a reader of the file's layout"
                : !(_mapping is Gguf.GgufFile { IsPrivateCopy: true } || _mapping is Llama2c.MappedModelFile { IsCopied: true })
                    ? "the weights are a read-only mapping of the file (too large to copy, or RAWINFER_WEIGHTS=mmap), not the process's own copy"
                    : !SetWritable(true) ? "the copy of the weights could not be made writable (mprotect)"
                    : null;
            if (reason is not null)
            {
                return false;
            }

            try
            {
                if (rewrite(_weights) is not { } rewritten)
                {
                    reason = NothingToRewrite;
                    return false;
                }

                _weights = rewritten;
                WeightsRewritten = true;
                return true;
            }
            catch
            {
                _broken = true; // bytes rewritten part way: no reader may have them
                throw;
            }
            finally
            {
                _ = SetWritable(false); // read-only again, as the copy was made; failure leaves it writable
            }
        }
    }

    public void Dispose() => _mapping.Dispose();

    private bool SetWritable(bool writable) => _mapping switch
    {
        Gguf.GgufFile file => file.SetWritable(writable),
        Llama2c.MappedModelFile file => file.SetWritable(writable),
        _ => false,
    };
}
