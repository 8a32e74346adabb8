using ILGPU;

namespace RawInfer.Gpu.ILGpu;

/// <summary>
/// The ILGPU kernel bodies: static methods that ILGPU compiles for the accelerator it is given (CPU emulation in
/// the tests, PTX on CUDA). Element-wise kernels are implicitly grouped (the first parameter is the flat element
/// index); the reductions and attention are explicitly grouped (one group per row / per (sequence, KV head)).
/// All data is F32 and row-major; flat indices stay below 2^31 (checked by <see cref="IlgpuKernels"/>), while
/// offsets into caches and tables are computed in 64 bits.
/// </summary>
internal static partial class IlgpuKernelBodies
{
    /// <summary>x[i] += delta[i]. x, delta: (count); index over count.</summary>
    internal static void ResidualAdd(Index1D i, ArrayView<float> x, ArrayView<float> delta)
    {
        x[i] += delta[i];
    }

    /// <summary>
    /// output[i] = silu(gate[i]) · up[i] with silu(g) = g / (1 + e^-g), as the CPU backend's SwiGLU.
    /// output, gate, up: (count); output may be gate itself.
    /// </summary>
    internal static void SwiGlu(Index1D i, ArrayView<float> output, ArrayView<float> gate, ArrayView<float> up)
    {
        var g = gate[i];
        output[i] = g / (1f + Exp(-g)) * up[i];
    }

    /// <summary>
    /// output[r, :] = table[tokens[r], :]; a token outside [0, vocab) gives a zero row instead of reading out of
    /// bounds. output: (n, dim); table: (vocab, dim); tokens: (n); index over n·dim.
    /// </summary>
    internal static void EmbeddingGather(
        Index1D i, ArrayView<float> output, ArrayView<float> table, ArrayView<int> tokens, int vocab, int dim)
    {
        int index = i;
        var row = index / dim;
        var col = index - (row * dim);
        var token = tokens[row];
        output[i] = (uint)token < (uint)vocab ? table[((long)token * dim) + col] : 0f;
    }

    /// <summary>
    /// Writes row r of k and v into cache slot slotMapping[r] (slot = block · blockSize + offset); a negative
    /// slot skips the row (padding). kCache, vCache: (blocks, blockSize, kvHeads, headDim) = (slots, kvDim);
    /// k, v: (n, kvDim); slotMapping: (n); index over n·kvDim.
    /// </summary>
    internal static void KvWrite(
        Index1D i,
        ArrayView<float> kCache,
        ArrayView<float> vCache,
        ArrayView<float> k,
        ArrayView<float> v,
        ArrayView<int> slotMapping,
        int kvDim)
    {
        int index = i;
        var row = index / kvDim;
        var col = index - (row * kvDim);
        var slot = slotMapping[row];
        if (slot < 0)
        {
            return;
        }

        var destination = ((long)slot * kvDim) + col;
        kCache[destination] = k[i];
        vCache[destination] = v[i];
    }

    /// <summary>
    /// Rotary embedding in llama2.c's layout: pair (2p, 2p+1) of every head of row r turns by the angle
    /// positions[r] · inverseFrequencies[p], for the query heads and the key heads alike.
    /// q: (n, heads, headDim); k: (n, kvHeads, headDim); positions: (n); inverseFrequencies: (headDim/2),
    /// 1 / theta^(2p/headDim) computed on the host (<see cref="IlgpuKernels.RopeInverseFrequencies"/>) so the
    /// frequencies are bit-identical to the CPU backend's. Index over n · (heads + kvHeads) · headDim/2.
    /// </summary>
    internal static void Rope(
        Index1D i,
        ArrayView<float> q,
        ArrayView<float> k,
        ArrayView<int> positions,
        ArrayView<float> inverseFrequencies,
        int heads,
        int kvHeads,
        int headDim)
    {
        int index = i;
        var half = headDim / 2;
        var rest = index / half;
        var pair = index - (rest * half);
        var totalHeads = heads + kvHeads;
        var row = rest / totalHeads;
        var head = rest - (row * totalHeads);

        var angle = positions[row] * inverseFrequencies[pair];
        var reduced = ReduceAngle(angle);
        var c = MathF.Cos(reduced);
        var s = MathF.Sin(reduced);

        if (head < heads)
        {
            var offset = ((((long)row * heads) + head) * headDim) + (2 * pair);
            var v0 = q[offset];
            var v1 = q[offset + 1];
            q[offset] = (v0 * c) - (v1 * s);
            q[offset + 1] = (v1 * c) + (v0 * s);
        }
        else
        {
            var offset = ((((long)row * kvHeads) + (head - heads)) * headDim) + (2 * pair);
            var v0 = k[offset];
            var v1 = k[offset + 1];
            k[offset] = (v0 * c) - (v1 * s);
            k[offset + 1] = (v1 * c) + (v0 * s);
        }
    }

    // 2π split so that k · TwoPiHigh is exact for |k| < 2^16 (6.28125 has 8 significant bits): angles up to
    // about 4·10^5 rad reduce to [-π, π] with an error near 1e-6 rad. The GPU's fast sin/cos are accurate only
    // on a small range, and RoPE angles reach position · 1 rad.
    private const float TwoPiHigh = 6.28125f;
    private const float TwoPiLow = 1.9353071795864769e-3f;
    private const float InverseTwoPi = 0.15915494309189535f;

    private const float Log2E = 1.44269504088896341f;

    /// <summary>
    /// e^x as 2^(x·log2 e). ILGPU 1.5.3's PTX backend has no intrinsic for MathF.Exp (it wants the separate
    /// Algorithms library), but maps Exp2 to the ex2.approx instruction (about 2 ulp); on the CPU accelerator it
    /// is the library exp2. The extra rounding of x·log2 e costs |x|·6e-8 relative: 1e-6 at |x| = 16.
    /// Exp(−∞) = 0, which the online softmax relies on.
    /// </summary>
    internal static float Exp(float x) => IntrinsicMath.CPUOnly.Exp2(x * Log2E);

    /// <summary>angle − 2πk with k the nearest integer to angle / 2π (Cody–Waite reduction).</summary>
    private static float ReduceAngle(float angle)
    {
        var turns = MathF.Floor((angle * InverseTwoPi) + 0.5f);
        return angle - (turns * TwoPiHigh) - (turns * TwoPiLow);
    }
}
