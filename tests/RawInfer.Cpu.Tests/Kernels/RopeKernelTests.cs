using RawInfer.Cpu.Kernels;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>RoPE tables and rotation against the per-pair formula of llama2.c.</summary>
public class RopeKernelTests
{
    public static TheoryData<Width, int> Cases => WidthsAndSizes();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rotate_matches_pairwise_reference(Width width, int pairs)
    {
        // Head size 2·pairs when pairs is small, else 64 (several heads): both table layouts are exercised.
        var headDim = pairs <= 17 ? 2 * pairs : 64;
        var n = 2 * pairs;
        n -= n % headDim;
        const int position = 37;
        var inverseFrequencies = new float[headDim / 2];
        for (var i = 0; i < inverseFrequencies.Length; i++)
        {
            inverseFrequencies[i] = 1f / MathF.Pow(10000f, 2 * i / (float)headDim);
        }

        var cos = new float[n];
        var sin = new float[n];
        Rope.FillTables(position, inverseFrequencies, cos, sin);

        var v = Random(n, 900 + pairs);
        var expected = new double[n];
        for (var i = 0; i < n; i += 2)
        {
            // llama2.c: pair index within the head decides the frequency.
            var freq = 1.0 / Math.Pow(10000.0, (i % headDim) / (double)headDim);
            var angle = position * freq;
            expected[i] = (v[i] * Math.Cos(angle)) - (v[i + 1] * Math.Sin(angle));
            expected[i + 1] = (v[i] * Math.Sin(angle)) + (v[i + 1] * Math.Cos(angle));
        }

        switch (width)
        {
            case Width.Scalar: Rope.Scalar(v, cos, sin, 0); break;
            case Width.V128: Rope.Vector128Path(v, cos, sin); break;
            case Width.V256: Rope.Vector256Path(v, cos, sin); break;
            case Width.V512: Rope.Vector512Path(v, cos, sin); break;
            default: Rope.Rotate(v, cos, sin); break;
        }

        // The angle is formed in float (position · freq) as llama2.c does: ~1e-5 absolute at angle 37.
        AssertClose(expected, v, _ => 2e-5);
    }

    [Fact]
    public void All_widths_agree_bit_for_bit()
    {
        // No FMA in the rotation, so every width rounds exactly like the scalar llama2.c expression.
        const int n = 1026;
        var cos = Random(n, 11);
        var sin = Random(n, 12);
        var reference = Random(n, 13);
        Rope.Scalar(reference, cos, sin, 0);
        foreach (var width in SupportedWidths())
        {
            var v = Random(n, 13);
            switch (width)
            {
                case Width.V128: Rope.Vector128Path(v, cos, sin); break;
                case Width.V256: Rope.Vector256Path(v, cos, sin); break;
                case Width.V512: Rope.Vector512Path(v, cos, sin); break;
                default: Rope.Rotate(v, cos, sin); break;
            }

            Assert.Equal(reference, v);
        }
    }
}
