using RawInfer.Cpu.Kernels;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>Dot, Axpy and Add against double-precision scalar references.</summary>
public class VectorKernelTests
{
    public static TheoryData<Width, int> Cases => WidthsAndSizes();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dot_matches_reference(Width width, int n)
    {
        var a = Random(n, 1000 + n);
        var b = Random(n, 2000 + n);
        double expected = 0, magnitude = 0;
        for (var i = 0; i < n; i++)
        {
            expected += (double)a[i] * b[i];
            magnitude += Math.Abs((double)a[i] * b[i]);
        }

        var actual = width switch
        {
            Width.Scalar => Dot.Scalar(a, b, 0, 0f),
            Width.V128 => Dot.Vector128Path(a, b),
            Width.V256 => Dot.Vector256Path(a, b),
            Width.V512 => Dot.Vector512Path(a, b),
            _ => Dot.Compute(a, b),
        };

        // Float accumulation: error grows with the sum of |terms|; 1e-5 relative to it is ~100 ulps of slack.
        Assert.InRange(Math.Abs(actual - expected), 0, (1e-5 * magnitude) + 1e-7);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Axpy_matches_reference(Width width, int n)
    {
        var x = Random(n, 3000 + n);
        var y = Random(n, 4000 + n);
        const float a = 0.37f;
        var expected = new double[n];
        for (var i = 0; i < n; i++)
        {
            expected[i] = y[i] + ((double)a * x[i]);
        }

        switch (width)
        {
            case Width.Scalar: Axpy.Scalar(a, x, y, 0); break;
            case Width.V128: Axpy.Vector128Path(a, x, y); break;
            case Width.V256: Axpy.Vector256Path(a, x, y); break;
            case Width.V512: Axpy.Vector512Path(a, x, y); break;
            default: Axpy.Compute(a, x, y); break;
        }

        // One rounding (FMA) or two (multiply, add): within 2 ulps of values of magnitude ≤ 1.4.
        AssertClose(expected, y, _ => 3e-7);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Add_matches_reference(Width width, int n)
    {
        var x = Random(n, 5000 + n);
        var y = Random(n, 6000 + n);
        var expected = new double[n];
        for (var i = 0; i < n; i++)
        {
            expected[i] = (double)x[i] + y[i];
        }

        switch (width)
        {
            case Width.Scalar: Add.Scalar(x, y, 0); break;
            case Width.V128: Add.Vector128Path(x, y); break;
            case Width.V256: Add.Vector256Path(x, y); break;
            case Width.V512: Add.Vector512Path(x, y); break;
            default: Add.InPlace(x, y); break;
        }

        // A single float rounding of a value ≤ 2 in magnitude.
        AssertClose(expected, x, _ => 2.5e-7);
    }
}
