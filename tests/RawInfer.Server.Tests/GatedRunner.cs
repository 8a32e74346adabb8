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
    private readonly object _gate = new();
    private long _passesLeft = long.MaxValue; // long.MaxValue: open

    public ModelConfig Config => inner.Config;

    public long KvBytesPerToken => inner.KvBytesPerToken;

    /// <summary>Holds every later forward pass until <see cref="Open"/>.</summary>
    public void Close() => Allow(0);

    /// <summary>Lets the held forward pass, and every later one, run.</summary>
    public void Open() => Allow(long.MaxValue);

    /// <summary>Lets exactly <paramref name="passes"/> more forward passes run, then holds the next.</summary>
    public void OpenFor(int passes) => Allow(passes);

    /// <summary>
    /// Lets forward passes through one at a time, <paramref name="interval"/> apart, until <paramref name="done"/>:
    /// the engine keeps stepping (a cancellation takes effect at a step) but cannot run far meanwhile.
    /// </summary>
    public async Task TrickleUntilAsync(Func<bool> done, CancellationToken cancellationToken, int interval = 20)
    {
        while (!done())
        {
            OpenFor(1);
            await Task.Delay(interval, cancellationToken);
        }
    }

    public void AllocateKvCache(int numBlocks, int blockSize) => inner.AllocateKvCache(numBlocks, blockSize);

    public void CopyBlock(int source, int destination) => inner.CopyBlock(source, destination);

    public void Execute(ForwardBatch batch, Span<float> logits)
    {
        lock (_gate)
        {
            while (_passesLeft == 0)
            {
                Monitor.Wait(_gate);
            }

            if (_passesLeft != long.MaxValue)
            {
                _passesLeft--;
            }
        }

        inner.Execute(batch, logits);
    }

    public void Dispose()
    {
        Open(); // never leave the engine thread parked
        inner.Dispose();
    }

    private void Allow(long passes)
    {
        lock (_gate)
        {
            _passesLeft = passes;
            Monitor.PulseAll(_gate);
        }
    }
}
