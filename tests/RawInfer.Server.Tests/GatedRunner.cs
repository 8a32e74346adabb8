using RawInfer.Engine.Runner;
using RawInfer.Models;

namespace RawInfer.Server.Tests;

/// <summary>
/// The harness's model runner behind a gate (open unless a test closes it). While it is closed every forward pass
/// waits on the engine thread, so nothing in flight can produce a token or finish: a test can line up several
/// requests in the server and know that none of them has ended meanwhile, whatever the machine's speed or load.
/// </summary>
internal sealed class GatedRunner(IModelRunner inner) : IModelRunner
{
    private readonly ManualResetEventSlim _open = new(initialState: true);

    public ModelConfig Config => inner.Config;

    public long KvBytesPerToken => inner.KvBytesPerToken;

    /// <summary>Holds every later forward pass until <see cref="Open"/>.</summary>
    public void Close() => _open.Reset();

    /// <summary>Lets the held forward pass, and every later one, run.</summary>
    public void Open() => _open.Set();

    public void AllocateKvCache(int numBlocks, int blockSize) => inner.AllocateKvCache(numBlocks, blockSize);

    public void CopyBlock(int source, int destination) => inner.CopyBlock(source, destination);

    public void Execute(ForwardBatch batch, Span<float> logits)
    {
        _open.Wait();
        inner.Execute(batch, logits);
    }

    public void Dispose()
    {
        _open.Set(); // never leave the engine thread parked
        inner.Dispose();
        _open.Dispose();
    }
}
