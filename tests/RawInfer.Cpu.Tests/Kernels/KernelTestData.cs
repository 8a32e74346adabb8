using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>Which implementation of a kernel a test calls: one SIMD width directly, or the public dispatcher.</summary>
public enum Width
{
    Scalar,
    V128,
    V256,
    V512,
    Dispatch,
}

internal static class KernelTestData
{
    public static readonly int[] Sizes = { 1, 17, 257, 1025 };

    /// <summary>Widths this machine can run (an unaccelerated width would silently run a software fallback).</summary>
    public static IEnumerable<Width> SupportedWidths()
    {
        yield return Width.Scalar;
        if (Vector128.IsHardwareAccelerated)
        {
            yield return Width.V128;
        }

        if (Vector256.IsHardwareAccelerated)
        {
            yield return Width.V256;
        }

        if (Vector512.IsHardwareAccelerated)
        {
            yield return Width.V512;
        }

        yield return Width.Dispatch;
    }

    public static TheoryData<Width, int> WidthsAndSizes()
    {
        var data = new TheoryData<Width, int>();
        foreach (var width in SupportedWidths())
        {
            foreach (var size in Sizes)
            {
                data.Add(width, size);
            }
        }

        return data;
    }

    /// <summary>Uniform values in [lo, hi) from a fixed seed (the seed mixes in the size so sizes differ).</summary>
    public static float[] Random(int n, int seed, float lo = -1f, float hi = 1f)
    {
        var random = new Random(seed);
        var values = new float[n];
        for (var i = 0; i < n; i++)
        {
            values[i] = lo + ((hi - lo) * (float)random.NextDouble());
        }

        return values;
    }

    /// <summary>Asserts |actual - expected| ≤ tolerance element-wise, naming the first bad index.</summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, Func<int, double> tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            var error = Math.Abs(expected[i] - actual[i]);
            Assert.True(
                error <= tolerance(i),
                $"index {i}: expected {expected[i]:R}, got {actual[i]:R} (error {error:E2} > {tolerance(i):E2})");
        }
    }
}
