using RawInfer.Cpu.Runner;
using RawInfer.Gpu.Runner;
using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// Each runner step on the device against the CPU runner on the same 16-bit weights (GPU only; skipped without a
/// device). The remaining difference is the device's 16-bit GEMM inputs (normed activations, attention output,
/// SwiGLU output) and its summation order, so logits agree to a tolerance, not bit for bit.
/// </summary>
public sealed class CudaRunnerStepTests(GpuRunnerFixture fixture) : IClassFixture<GpuRunnerFixture>
{
    /// <summary>
    /// Tolerance on stories260K (logits up to about ±15): |Δ| ≤ 2% of the largest |logit| seen. F16 rounding of a
    /// GEMM input is a relative error of 2⁻¹², which five layers compound to well under this.
    /// </summary>
    private const double StoriesRelativeTolerance = 0.02;

    /// <summary>On the 1B-shaped synthetic model (logits of order 1): |Δ| ≤ 1% of the largest |logit|.</summary>
    private const double SyntheticRelativeTolerance = 0.01;

    [Fact]
    public void PrefillChunksMixedStepsDecodeAndForkMatchTheCpuRunner()
    {
        fixture.RequireDevice();
        using var model = GgufLlamaLoader.Load(fixture.Stories16Path);
        using var cpu = new CpuModelRunner(model, threads: 2);
        using var cuda = new CudaModelRunner(model, new CudaRunnerOptions { MaxBatchedTokens = 64, MaxSequences = 64 });
        Assert.Equal(GpuElementType.F16, cuda.ElementType);
        var twin = new TwinRunnerHarness(cpu, cuda, numBlocks: 64, blockSize: 16, maxTokens: 64);

        var random = new Random(7);
        int[] Tokens(int n)
        {
            var t = new int[n];
            t[0] = 1;
            for (var i = 1; i < n; i++)
            {
                t[i] = random.Next(3, 512);
            }

            return t;
        }

        var a = Tokens(80);
        var b = Tokens(60);
        twin.Start(1, a, 23);
        twin.Start(2, b, 9);

        // prefill chunks, logits of every row (the ungathered classifier path)
        twin.Step(true, (1, 7), (2, 5));

        // the rest of both prompts, logits of the last rows only (the gathered path), then a mixed step
        twin.Step(false, (1, 16), (2, 3));
        twin.Step(false, (2, 1), (1, 5));

        // pure decode steps: the split decode kernel with its merge
        for (var i = 0; i < 20; i++)
        {
            twin.Step(false, (1, 1), (2, 1));
        }

        // a fork shares sequence 1's blocks; its first append copies the partly filled tail block
        var child = (int[])a.Clone();
        for (var i = 48; i < child.Length; i++)
        {
            child[i] = (child[i] + 11) % 509 + 3;
        }

        twin.Fork(1, 3, child);
        for (var i = 0; i < 10; i++)
        {
            twin.Step(false, (1, 1), (3, 1), (2, 1));
        }

        Assert.True(twin.RowsCompared > 70);
        Assert.True(
            twin.MaxAbsDifference <= StoriesRelativeTolerance * Math.Max(1, twin.MaxAbsReference),
            $"max |Δlogit| {twin.MaxAbsDifference:G4} over {twin.RowsCompared} rows (max |logit| {twin.MaxAbsReference:G4})");
        Assert.True(twin.ArgmaxMismatches <= twin.RowsCompared / 50, $"{twin.ArgmaxMismatches} of {twin.RowsCompared} rows changed their argmax");
    }

    [Fact]
    public void Synthetic1bShapedModelInF16MatchesTheCpuRunner()
    {
        fixture.RequireDevice();
        using var model = GgufLlamaLoader.Load(fixture.Synthetic1bPath);
        using var cpu = new CpuModelRunner(model);
        using var cuda = new CudaModelRunner(model, new CudaRunnerOptions { MaxBatchedTokens = 64, MaxSequences = 8 });
        var twin = new TwinRunnerHarness(cpu, cuda, numBlocks: 32, blockSize: 16, maxTokens: 64);
        var random = new Random(11);
        int[] Tokens(int n) => [1, .. Enumerable.Range(0, n - 1).Select(_ => random.Next(3, 32000))];
        twin.Start(1, Tokens(40), 24);
        twin.Start(2, Tokens(40), 17);
        twin.Step(true, (1, 24), (2, 17));
        for (var i = 0; i < 4; i++)
        {
            twin.Step(false, (1, 1), (2, 1));
        }

        Assert.True(
            twin.MaxAbsDifference <= SyntheticRelativeTolerance * Math.Max(1, twin.MaxAbsReference),
            $"max |Δlogit| {twin.MaxAbsDifference:G4} over {twin.RowsCompared} rows (max |logit| {twin.MaxAbsReference:G4})");
    }

    /// <summary>
    /// Decode steps replayed from captured graphs give the bits of the same steps launched one by one: shapes
    /// that recur are captured (at their eighth step), the block-table width doubling (16 → 32 → 64 → 128 tokens
    /// of context) and a third sequence joining and leaving make new shapes, and a prefill step between decode
    /// steps runs launch by launch.
    /// </summary>
    [Fact]
    public void DecodeGraphsGiveTheBitsOfLaunchByLaunchSteps()
    {
        fixture.RequireDevice();
        using var model = GgufLlamaLoader.Load(fixture.Stories16Path);
        using var eager = new CudaModelRunner(model, new CudaRunnerOptions { MaxBatchedTokens = 64, MaxSequences = 64, DecodeGraphs = false });
        using var graphs = new CudaModelRunner(model, new CudaRunnerOptions { MaxBatchedTokens = 64, MaxSequences = 64 });
        var twin = new TwinRunnerHarness(eager, graphs, numBlocks: 64, blockSize: 16, maxTokens: 64);
        var random = new Random(17);
        int[] Tokens(int n) => [1, .. Enumerable.Range(0, n - 1).Select(_ => random.Next(3, 512))];
        twin.Start(1, Tokens(140), 12);
        twin.Start(2, Tokens(140), 9);
        twin.Start(3, Tokens(140), 30);
        twin.Step(false, (1, 12), (2, 9));
        for (var i = 0; i < 90; i++)
        {
            twin.Step(false, (1, 1), (2, 1));
            if (i == 20)
            {
                twin.Step(false, (3, 30)); // a prefill between decode steps
            }

            if (i is > 25 and < 40)
            {
                twin.Step(false, (1, 1), (3, 1), (2, 1));
            }
        }

        Assert.Null(graphs.DecodeGraphProblem);
        Assert.Equal(0, eager.DecodeGraphCaptures);
        Assert.True(graphs.DecodeGraphCaptures >= 4, $"{graphs.DecodeGraphCaptures} captures");
        Assert.True(graphs.DecodeGraphReplays >= 50, $"{graphs.DecodeGraphReplays} replays");
        Assert.True(twin.RowsCompared > 150);
        Assert.True(twin.MaxAbsDifference == 0, $"max |Δlogit| {twin.MaxAbsDifference:G4} between replayed and launched steps");
    }

    [Fact]
    public void PlannedKvCacheIsAllocatedOnTheDevice()
    {
        fixture.RequireDevice();
        using var model = GgufLlamaLoader.Load(fixture.Stories16Path);
        using var cuda = new CudaModelRunner(model, new CudaRunnerOptions { MaxBatchedTokens = 256, MaxSequences = 16 });
        var blocks = cuda.PlanKvBlocks(16, fraction: 0.5);
        Assert.True(blocks > 0);
        cuda.AllocateKvCache(blocks, 16);
        Assert.Equal(blocks, cuda.NumKvBlocks);
        Assert.Equal(2L * 5 * 32 * 2, cuda.KvBytesPerToken); // K and V, 5 layers, kvDim 32, 2 bytes
    }
}
