using RawInfer.Engine.Sampling;
using RawInfer.Gpu.ILGpu;
using Xunit;
using CpuRmsNorm = RawInfer.Cpu.Kernels.RmsNorm;
using static RawInfer.Gpu.Tests.ILGpu.IlgpuTestData;

namespace RawInfer.Gpu.Tests.ILGpu;

internal sealed partial class IlgpuKernelChecks
{
    public void RmsNorm(int rows, int dim, int seed)
    {
        var x = Random(rows * dim, seed, -3f, 3f);
        var weight = Random(dim, seed + 1, 0.5f, 1.5f);
        using var dout = _accelerator.Allocate1D<float>(rows * dim);
        using var dx = Upload(_accelerator, x);
        using var dweight = Upload(_accelerator, weight);

        kernels.RmsNorm(dout.View, dx.View, dweight.View, rows, dim, 1e-5f);

        var expected = new float[rows * dim];
        for (var r = 0; r < rows; r++)
        {
            CpuRmsNorm.Scalar(expected.AsSpan(r * dim, dim), x.AsSpan(r * dim, dim), weight, 1e-5f);
        }

        // only the order of the sum of squares differs (a tree here, a loop there)
        AssertClose(expected, Download(_accelerator, dout), 1e-6 * toleranceScale, 2e-6 * toleranceScale, "rmsnorm");
    }

    /// <summary>In place (output = x), as the runner uses it.</summary>
    public void RmsNormInPlace(int rows, int dim, int seed)
    {
        var x = Random(rows * dim, seed, -3f, 3f);
        var weight = Random(dim, seed + 1, 0.5f, 1.5f);
        using var dx = Upload(_accelerator, x);
        using var dweight = Upload(_accelerator, weight);

        kernels.RmsNorm(dx.View, dx.View, dweight.View, rows, dim, 1e-5f);

        var expected = new float[rows * dim];
        for (var r = 0; r < rows; r++)
        {
            CpuRmsNorm.Scalar(expected.AsSpan(r * dim, dim), x.AsSpan(r * dim, dim), weight, 1e-5f);
        }

        AssertClose(expected, Download(_accelerator, dx), 1e-6 * toleranceScale, 2e-6 * toleranceScale, "rmsnorm in place");
    }

    /// <summary>
    /// Rows with planted ties (the lowest index must win), a NaN that must never win, and a row of −∞ (0, as the
    /// engine's sampler answers), against <see cref="Sampler.ArgMax"/>.
    /// </summary>
    public void Argmax(int rows, int vocab, int seed)
    {
        var logits = Random(rows * vocab, seed, -10f, 10f);
        var random = new Random(seed + 1);
        for (var r = 0; r < rows; r++)
        {
            var row = logits.AsSpan(r * vocab, vocab);
            switch (r % 4)
            {
                case 1 when vocab > 2:
                    // a tie between two random positions at a new maximum
                    var first = random.Next(vocab);
                    var second = random.Next(vocab);
                    row[first] = 50f;
                    row[second] = 50f;
                    break;
                case 2 when vocab > 2:
                    row[1 + random.Next(vocab - 1)] = float.NaN;
                    break;
                case 3:
                    row.Fill(float.NegativeInfinity);
                    break;
                default:
                    break;
            }
        }

        using var dout = _accelerator.Allocate1D<int>(rows);
        using var dlogits = Upload(_accelerator, logits);

        kernels.Argmax(dout.View, dlogits.View, rows, vocab);

        var expected = new int[rows];
        for (var r = 0; r < rows; r++)
        {
            expected[r] = Sampler.ArgMax(logits.AsSpan(r * vocab, vocab));
        }

        Assert.Equal(expected, Download(_accelerator, dout));
    }
}
