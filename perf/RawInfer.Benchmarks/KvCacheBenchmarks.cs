using BenchmarkDotNet.Attributes;
using RawInfer.KvCache;

namespace RawInfer.Benchmarks;

/// <summary>
/// The paged allocator's hot operations. One "block operation" is one block taken from or returned to the pool
/// (or, for the lookup benchmark, one block looked up), so ns/op here converts directly to block operations per
/// second. Each invocation runs 64 sequences of 512-token prompts (32 blocks) through the pool with B = 16.
/// </summary>
[MemoryDiagnoser]
public class KvCacheBenchmarks
{
    private const int BlockSize = 16;
    private const int PromptBlocks = 32;
    private const int Sequences = 64;
    private const int DistinctPrompts = 3 * Sequences;

    // Per sequence: 32 prompt blocks + 1 block for the appended token, each taken and later returned.
    private const int BlockOpsPerCycle = Sequences * 2 * (PromptBlocks + 1);

    private readonly int[] _token = new int[1];
    private int[][] _prompts = [];
    private int[] _warmPrompt = [];
    private int _nextPrompt;
    private BlockManager _cold = null!;
    private BlockManager _warm = null!;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        _prompts = new int[DistinctPrompts][];
        for (var p = 0; p < DistinctPrompts; p++)
        {
            _prompts[p] = new int[PromptBlocks * BlockSize];
            for (var i = 0; i < _prompts[p].Length; i++)
            {
                _prompts[p][i] = random.Next(32_000);
            }
        }

        // Prompts return every third invocation to a pool that holds two invocations' blocks, so by then their
        // blocks have been evicted: every allocation misses the prefix cache and evicts a cached block.
        _cold = new BlockManager(numBlocks: 2 * Sequences * (PromptBlocks + 1), BlockSize);
        for (var i = 0; i < 6; i++)
        {
            AllocateAppendFree_miss();
        }

        if (_cold.PrefixHitTokens != 0 || _cold.CachedFreeBlocks == 0)
        {
            throw new InvalidOperationException("the miss benchmark is hitting the prefix cache");
        }

        // One 513-token prompt, cached once: every allocation hits all 32 full blocks and takes 1 partial block.
        _warmPrompt = [.. _prompts[0], 1];
        _warm = new BlockManager(numBlocks: 4 * Sequences, BlockSize);
        _warm.Allocate(0, _warmPrompt);
        _warm.Free(0);
    }

    /// <summary>Allocate a fresh prompt, append one token (a new block), free: no prefix hits, evictions.</summary>
    [Benchmark(OperationsPerInvoke = BlockOpsPerCycle)]
    public int AllocateAppendFree_miss()
    {
        for (var s = 0; s < Sequences; s++)
        {
            _cold.Allocate(s, _prompts[_nextPrompt]);
            _nextPrompt = (_nextPrompt + 1) % DistinctPrompts;
        }

        for (var s = 0; s < Sequences; s++)
        {
            _token[0] = s;
            _cold.Append(s, _token);
        }

        for (var s = 0; s < Sequences; s++)
        {
            _cold.Free(s);
        }

        return _cold.FreeBlocks;
    }

    /// <summary>Allocate a prompt whose 32 full blocks are all cached (one fresh block), append one token, free.</summary>
    [Benchmark(OperationsPerInvoke = BlockOpsPerCycle)]
    public int AllocateAppendFree_prefixHit()
    {
        for (var s = 0; s < Sequences; s++)
        {
            _warm.Allocate(s, _warmPrompt);
        }

        for (var s = 0; s < Sequences; s++)
        {
            _token[0] = s;
            _warm.Append(s, _token);
        }

        for (var s = 0; s < Sequences; s++)
        {
            _warm.Free(s);
        }

        return _warm.FreeBlocks;
    }

    /// <summary>The scheduler's question for a cached prompt: hash, look up and compare 32 blocks.</summary>
    [Benchmark(OperationsPerInvoke = PromptBlocks)]
    public bool PrefixLookup() => _warm.CanAllocate(_warmPrompt);
}
