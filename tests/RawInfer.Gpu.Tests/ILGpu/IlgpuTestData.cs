using ILGPU;
using ILGPU.Runtime;
using Xunit;

namespace RawInfer.Gpu.Tests.ILGpu;

/// <summary>Seeded inputs, device round trips and tolerance checks shared by the ILGPU kernel tests.</summary>
internal static class IlgpuTestData
{
    /// <summary>Uniform values in [lo, hi) from a fixed seed.</summary>
    public static float[] Random(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var random = new Random(seed);
        var values = new float[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = lo + ((hi - lo) * random.NextSingle());
        }

        return values;
    }

    /// <summary>A device copy of <paramref name="data"/> (at least one element: ILGPU rejects empty buffers).</summary>
    public static MemoryBuffer1D<T, Stride1D.Dense> Upload<T>(Accelerator accelerator, T[] data)
        where T : unmanaged =>
        data.Length == 0 ? accelerator.Allocate1D<T>(1) : accelerator.Allocate1D(data);

    /// <summary>Waits for the accelerator and copies the whole buffer back.</summary>
    public static T[] Download<T>(Accelerator accelerator, MemoryBuffer1D<T, Stride1D.Dense> buffer)
        where T : unmanaged
    {
        accelerator.Synchronize();
        return buffer.GetAsArray1D();
    }

    /// <summary>
    /// |actual − expected| ≤ absolute + relative · |expected| element by element; the message names the first
    /// index that fails and the worst error.
    /// </summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double absolute, double relative, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var worst = 0.0;
        var firstBad = -1;
        for (var i = 0; i < expected.Length; i++)
        {
            var error = Math.Abs(actual[i] - expected[i]);
            worst = Math.Max(worst, error);
            if (firstBad < 0 && !(error <= absolute + (relative * Math.Abs(expected[i]))))
            {
                firstBad = i;
            }
        }

        if (firstBad >= 0)
        {
            Assert.Fail($"{what}: element {firstBad} is {actual[firstBad]}, expected {expected[firstBad]} "
                + $"(tolerance {absolute} + {relative}·|x|; worst error {worst})");
        }
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double absolute, double relative, string what)
    {
        var widened = new double[expected.Length];
        for (var i = 0; i < expected.Length; i++)
        {
            widened[i] = expected[i];
        }

        AssertClose(widened, actual, absolute, relative, what);
    }

    /// <summary>0, 1, …, n − 1 in a seeded random order.</summary>
    public static int[] Permutation(int n, int seed)
    {
        var values = new int[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = i;
        }

        new Random(seed).Shuffle(values);
        return values;
    }
}
