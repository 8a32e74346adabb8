using Xunit;

namespace RawInfer.Gpu.Tests.ILGpu;

/// <summary>
/// The ILGPU kernels on ILGPU's CPU accelerator (32-lane warps, 64-thread groups) against the CPU backend's
/// scalar kernels and plain references, on small odd shapes: the accelerator emulates barriers slowly.
/// </summary>
[Collection(IlgpuCpuCollection.Name)]
public sealed class IlgpuCpuKernelTests(IlgpuCpuFixture fixture)
{
    private readonly IlgpuKernelChecks _checks = new(fixture.Kernels, toleranceScale: 1);

    [Fact]
    public void Cpu_device_has_warp_sized_groups()
    {
        Assert.Equal(32, fixture.Device.Accelerator.WarpSize);
        Assert.Equal(64, fixture.Kernels.ReductionGroupSize);
        Assert.Equal(64, fixture.Kernels.AttentionGroupSize);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(1025)]
    public void ResidualAdd_matches_reference(int count) => _checks.ResidualAdd(count, seed: 100 + count);

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(1025)]
    public void SwiGlu_matches_cpu_kernel(int count) => _checks.SwiGlu(count, seed: 200 + count);

    [Theory]
    [InlineData(1, 5, 1)]
    [InlineData(7, 33, 17)]
    public void EmbeddingGather_matches_reference(int n, int vocab, int dim) => _checks.EmbeddingGather(n, vocab, dim, seed: 300 + n);

    [Theory]
    [InlineData(3, 4, 6, 1)]
    [InlineData(5, 3, 34, 13)]
    public void KvWrite_matches_reference(int blocks, int blockSize, int kvDim, int n) =>
        _checks.KvWrite(blocks, blockSize, kvDim, n, seed: 400 + n);

    [Theory]
    [InlineData(1, 1, 1, 2, 5)]
    [InlineData(3, 4, 2, 16, 1000)]
    [InlineData(5, 3, 3, 34, 4000)]
    public void Rope_matches_cpu_kernel(int n, int heads, int kvHeads, int headDim, int maxPosition) =>
        _checks.Rope(n, heads, kvHeads, headDim, maxPosition, seed: 500 + n);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 17)]
    [InlineData(2, 257)]
    public void RmsNorm_matches_cpu_kernel(int rows, int dim) => _checks.RmsNorm(rows, dim, seed: 600 + dim);

    [Fact]
    public void RmsNorm_in_place_matches_cpu_kernel() => _checks.RmsNormInPlace(2, 33, seed: 650);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(4, 33)]
    [InlineData(4, 1025)]
    public void Argmax_matches_sampler(int rows, int vocab) => _checks.Argmax(rows, vocab, seed: 700 + vocab);

    [Fact]
    public void PagedAttention_gqa_shuffled_blocks_matches_reference() =>
        _checks.PagedAttentionDecode([1, 17, 70], heads: 8, kvHeads: 2, headDim: 16, blockSize: 4, seed: 800);

    [Fact]
    public void PagedAttention_one_query_head_per_kv_head_matches_reference() =>
        _checks.PagedAttentionDecode([33], heads: 3, kvHeads: 3, headDim: 5, blockSize: 16, seed: 900);
}
