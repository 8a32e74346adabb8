using ILGPU;

namespace RawInfer.Gpu.ILGpu;

/// <summary>Group reductions: RMSNorm and greedy argmax, one group per row.</summary>
internal static partial class IlgpuKernelBodies
{
    /// <summary>Most warps a group may have: 1024 threads / 32 lanes. Sizes the per-warp shared scratch.</summary>
    internal const int MaxWarpsPerGroup = 32;

    /// <summary>
    /// output[r, :] = weight · x[r, :] / sqrt(mean(x[r, :]²) + eps), as llama2.c. One group per row r; the group
    /// size is a multiple of the warp size. output, x: (n, dim); weight: (dim). output may be x itself: every
    /// thread reads and writes only its own elements, after the reduction.
    /// </summary>
    internal static void RmsNorm(ArrayView<float> output, ArrayView<float> x, ArrayView<float> weight, int dim, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        var rowStart = (long)Grid.IdxX * dim;

        var sumOfSquares = 0f;
        for (var j = Group.IdxX; j < dim; j += Group.DimX)
        {
            var v = x[rowStart + j];
            sumOfSquares += v * v;
        }

        sumOfSquares = GroupSum(sumOfSquares, scratch);
        var inverseRms = 1f / MathF.Sqrt((sumOfSquares / dim) + eps);
        for (var j = Group.IdxX; j < dim; j += Group.DimX)
        {
            output[rowStart + j] = weight[j] * (inverseRms * x[rowStart + j]);
        }
    }

    /// <summary>
    /// outTokens[r] = the index of the largest logit of row r, the lowest index on ties; NaN never wins and a row
    /// with no finite maximum (all −∞ or NaN) gives 0. One group per row. outTokens: (n); logits: (n, vocab).
    /// </summary>
    internal static void Argmax(ArrayView<int> outTokens, ArrayView<float> logits, int vocab)
    {
        var scratchValue = SharedMemory.Allocate<float>(MaxWarpsPerGroup);
        var scratchIndex = SharedMemory.Allocate<int>(MaxWarpsPerGroup);
        var rowStart = (long)Grid.IdxX * vocab;

        // each thread walks its strided indices upwards, so a strict > keeps its lowest index on ties
        var best = float.NegativeInfinity;
        var bestIndex = int.MaxValue;
        for (var j = Group.IdxX; j < vocab; j += Group.DimX)
        {
            var v = logits[rowStart + j];
            if (v > best)
            {
                best = v;
                bestIndex = j;
            }
        }

        WarpArgmax(ref best, ref bestIndex);
        if (Warp.IsFirstLane)
        {
            scratchValue[Warp.WarpIdx] = best;
            scratchIndex[Warp.WarpIdx] = bestIndex;
        }

        Group.Barrier();
        if (Warp.WarpIdx == 0)
        {
            var warps = Group.DimX / Warp.WarpSize;
            best = Warp.LaneIdx < warps ? scratchValue[Warp.LaneIdx] : float.NegativeInfinity;
            bestIndex = Warp.LaneIdx < warps ? scratchIndex[Warp.LaneIdx] : int.MaxValue;
            WarpArgmax(ref best, ref bestIndex);
            if (Warp.IsFirstLane)
            {
                outTokens[Grid.IdxX] = bestIndex == int.MaxValue ? 0 : bestIndex;
            }
        }
    }

    /// <summary>Sum of <paramref name="value"/> over the warp, valid in lane 0.</summary>
    private static float WarpSum(float value)
    {
        for (var delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
        {
            value += Warp.ShuffleDown(value, delta);
        }

        return value;
    }

    /// <summary>
    /// Sum of <paramref name="value"/> over the whole group, returned to every thread. scratch: shared,
    /// (MaxWarpsPerGroup). Every thread of the group must call it (it holds barriers).
    /// </summary>
    private static float GroupSum(float value, ArrayView<float> scratch)
    {
        value = WarpSum(value);
        if (Warp.IsFirstLane)
        {
            scratch[Warp.WarpIdx] = value;
        }

        Group.Barrier();
        if (Warp.WarpIdx == 0)
        {
            var warps = Group.DimX / Warp.WarpSize;
            value = WarpSum(Warp.LaneIdx < warps ? scratch[Warp.LaneIdx] : 0f);
            if (Warp.IsFirstLane)
            {
                scratch[0] = value;
            }
        }

        Group.Barrier();
        return scratch[0];
    }

    /// <summary>Warp-wide (max, lowest index) merge; the result is valid in lane 0.</summary>
    private static void WarpArgmax(ref float best, ref int bestIndex)
    {
        for (var delta = Warp.WarpSize / 2; delta > 0; delta /= 2)
        {
            var otherValue = Warp.ShuffleDown(best, delta);
            var otherIndex = Warp.ShuffleDown(bestIndex, delta);
            if (otherValue > best || (otherValue == best && otherIndex < bestIndex))
            {
                best = otherValue;
                bestIndex = otherIndex;
            }
        }
    }
}
