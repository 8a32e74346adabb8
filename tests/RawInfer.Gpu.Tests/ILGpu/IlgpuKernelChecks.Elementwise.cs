using RawInfer.Gpu.ILGpu;
using Xunit;
using CpuRope = RawInfer.Cpu.Kernels.Rope;
using CpuSwiGlu = RawInfer.Cpu.Kernels.SwiGlu;
using static RawInfer.Gpu.Tests.ILGpu.IlgpuTestData;

namespace RawInfer.Gpu.Tests.ILGpu;

/// <summary>
/// Each ILGPU kernel against the CPU backend's scalar kernel or a plain reference, on whichever accelerator
/// <see cref="IlgpuKernels"/> was built for. <paramref name="toleranceScale"/> widens the float tolerances on
/// a GPU, whose exp/sin/cos are the fast approximate instructions (1 on ILGPU's CPU accelerator, which calls
/// MathF). Copies and integer results must match exactly everywhere.
/// </summary>
internal sealed partial class IlgpuKernelChecks(IlgpuKernels kernels, double toleranceScale)
{
    private readonly ILGPU.Runtime.Accelerator _accelerator = kernels.Accelerator;

    public void ResidualAdd(int count, int seed)
    {
        var x = Random(count, seed);
        var delta = Random(count, seed + 1);
        using var dx = Upload(_accelerator, x);
        using var ddelta = Upload(_accelerator, delta);

        kernels.ResidualAdd(dx.View, ddelta.View, count);

        var expected = new float[count];
        for (var i = 0; i < count; i++)
        {
            expected[i] = x[i] + delta[i];
        }

        Assert.Equal(expected, Download(_accelerator, dx)[..count]);
    }

    public void SwiGlu(int count, int seed)
    {
        var gate = Random(count, seed, -6f, 6f);
        var up = Random(count, seed + 1, -2f, 2f);
        using var dout = _accelerator.Allocate1D<float>(Math.Max(count, 1));
        using var dgate = Upload(_accelerator, gate);
        using var dup = Upload(_accelerator, up);

        kernels.SwiGlu(dout.View, dgate.View, dup.View, count);

        var expected = (float[])gate.Clone();
        CpuSwiGlu.Scalar(expected, up, 0);
        AssertClose(expected, Download(_accelerator, dout)[..count], 1e-6 * toleranceScale, 1e-6 * toleranceScale, "swiglu");
    }

    public void EmbeddingGather(int n, int vocab, int dim, int seed)
    {
        var table = Random(vocab * dim, seed);
        var tokens = new int[n];
        var random = new Random(seed + 1);
        for (var r = 0; r < n; r++)
        {
            tokens[r] = random.Next(vocab);
        }

        // out-of-range ids read nothing and give zero rows
        tokens[0] = n > 2 ? -1 : tokens[0];
        tokens[n - 1] = n > 2 ? vocab : tokens[n - 1];
        using var dout = Upload(_accelerator, new float[n * dim]);
        using var dtable = Upload(_accelerator, table);
        using var dtokens = Upload(_accelerator, tokens);

        kernels.EmbeddingGather(dout.View, dtable.View, dtokens.View, n, vocab, dim);

        var expected = new float[n * dim];
        for (var r = 0; r < n; r++)
        {
            if ((uint)tokens[r] < (uint)vocab)
            {
                table.AsSpan(tokens[r] * dim, dim).CopyTo(expected.AsSpan(r * dim));
            }
        }

        Assert.Equal(expected, Download(_accelerator, dout));
    }

    public void KvWrite(int blocks, int blockSize, int kvDim, int n, int seed)
    {
        // n distinct slots in random order; every third row is padding (slot -1) and must write nothing
        var slots = Permutation(blocks * blockSize, seed)[..n];
        for (var r = 2; r < n; r += 3)
        {
            slots[r] = -1;
        }

        var k = Random(n * kvDim, seed + 1);
        var v = Random(n * kvDim, seed + 2);
        var cacheK = Random(blocks * blockSize * kvDim, seed + 3, 10f, 11f);
        var cacheV = Random(blocks * blockSize * kvDim, seed + 4, 20f, 21f);
        using var dcacheK = Upload(_accelerator, cacheK);
        using var dcacheV = Upload(_accelerator, cacheV);
        using var dk = Upload(_accelerator, k);
        using var dv = Upload(_accelerator, v);
        using var dslots = Upload(_accelerator, slots);

        kernels.KvWrite(dcacheK.View, dcacheV.View, dk.View, dv.View, dslots.View, n, kvDim);

        for (var r = 0; r < n; r++)
        {
            if (slots[r] >= 0)
            {
                k.AsSpan(r * kvDim, kvDim).CopyTo(cacheK.AsSpan(slots[r] * kvDim));
                v.AsSpan(r * kvDim, kvDim).CopyTo(cacheV.AsSpan(slots[r] * kvDim));
            }
        }

        Assert.Equal(cacheK, Download(_accelerator, dcacheK));
        Assert.Equal(cacheV, Download(_accelerator, dcacheV));
    }

    public void Rope(int n, int heads, int kvHeads, int headDim, int maxPosition, int seed)
    {
        var dim = heads * headDim;
        var kvDim = kvHeads * headDim;
        var q = Random(n * dim, seed);
        var k = Random(n * kvDim, seed + 1);
        var positions = new int[n];
        var random = new Random(seed + 2);
        for (var r = 0; r < n; r++)
        {
            positions[r] = random.Next(maxPosition + 1);
        }

        var inverseFrequencies = IlgpuKernels.RopeInverseFrequencies(headDim, 10000f);
        using var dq = Upload(_accelerator, q);
        using var dk = Upload(_accelerator, k);
        using var dpositions = Upload(_accelerator, positions);
        using var dfrequencies = Upload(_accelerator, inverseFrequencies);

        kernels.Rope(dq.View, dk.View, dpositions.View, dfrequencies.View, n, heads, kvHeads, headDim);

        // the CPU backend: per-position tables over max(dim, kvDim) floats, then the scalar rotation
        var tableLength = Math.Max(dim, kvDim);
        var cos = new float[tableLength];
        var sin = new float[tableLength];
        for (var r = 0; r < n; r++)
        {
            CpuRope.FillTables(positions[r], inverseFrequencies, cos, sin);
            CpuRope.Scalar(q.AsSpan(r * dim, dim), cos, sin, 0);
            CpuRope.Scalar(k.AsSpan(r * kvDim, kvDim), cos, sin, 0);
        }

        // the kernel reduces the angle to [-π, π] first: a few 1e-7 rad per 1e3 rad of angle
        AssertClose(q, Download(_accelerator, dq), 2e-6 * toleranceScale, 0, "rope q");
        AssertClose(k, Download(_accelerator, dk), 2e-6 * toleranceScale, 0, "rope k");
    }
}
