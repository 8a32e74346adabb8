using RawInfer.Gpu.Kernels;
using RawInfer.Gpu.Runner;
using RawInfer.Native;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>
/// Paged attention on a GPU against a double-precision reference over the same 16-bit K/V: random block tables,
/// GQA groups (including one larger than a pass), odd head widths and block sizes, one split against several, and
/// causal prefill chunks. Skipped without a GPU.
/// </summary>
public sealed class CudaPagedAttentionKernelTests(CudaKernelFixture gpu) : IClassFixture<CudaKernelFixture>
{
    public static TheoryData<GpuElementType, int, int, int, int> Shapes() => new()
    {
        { GpuElementType.F16, 8, 2, 64, 16 },
        { GpuElementType.BF16, 8, 2, 64, 16 },
        { GpuElementType.F16, 12, 1, 48, 7 },   // group 12: two passes of 8 and 4; headDim not a multiple of 64
        { GpuElementType.F16, 4, 4, 128, 16 },  // plain multi-head
        { GpuElementType.BF16, 16, 2, 256, 32 }, // the widest head
        { GpuElementType.F16, 8, 4, 8, 5 },     // stories260K-like tiny heads
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Decode_matches_the_reference_with_one_or_many_splits(GpuElementType type, int heads, int kvHeads, int headDim, int blockSize)
    {
        var kernels = gpu.Require();
        int[] contexts = [1, 17, 300, 1025, 0, 513];
        var random = new Random(heads * 1000 + headDim);
        using var cache = PagedCache.Create(gpu, type, random, contexts, blockSize, kvHeads, headDim);
        var seqs = contexts.Length;
        var q = CudaElementwiseKernelTests.RandomFloats(random, seqs * heads * headDim, 3f);
        var scale = 1f / MathF.Sqrt(headDim);
        var expected = new double[seqs * heads * headDim];
        for (var s = 0; s < seqs; s++)
        {
            cache.Reference(q.AsSpan(s * heads * headDim, heads * headDim), s, contexts[s], heads, scale, expected.AsSpan(s * heads * headDim));
        }

        using var dQ = gpu.Upload<float>(q);
        using var dContext = gpu.Upload<int>(contexts);
        var maxContext = contexts.Max();
        PagedAttentionPlan[] plans =
        [
            new(1, maxContext),
            new((maxContext + 63) / 64, 64),
            new((maxContext + 4) / 5, 5),
            PagedAttentionPlan.Choose(seqs, kvHeads, maxContext, 132),
        ];
        ushort[]? oneSplit = null;
        foreach (var plan in plans)
        {
            var rows = (long)seqs * heads * plan.NumSplits;
            using var partialOut = gpu.Zeros<float>(rows * headDim);
            using var partialMax = gpu.Zeros<float>(rows);
            using var partialSum = gpu.Zeros<float>(rows);
            using var dOut = gpu.Zeros<ushort>((long)seqs * heads * headDim);

            kernels.PagedAttentionDecode(type, partialOut.Pointer, partialMax.Pointer, partialSum.Pointer, dQ.Pointer,
                cache.K.Pointer, cache.V.Pointer, cache.Tables.Pointer, dContext.Pointer, seqs, cache.MaxBlocks, blockSize,
                heads, kvHeads, headDim, plan, scale, gpu.Stream!);
            kernels.PagedAttentionMerge(type, dOut.Pointer, partialOut.Pointer, partialMax.Pointer, partialSum.Pointer,
                seqs, heads, headDim, plan.NumSplits, gpu.Stream!);
            var output = gpu.Download<ushort>(dOut, seqs * heads * headDim);

            for (var i = 0; i < output.Length; i++)
            {
                Storage.AssertClose(type, expected[i], Storage.Decode(type, output[i]), $"{plan} seq {i / (heads * headDim)} head {i / headDim % heads} [{i % headDim}]");
            }

            // Splitting only reorders F32 sums: at most a unit or two in the last place of the 16-bit result.
            oneSplit ??= output;
            for (var i = 0; i < output.Length; i++)
            {
                var a = Storage.Decode(type, oneSplit[i]);
                var b = Storage.Decode(type, output[i]);
                Assert.True(Math.Abs(a - b) <= (Math.Abs(a) * (type == GpuElementType.F16 ? 2e-3 : 1e-2)) + 1e-3,
                    $"{plan}: element {i} is {b}, with one split {a}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Prefill_is_causal_within_each_sequence(GpuElementType type, int heads, int kvHeads, int headDim, int blockSize)
    {
        var kernels = gpu.Require();
        (int Start, int Length)[] chunks = [(0, 17), (33, 1), (5, 40)];
        var random = new Random(heads * 7 + headDim);
        using var cache = PagedCache.Create(gpu, type, random, [.. chunks.Select(c => c.Start + c.Length)], blockSize, kvHeads, headDim);
        var tokens = chunks.Sum(c => c.Length);
        var queryStart = new int[chunks.Length + 1];
        var positions = new int[tokens];
        for (var s = 0; s < chunks.Length; s++)
        {
            queryStart[s + 1] = queryStart[s] + chunks[s].Length;
            for (var i = 0; i < chunks[s].Length; i++)
            {
                positions[queryStart[s] + i] = chunks[s].Start + i;
            }
        }

        var q = CudaElementwiseKernelTests.RandomFloats(random, tokens * heads * headDim, 3f);
        var scale = 1f / MathF.Sqrt(headDim);
        using var dQ = gpu.Upload<float>(q);
        using var dStart = gpu.Upload<int>(queryStart);
        using var dPositions = gpu.Upload<int>(positions);
        using var dOut = gpu.Zeros<ushort>((long)tokens * heads * headDim);

        kernels.PagedAttentionPrefill(type, dOut.Pointer, dQ.Pointer, cache.K.Pointer, cache.V.Pointer, cache.Tables.Pointer,
            dStart.Pointer, dPositions.Pointer, tokens, chunks.Length, cache.MaxBlocks, blockSize, heads, kvHeads, headDim,
            scale, gpu.Stream!);
        var output = gpu.Download<ushort>(dOut, tokens * heads * headDim);

        var expected = new double[heads * headDim];
        for (var s = 0; s < chunks.Length; s++)
        {
            for (var row = queryStart[s]; row < queryStart[s + 1]; row++)
            {
                cache.Reference(q.AsSpan(row * heads * headDim, heads * headDim), s, positions[row] + 1, heads, scale, expected);
                for (var i = 0; i < expected.Length; i++)
                {
                    Storage.AssertClose(type, expected[i], Storage.Decode(type, output[(row * heads * headDim) + i]), $"seq {s} row {row} head {i / headDim} [{i % headDim}]");
                }
            }
        }
    }

    /// <summary>A K/V cache with one randomly placed block table per sequence, filled with random 16-bit values.</summary>
    private sealed class PagedCache : IDisposable
    {
        private float[] _k = [];
        private float[] _v = [];
        private int[] _tables = [];
        private int _blockSize;
        private int _kvHeads;
        private int _headDim;

        public DeviceBuffer K { get; private set; } = null!;

        public DeviceBuffer V { get; private set; } = null!;

        public DeviceBuffer Tables { get; private set; } = null!;

        public int MaxBlocks { get; private set; }

        public static PagedCache Create(CudaKernelFixture gpu, GpuElementType type, Random random, int[] lengths, int blockSize, int kvHeads, int headDim)
        {
            var needed = lengths.Select(l => (l + blockSize - 1) / blockSize).ToArray();
            var physical = needed.Sum() + 3; // spare blocks nobody owns
            var maxBlocks = Math.Max(1, needed.Max());
            var order = Enumerable.Range(0, physical).OrderBy(_ => random.Next()).ToArray();
            var tables = Enumerable.Repeat(-1, lengths.Length * maxBlocks).ToArray(); // unused entries must never be read
            var next = 0;
            for (var s = 0; s < lengths.Length; s++)
            {
                for (var b = 0; b < needed[s]; b++)
                {
                    tables[(s * maxBlocks) + b] = order[next++];
                }
            }

            var elements = (long)physical * blockSize * kvHeads * headDim;
            var (kBits, k) = Storage.Random(type, random, elements);
            var (vBits, v) = Storage.Random(type, random, elements);
            return new PagedCache
            {
                _k = k,
                _v = v,
                _tables = tables,
                _blockSize = blockSize,
                _kvHeads = kvHeads,
                _headDim = headDim,
                MaxBlocks = maxBlocks,
                K = gpu.Upload<ushort>(kBits),
                V = gpu.Upload<ushort>(vBits),
                Tables = gpu.Upload<int>(tables),
            };
        }

        /// <summary>output (heads, headDim) = softmax(q·k · scale) v over positions [0, context) of sequence s, in double.</summary>
        public void Reference(ReadOnlySpan<float> q, int s, int context, int heads, float scale, Span<double> output)
        {
            var group = heads / _kvHeads;
            output.Clear();
            if (context == 0)
            {
                return;
            }

            var scores = new double[context];
            for (var h = 0; h < heads; h++)
            {
                var kvHead = h / group;
                var max = double.NegativeInfinity;
                for (var t = 0; t < context; t++)
                {
                    var row = Row(s, t, kvHead);
                    double dot = 0;
                    for (var e = 0; e < _headDim; e++)
                    {
                        dot += (double)q[(h * _headDim) + e] * _k[row + e];
                    }

                    scores[t] = dot * scale;
                    max = Math.Max(max, scores[t]);
                }

                double sum = 0;
                for (var t = 0; t < context; t++)
                {
                    scores[t] = Math.Exp(scores[t] - max);
                    sum += scores[t];
                }

                for (var t = 0; t < context; t++)
                {
                    var row = Row(s, t, kvHead);
                    for (var e = 0; e < _headDim; e++)
                    {
                        output[(h * _headDim) + e] += scores[t] / sum * _v[row + e];
                    }
                }
            }
        }

        public void Dispose()
        {
            K?.Dispose();
            V?.Dispose();
            Tables?.Dispose();
        }

        private long Row(int s, int t, int kvHead)
        {
            var block = _tables[(s * MaxBlocks) + (t / _blockSize)];
            var slot = ((long)block * _blockSize) + (t % _blockSize);
            return ((slot * _kvHeads) + kvHead) * _headDim;
        }
    }
}
