using RawInfer.Models;

namespace RawInfer.Engine.Runner;

/// <summary>
/// A backend's forward pass over a whole batch on the paged KV cache. The engine schedules and samples; the
/// runner owns the weights and the KV storage (CPU memory or device memory) and knows nothing of requests.
/// Called from the engine's step thread only.
/// </summary>
public interface IModelRunner : IDisposable
{
    /// <summary>Shape of the model the runner executes.</summary>
    ModelConfig Config { get; }

    /// <summary>Bytes one token's K and V take in this runner's KV storage (all layers).</summary>
    long KvBytesPerToken { get; }

    /// <summary>
    /// Allocates KV storage of <paramref name="numBlocks"/> blocks of <paramref name="blockSize"/> slots,
    /// addressed by the slot mappings and block tables of later batches. Called once before the first step.
    /// </summary>
    void AllocateKvCache(int numBlocks, int blockSize);

    /// <summary>
    /// Commits the KV storage's memory now, before the first step, so that no step pays for mapping it in later
    /// (CPU memory is otherwise faulted in page by page as blocks are first written). Called once, after
    /// <see cref="AllocateKvCache"/>, on the engine thread when <c>EngineOptions.PrefaultKvCache</c> is set. Device
    /// memory is committed when it is allocated, so by default this does nothing.
    /// </summary>
    void PrefaultKvCache()
    {
    }

    /// <summary>Copies every layer's K/V of block <paramref name="source"/> into <paramref name="destination"/> (copy-on-write).</summary>
    void CopyBlock(int source, int destination);

    /// <summary>
    /// Runs the model on the batch: writes each row's K/V to its slot, attends over each sequence's context
    /// through its block table (causal), and writes the logits of <see cref="ForwardBatch.LogitRows"/> in order.
    /// </summary>
    /// <param name="batch">The step's rows.</param>
    /// <param name="logits">(NumLogitRows, vocab) output.</param>
    void Execute(ForwardBatch batch, Span<float> logits);
}
