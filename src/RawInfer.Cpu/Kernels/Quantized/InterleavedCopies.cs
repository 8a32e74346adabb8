using RawInfer.Models;

namespace RawInfer.Cpu.Kernels.Quantized;

/// <summary>
/// Gives a model's Q8_0 matrices a copy of their rows in the interleaved layout of
/// <see cref="GemmQ8_0.Interleave"/> (<see cref="WeightTensor.Interleaved"/>), which the decode steps of one to three
/// sequences read instead of the file's layout. The copy is as large as the matrices (the weights' own memory is
/// shared, so it sits beside them), so it is only made where it fits: when every copy together takes at most
/// <see cref="MemoryShare"/> of the memory the process may use. A model that large keeps the file's layout and its
/// speed, rather than the memory running out.
/// </summary>
internal static unsafe class InterleavedCopies
{
    /// <summary>The share of the memory available to the process the copies may take together.</summary>
    public const double MemoryShare = 0.25;

    /// <summary>
    /// The weights with every Q8_0 matrix that goes through a product carrying its interleaved copy, kept in pinned
    /// arrays added to <paramref name="copies"/> (which must live as long as the weights returned); the weights as
    /// they are where this machine has no AVX-VNNI or the copies would take more than
    /// <paramref name="availableBytes"/>·<see cref="MemoryShare"/> (by default, what the GC reports available).
    /// </summary>
    public static LlamaWeights Attach(LlamaWeights weights, List<byte[]> copies, long availableBytes = 0)
    {
        if (!GemmQ8_0.InterleavedSupported)
        {
            return weights;
        }

        long total = 0;
        _ = weights.WithProducts(w =>
        {
            total += w.Type == TensorType.Q8_0 && w.Cols % MatVecQ8_0.BlockElements == 0 ? GemmQ8_0.InterleavedBytes(in w) : 0;
            return w;
        });
        var available = availableBytes > 0 ? availableBytes : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (total == 0 || total > available * MemoryShare)
        {
            return weights;
        }

        return weights.WithProducts(w =>
        {
            var bytes = w.Type == TensorType.Q8_0 && w.Cols % MatVecQ8_0.BlockElements == 0 ? GemmQ8_0.InterleavedBytes(in w) : 0;
            if (bytes == 0)
            {
                return w;
            }

            var copy = LineAligned.Allocate<byte>(checked((int)bytes));
            copies.Add(copy);
            var start = LineAligned.Start(copy);
            GemmQ8_0.Interleave(in w, start);
            return w.WithInterleaved(start);
        });
    }
}
