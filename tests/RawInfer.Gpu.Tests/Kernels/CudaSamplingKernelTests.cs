using RawInfer.Engine.Sampling;
using Xunit;

namespace RawInfer.Gpu.Tests.Kernels;

/// <summary>
/// Argmax and top-k/top-p sampling on a GPU against the CPU sampler's definition (<see cref="SamplingReference"/>).
/// Logits are multiples of 1/4 so that many tokens tie, which exercises the tie rules. Skipped without a GPU.
/// </summary>
public sealed class CudaSamplingKernelTests(CudaKernelFixture gpu) : IClassFixture<CudaKernelFixture>
{
    // (temperature, topK, topP): unsorted draw, top-k, top-p, both, greedy, k = 1, top-k off by size, tiny p.
    private static readonly (float T, int K, float P)[] Settings =
    [
        (0.8f, 0, 1f), (1f, 40, 1f), (0.7f, 0, 0.9f), (1.3f, 50, 0.8f), (0f, 0, 1f), (1f, 1, 1f), (1f, int.MaxValue, 1f), (0.5f, 0, 0.05f),
    ];

    [Theory]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(32_000)]
    [InlineData(128_257)]
    public void Argmax_picks_the_lowest_index_of_the_maximum(int vocab)
    {
        var kernels = gpu.Require();
        const int rows = 5;
        var random = new Random(vocab);
        var logits = QuantisedLogits(random, rows * vocab);
        for (var r = 0; r < rows && vocab > 3; r++)
        {
            var row = logits.AsSpan(r * vocab, vocab);
            row[random.Next(vocab)] = 100f; // a planted maximum, tied with a later one in odd rows
            if (r % 2 == 1)
            {
                row[vocab - 1] = 100f;
            }

            row[random.Next(1, vocab)] = float.NaN;          // NaN never wins (away from index 0)
            row[random.Next(vocab)] = float.NegativeInfinity;
        }

        using var dLogits = gpu.Upload<float>(logits);
        using var dOut = gpu.Zeros<int>(rows);
        kernels.ArgMax(dOut.Pointer, dLogits.Pointer, rows, vocab, gpu.Stream!);
        var tokens = gpu.Download<int>(dOut, rows);

        for (var r = 0; r < rows; r++)
        {
            Assert.Equal(Sampler.ArgMax(logits.AsSpan(r * vocab, vocab)), tokens[r]);
        }
    }

    [Theory]
    [InlineData(17)]
    [InlineData(1_000)]
    [InlineData(32_000)]
    [InlineData(128_257)]
    public void Sampling_draws_the_candidate_whose_interval_holds_u(int vocab)
    {
        var kernels = gpu.Require();
        var random = new Random(vocab + 1);
        var rows = Settings.Length * 4;
        var logits = QuantisedLogits(random, rows * vocab);
        var temperature = new float[rows];
        var topK = new int[rows];
        var topP = new float[rows];
        var uniform = new float[rows];
        var expected = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            var (t, k, p) = Settings[r % Settings.Length];
            (temperature[r], topK[r], topP[r]) = (t, k, p);
            var row = logits.AsSpan(r * vocab, vocab).ToArray();
            if (t == 0f)
            {
                uniform[r] = (float)random.NextDouble();
                expected[r] = Sampler.ArgMax(row);
                continue;
            }

            // u at the middle of a randomly chosen candidate's interval: the answer is that candidate, with a
            // margin far above any rounding difference between the GPU's and the CPU's sums.
            var (ids, probabilities) = SamplingReference.Candidates(row, t, k, p);
            var cumulative = new double[ids.Length + 1];
            for (var i = 0; i < ids.Length; i++)
            {
                cumulative[i + 1] = cumulative[i] + probabilities[i];
            }

            var heavy = Enumerable.Range(0, ids.Length).Where(i => probabilities[i] > 1e-4).ToArray();
            var pick = heavy[random.Next(heavy.Length)];
            uniform[r] = (float)((cumulative[pick] + cumulative[pick + 1]) / 2 / cumulative[^1]);
            expected[r] = ids[pick];
            Assert.Equal(expected[r], SamplingReference.Sample(row, t, k, p, uniform[r]));
        }

        var tokens = Run(kernels, logits, temperature, topK, topP, uniform, rows, vocab);

        for (var r = 0; r < rows; r++)
        {
            Assert.True(expected[r] == tokens[r],
                $"row {r} ({Settings[r % Settings.Length]}, u {uniform[r]}): expected {expected[r]}, got {tokens[r]}");
        }
    }

    [Fact]
    public void Random_uniforms_agree_with_the_reference_away_from_interval_edges()
    {
        var kernels = gpu.Require();
        const int vocab = 5_003;
        var random = new Random(99);
        var rows = Settings.Length * 25;
        var logits = QuantisedLogits(random, rows * vocab);
        var temperature = new float[rows];
        var topK = new int[rows];
        var topP = new float[rows];
        var uniform = new float[rows];
        for (var r = 0; r < rows; r++)
        {
            (temperature[r], topK[r], topP[r]) = Settings[r % Settings.Length];
            uniform[r] = (float)random.NextDouble();
        }

        var tokens = Run(kernels, logits, temperature, topK, topP, uniform, rows, vocab);

        var compared = 0;
        for (var r = 0; r < rows; r++)
        {
            var row = logits.AsSpan(r * vocab, vocab).ToArray();
            if (NearAnEdge(row, temperature[r], topK[r], topP[r], uniform[r]))
            {
                continue; // within float rounding of a boundary: either neighbour is a correct answer
            }

            Assert.Equal(SamplingReference.Sample(row, temperature[r], topK[r], topP[r], uniform[r]), tokens[r]);
            compared++;
        }

        Assert.True(compared > rows * 9 / 10, $"only {compared} of {rows} rows were away from an edge");
    }

    private int[] Run(RawInfer.Gpu.Kernels.CudaKernels kernels, float[] logits, float[] temperature, int[] topK, float[] topP, float[] uniform, int rows, int vocab)
    {
        using var dLogits = gpu.Upload<float>(logits);
        using var dT = gpu.Upload<float>(temperature);
        using var dK = gpu.Upload<int>(topK);
        using var dP = gpu.Upload<float>(topP);
        using var dU = gpu.Upload<float>(uniform);
        using var dOut = gpu.Zeros<int>(rows);
        kernels.SampleTopKTopP(dOut.Pointer, dLogits.Pointer, dT.Pointer, dK.Pointer, dP.Pointer, dU.Pointer, rows, vocab, gpu.Stream!);
        return gpu.Download<int>(dOut, rows);
    }

    /// <summary>True when u·total or the top-p cut lies within 1e-5 of a cumulative boundary.</summary>
    private static bool NearAnEdge(float[] row, float t, int k, float p, float u)
    {
        if (t == 0f)
        {
            return false;
        }

        var kept = SamplingReference.Candidates(row, t, k, p);
        double total = kept.Probabilities.Sum(x => (double)x);
        if (p < 1f)
        {
            // the nucleus ends where the sorted cumulative sum first reaches p: near p before or at its last member
            var beforeLast = total - kept.Probabilities[^1];
            if (Math.Abs(total - p) < 1e-5 || Math.Abs(beforeLast - p) < 1e-5)
            {
                return true;
            }
        }

        double cumulative = 0;
        foreach (var x in kept.Probabilities)
        {
            cumulative += x;
            if (Math.Abs(cumulative - (u * total)) < 1e-5 * total)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Normal-ish logits rounded to quarters: many exact ties, as real vocabularies have among unlikely tokens.</summary>
    private static float[] QuantisedLogits(Random random, int count)
    {
        var values = new float[count];
        for (var i = 0; i < count; i++)
        {
            var normal = random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5;
            values[i] = MathF.Round((float)(normal * 6) * 4) / 4;
        }

        return values;
    }
}
