using RawInfer.Cpu.Kernels;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>RMSNorm, softmax and SwiGLU against double-precision scalar references.</summary>
public class NormKernelTests
{
    public static TheoryData<Width, int> Cases => WidthsAndSizes();

    [Theory]
    [MemberData(nameof(Cases))]
    public void RmsNorm_matches_reference(Width width, int n)
    {
        var x = Random(n, 100 + n, -3f, 3f);
        var w = Random(n, 200 + n, 0.5f, 1.5f);
        const float eps = 1e-5f;
        double ss = 0;
        foreach (var v in x)
        {
            ss += (double)v * v;
        }

        var scale = 1.0 / Math.Sqrt((ss / n) + eps);
        var expected = new double[n];
        for (var i = 0; i < n; i++)
        {
            expected[i] = w[i] * x[i] * scale;
        }

        var o = new float[n];
        switch (width)
        {
            case Width.Scalar: RmsNorm.Scalar(o, x, w, eps); break;
            case Width.V128: RmsNorm.Vector128Path(o, x, w, eps); break;
            case Width.V256: RmsNorm.Vector256Path(o, x, w, eps); break;
            case Width.V512: RmsNorm.Vector512Path(o, x, w, eps); break;
            default: RmsNorm.Compute(o, x, w, eps); break;
        }

        // Relative 1e-5: the float sum of squares over ≤ 1025 terms plus three roundings.
        AssertClose(expected, o, i => (1e-5 * Math.Abs(expected[i])) + 1e-7);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RmsNorm_in_place_matches_out_of_place(Width width, int n)
    {
        _ = width;
        var x = Random(n, 300 + n, -3f, 3f);
        var w = Random(n, 400 + n, 0.5f, 1.5f);
        var o = new float[n];
        RmsNorm.Compute(o, x, w, 1e-5f);
        RmsNorm.Compute(x, x, w, 1e-5f);
        Assert.Equal(o, x);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Softmax_matches_reference(Width width, int n)
    {
        // A wide range of scores, including a large one, checks the max shift.
        var x = Random(n, 500 + n, -20f, 20f);
        x[n / 2] = 80f;
        var max = x.Max();
        var expected = new double[n];
        double sum = 0;
        for (var i = 0; i < n; i++)
        {
            expected[i] = Math.Exp(x[i] - (double)max);
            sum += expected[i];
        }

        for (var i = 0; i < n; i++)
        {
            expected[i] /= sum;
        }

        switch (width)
        {
            case Width.Scalar: Softmax.Scalar(x); break;
            case Width.V128: Softmax.Vector128Path(x); break;
            case Width.V256: Softmax.Vector256Path(x); break;
            case Width.V512: Softmax.Vector512Path(x); break;
            default: Softmax.InPlace(x); break;
        }

        // The vectorized exp is accurate to a few ulps; the float sum adds ~n·ulp relative.
        AssertClose(expected, x, i => (2e-5 * expected[i]) + 1e-9);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void SwiGlu_matches_reference(Width width, int n)
    {
        var gate = Random(n, 700 + n, -8f, 8f);
        var up = Random(n, 800 + n, -2f, 2f);
        if (n > 2)
        {
            gate[0] = -100f; // exp(100) overflows float: silu must still be ~0, not NaN
            gate[1] = 100f;
        }

        var expected = new double[n];
        for (var i = 0; i < n; i++)
        {
            double g = gate[i];
            expected[i] = g / (1 + Math.Exp(-g)) * up[i];
        }

        switch (width)
        {
            case Width.Scalar: SwiGlu.Scalar(gate, up, 0); break;
            case Width.V128: SwiGlu.Vector128Path(gate, up); break;
            case Width.V256: SwiGlu.Vector256Path(gate, up); break;
            case Width.V512: SwiGlu.Vector512Path(gate, up); break;
            default: SwiGlu.InPlace(gate, up); break;
        }

        AssertClose(expected, gate, i => (1e-5 * Math.Abs(expected[i])) + 1e-7);
    }
}
