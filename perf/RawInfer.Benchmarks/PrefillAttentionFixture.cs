using System.Runtime.InteropServices;
using RawInfer.Cpu.Kernels;
using RawInfer.Cpu.Runner;

namespace RawInfer.Benchmarks;

/// <summary>
/// The attention of one layer of a prefill alone, on one thread: <paramref name="promptTokens"/> rows of the 110M
/// shape (12 heads of 64, one query head per KV head) through <see cref="PrefillAttention"/> in runs of
/// <see cref="PrefillAttention.MaxRows"/> rows, as the runner's attention job cuts them, over a float32 cache of
/// random keys and values in 16-slot blocks. Isolates the kernel from the products around it, whose share of a
/// step (about 85%) drowns a change in attention in the VM's drift.
/// </summary>
internal sealed unsafe class PrefillAttentionFixture : IDisposable
{
    private const int Heads = 12;
    private const int HeadDim = 64;
    private const int Dim = Heads * HeadDim;
    private const int BlockSize = 16;

    private readonly int _tokens;
    private readonly float* _q;
    private readonly float* _output;
    private readonly float* _keys;
    private readonly float* _values;
    private readonly float* _scores;
    private readonly int _scoreStride;
    private readonly int[] _blockTable;

    public PrefillAttentionFixture(int promptTokens)
    {
        _tokens = promptTokens;
        _scoreStride = promptTokens;
        _blockTable = Enumerable.Range(0, (promptTokens + BlockSize - 1) / BlockSize).Reverse().ToArray();
        var slots = (long)_blockTable.Length * BlockSize;
        _q = RandomBuffers.Floats((long)promptTokens * Dim, seed: 1);
        _output = RandomBuffers.Floats((long)promptTokens * Dim, seed: 2);
        _keys = RandomBuffers.Floats(slots * Dim, seed: 3);
        _values = RandomBuffers.Floats(slots * Dim, seed: 4);
        _scores = RandomBuffers.Floats((long)PrefillAttention.MaxRows * _scoreStride, seed: 5);
    }

    public void Execute()
    {
        var keys = new KvLayer(_keys, Dim);
        var values = new KvLayer(_values, Dim);
        for (var head = 0; head < Heads; head++)
        {
            for (var r = 0; r < _tokens; r += PrefillAttention.MaxRows)
            {
                var rows = Math.Min(PrefillAttention.MaxRows, _tokens - r);
                var offset = ((long)r * Dim) + (head * HeadDim);
                PrefillAttention.Compute(
                    _q + offset, _output + offset, Dim, rows, 1, HeadDim, keys, values, null, head, _blockTable, BlockSize, r + 1, _scores, _scoreStride);
            }
        }
    }

    public void Dispose()
    {
        NativeMemory.AlignedFree(_q);
        NativeMemory.AlignedFree(_output);
        NativeMemory.AlignedFree(_keys);
        NativeMemory.AlignedFree(_values);
        NativeMemory.AlignedFree(_scores);
    }
}
