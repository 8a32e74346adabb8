using RawInfer.Gpu.Runner;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>The element-wise and row kernels on a GPU against scalar references, on odd sizes (skipped without a GPU).</summary>
public sealed class CudaElementwiseKernelTests(CudaKernelFixture gpu) : IClassFixture<CudaKernelFixture>
{
    public static TheoryData<GpuElementType> Types() => [GpuElementType.F16, GpuElementType.BF16];

    [Theory]
    [MemberData(nameof(Types))]
    public void Embedding_gather_widens_the_token_rows_exactly(GpuElementType type)
    {
        var kernels = gpu.Require();
        const int vocab = 1025, dim = 257, n = 17;
        var random = new Random(1);
        var (table, values) = Storage.Random(type, random, (long)vocab * dim);
        var tokens = Enumerable.Range(0, n).Select(i => i == 3 ? -1 : random.Next(vocab)).ToArray();
        tokens[5] = vocab - 1;
        using var dTable = gpu.Upload<ushort>(table);
        using var dTokens = gpu.Upload<int>(tokens);
        using var dOut = gpu.Zeros<float>((long)n * dim);

        kernels.EmbeddingGather(type, dOut.Pointer, dTable.Pointer, dTokens.Pointer, n, dim, gpu.Stream!);
        var output = gpu.Download<float>(dOut, n * dim);

        for (var r = 0; r < n; r++)
        {
            for (var c = 0; c < dim; c++)
            {
                var expected = tokens[r] < 0 ? 0f : values[((long)tokens[r] * dim) + c];
                Assert.Equal(expected, output[(r * dim) + c]);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void RmsNorm_matches_the_reference_per_row(GpuElementType type)
    {
        var kernels = gpu.Require();
        foreach (var (n, dim) in new[] { (1, 1), (17, 1025), (3, 4096) })
        {
            var random = new Random(dim);
            var x = RandomFloats(random, n * dim, 3f);
            var weight = RandomFloats(random, dim, 1f);
            using var dX = gpu.Upload<float>(x);
            using var dW = gpu.Upload<float>(weight);
            using var dOut = gpu.Zeros<ushort>((long)n * dim);

            kernels.RmsNorm(type, dOut.Pointer, dX.Pointer, dW.Pointer, n, dim, 1e-5f, gpu.Stream!);
            var output = gpu.Download<ushort>(dOut, n * dim);

            for (var r = 0; r < n; r++)
            {
                double ss = 0;
                for (var c = 0; c < dim; c++)
                {
                    ss += (double)x[(r * dim) + c] * x[(r * dim) + c];
                }

                var scale = 1 / Math.Sqrt((ss / dim) + 1e-5);
                for (var c = 0; c < dim; c++)
                {
                    Storage.AssertClose(type, weight[c] * scale * x[(r * dim) + c], Storage.Decode(type, output[(r * dim) + c]), $"n={n} dim={dim} [{r},{c}]");
                }
            }
        }
    }

    [Fact]
    public void Rope_rotates_adjacent_pairs_like_the_cpu()
    {
        var kernels = gpu.Require();
        const int n = 17, heads = 6, kvHeads = 2, headDim = 48;
        const float theta = 10000f;
        var random = new Random(3);
        var q = RandomFloats(random, n * heads * headDim, 2f);
        var k = RandomFloats(random, n * kvHeads * headDim, 2f);
        var positions = Enumerable.Range(0, n).Select(_ => random.Next(0, 8192)).ToArray();
        using var dQ = gpu.Upload<float>(q);
        using var dK = gpu.Upload<float>(k);
        using var dPos = gpu.Upload<int>(positions);

        kernels.Rope(dQ.Pointer, dK.Pointer, dPos.Pointer, n, heads, kvHeads, headDim, theta, gpu.Stream!);
        var qOut = gpu.Download<float>(dQ, q.Length);
        var kOut = gpu.Download<float>(dK, k.Length);

        // GPU sinf/cosf/powf are within 2 ulp of the CPU's; at angles up to 8192 rad that is ~1e-6 absolute.
        for (var t = 0; t < n; t++)
        {
            CheckRotated(q, qOut, t, heads);
            CheckRotated(k, kOut, t, kvHeads);
        }

        void CheckRotated(float[] input, float[] output, int t, int headCount)
        {
            for (var h = 0; h < headCount; h++)
            {
                for (var i = 0; i < headDim / 2; i++)
                {
                    var inverseFrequency = 1f / MathF.Pow(theta, 2 * i / (float)headDim);
                    var angle = positions[t] * inverseFrequency;
                    var (s, c) = (MathF.Sin(angle), MathF.Cos(angle));
                    var at = (((t * headCount) + h) * headDim) + (2 * i);
                    var (v0, v1) = (input[at], input[at + 1]);
                    Assert.InRange(output[at], (v0 * c) - (v1 * s) - 1e-4f, (v0 * c) - (v1 * s) + 1e-4f);
                    Assert.InRange(output[at + 1], (v1 * c) + (v0 * s) - 1e-4f, (v1 * c) + (v0 * s) + 1e-4f);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Kv_write_stores_rows_at_their_slots_and_skips_negative_ones(GpuElementType type)
    {
        var kernels = gpu.Require();
        const int blocks = 9, blockSize = 7, kvHeads = 3, headDim = 10, n = 23;
        const int kvDim = kvHeads * headDim, slots = blocks * blockSize;
        const ushort sentinel = 0x7E7E;
        var random = new Random(4);
        var k = RandomFloats(random, n * kvDim, 4f);
        var v = RandomFloats(random, n * kvDim, 4f);
        var free = Enumerable.Range(0, slots).OrderBy(_ => random.Next()).ToArray();
        var slotMapping = Enumerable.Range(0, n).Select(i => i % 5 == 4 ? -1 : free[i]).ToArray();
        var cache = Enumerable.Repeat(sentinel, slots * kvDim).ToArray();
        using var dKc = gpu.Upload<ushort>(cache);
        using var dVc = gpu.Upload<ushort>(cache);
        using var dK = gpu.Upload<float>(k);
        using var dV = gpu.Upload<float>(v);
        using var dSlots = gpu.Upload<int>(slotMapping);

        kernels.KvWrite(type, dKc.Pointer, dVc.Pointer, dK.Pointer, dV.Pointer, dSlots.Pointer, n, kvDim, gpu.Stream!);
        var kCache = gpu.Download<ushort>(dKc, cache.Length);
        var vCache = gpu.Download<ushort>(dVc, cache.Length);

        var expectedK = (ushort[])cache.Clone();
        var expectedV = (ushort[])cache.Clone();
        for (var i = 0; i < n; i++)
        {
            for (var c = 0; slotMapping[i] >= 0 && c < kvDim; c++)
            {
                expectedK[(slotMapping[i] * kvDim) + c] = Storage.Encode(type, k[(i * kvDim) + c]);
                expectedV[(slotMapping[i] * kvDim) + c] = Storage.Encode(type, v[(i * kvDim) + c]);
            }
        }

        Assert.Equal(expectedK, kCache);
        Assert.Equal(expectedV, vCache);
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void SwiGlu_matches_the_reference(GpuElementType type)
    {
        var kernels = gpu.Require();
        const int count = 100_003;
        var random = new Random(5);
        var gate = RandomFloats(random, count, 8f);
        var up = RandomFloats(random, count, 2f);
        using var dGate = gpu.Upload<float>(gate);
        using var dUp = gpu.Upload<float>(up);
        using var dOut = gpu.Zeros<ushort>(count);

        kernels.SwiGlu(type, dOut.Pointer, dGate.Pointer, dUp.Pointer, count, gpu.Stream!);
        var output = gpu.Download<ushort>(dOut, count);

        for (var i = 0; i < count; i++)
        {
            var expected = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
            Storage.AssertClose(type, expected, Storage.Decode(type, output[i]), $"[{i}]");
        }
    }

    [Fact]
    public void Residual_add_is_exact()
    {
        var kernels = gpu.Require();
        const int count = 100_003;
        var random = new Random(6);
        var x = RandomFloats(random, count, 10f);
        var delta = RandomFloats(random, count, 10f);
        using var dX = gpu.Upload<float>(x);
        using var dDelta = gpu.Upload<float>(delta);

        kernels.ResidualAdd(dX.Pointer, dDelta.Pointer, count, gpu.Stream!);

        Assert.Equal(x.Zip(delta, (a, b) => a + b).ToArray(), gpu.Download<float>(dX, count));
    }

    [Theory]
    [MemberData(nameof(Types))]
    public void Conversion_rounds_to_nearest_even_bit_for_bit(GpuElementType type)
    {
        var kernels = gpu.Require();
        var random = new Random(7);
        float[] special = [0f, -0f, 1f, -1f, 65504f, 65520f, 1e6f, -1e6f, 6e-8f, 3e-8f, 1e-40f, float.PositiveInfinity, float.NegativeInfinity, 1.00048828125f, 1.001953125f];
        var input = special.Concat(Enumerable.Range(0, 1025).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-30, 30))))).ToArray();
        using var dIn = gpu.Upload<float>(input);
        using var dOut = gpu.Zeros<ushort>(input.Length);

        kernels.ConvertFromF32(type, dOut.Pointer, dIn.Pointer, input.Length, gpu.Stream!);

        Assert.Equal(input.Select(f => Storage.Encode(type, f)).ToArray(), gpu.Download<ushort>(dOut, input.Length));
    }

    internal static float[] RandomFloats(Random random, int count, float scale)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = (float)((random.NextDouble() * 2) - 1) * scale;
        }

        return values;
    }
}
