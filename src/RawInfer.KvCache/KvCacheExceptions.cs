namespace RawInfer.KvCache;

/// <summary>
/// Misuse of the KV-cache allocator. Every operation validates before it changes anything, so after one of these
/// the allocator's state is exactly what it was before the call.
/// </summary>
public class KvCacheException : InvalidOperationException
{
    public KvCacheException()
    {
    }

    public KvCacheException(string message)
        : base(message)
    {
    }

    public KvCacheException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The sequence id was never allocated, or has already been freed.</summary>
public sealed class UnknownSequenceException(long sequenceId)
    : KvCacheException($"KV cache has no sequence {sequenceId}: it was never allocated or has already been freed")
{
    /// <summary>The id the caller passed.</summary>
    public long SequenceId { get; } = sequenceId;
}

/// <summary>Allocate or Fork was given an id that is already live.</summary>
public sealed class DuplicateSequenceException(long sequenceId)
    : KvCacheException($"KV cache already holds sequence {sequenceId}; free it before reusing the id")
{
    /// <summary>The id the caller passed.</summary>
    public long SequenceId { get; } = sequenceId;
}

/// <summary>A prompt needs more blocks than the whole pool has, so it can never be allocated.</summary>
public sealed class PromptTooLargeException(int promptTokens, int capacityTokens)
    : KvCacheException(
        $"Prompt of {promptTokens} tokens exceeds the whole KV cache ({capacityTokens} token slots); it can never be allocated")
{
    /// <summary>Tokens in the rejected prompt.</summary>
    public int PromptTokens { get; } = promptTokens;

    /// <summary>Token slots in the whole pool (blocks × block size).</summary>
    public int CapacityTokens { get; } = capacityTokens;
}

/// <summary>
/// Not enough free blocks right now. A scheduler asks <see cref="BlockManager.CanAllocate"/> or
/// <see cref="BlockManager.CanAppend(long, int)"/> first and preempts instead of hitting this.
/// </summary>
public sealed class OutOfBlocksException(string operation, int requiredBlocks, int freeBlocks)
    : KvCacheException($"KV cache {operation} needs {requiredBlocks} free blocks but only {freeBlocks} are free")
{
    /// <summary>Blocks the operation would take from the free pool.</summary>
    public int RequiredBlocks { get; } = requiredBlocks;

    /// <summary>Blocks free when the operation was refused.</summary>
    public int FreeBlocks { get; } = freeBlocks;
}

/// <summary>An internal invariant of the allocator is broken (a bug, never misuse). Found by CheckInvariants.</summary>
public sealed class KvCacheInvariantException(string message) : KvCacheException(message);
