using RawInfer.Cpu.Kernels.Quantized;

namespace RawInfer.Cpu.Tests.Quantized;

/// <summary>
/// The even/odd input layout of the 16-bit weight kernels: the vector <see cref="PairedInput.Prepare"/> writes
/// exactly what its element-by-element definition writes, for widths with and without a partial last group
/// (whose columns the kernels read from the plain input, so nothing is written there).
/// </summary>
public sealed unsafe class PairedInputTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(768)]
    [InlineData(2048)]
    [InlineData(2051)]
    public void Prepare_matches_its_definition(int cols)
    {
        var random = new Random(cols);
        var x = new float[cols];
        for (var i = 0; i < cols; i++)
        {
            x[i] = (random.NextSingle() * 2) - 1;
        }

        var length = PairedInput.PairedLength(cols);
        var expected = new float[length + 1];
        var actual = new float[length + 1];
        expected[length] = actual[length] = float.NaN; // nothing written past the whole groups
        fixed (float* px = x)
        fixed (float* pe = expected)
        fixed (float* pa = actual)
        {
            PairedInput.PrepareScalar(px, cols, pe);
            PairedInput.Prepare(px, cols, pa);
        }

        Assert.Equal(expected, actual);
        if (PairedInput.GroupSize > 0 && length > 0)
        {
            // the layout itself: a group's evens, then its odds
            Assert.Equal(x[2], actual[1]);
            Assert.Equal(x[1], actual[PairedInput.GroupSize / 2]);
        }
    }
}
