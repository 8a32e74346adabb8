using System.Globalization;
using System.Runtime.Intrinsics;
using RawInfer.Cpu.Kernels;
using static RawInfer.Cpu.Tests.Kernels.KernelTestData;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// The choice between four rows and one row at a time in the single-sequence kernels: the F32 kernel gives the
/// same bits both ways (the Q8_0 kernel's both ways are in <see cref="Quantized.Q8_0ScaledRowsTests"/>), and the
/// choice follows the vendor and the override. In one collection with the Q8_0 tests: the switch is global.
/// </summary>
[Collection(KernelSwitches.Name)] // sets DecodeRowGrouping.FourRows
public sealed unsafe class DecodeRowGroupingTests
{
    [Theory]
    [InlineData(1, 16, 0)]
    [InlineData(4, 32, 0)]
    [InlineData(7, 48, 1)]
    [InlineData(13, 257, 2)]
    [InlineData(33, 1024, 5)]
    [InlineData(9, 15, 0)]
    public void F32_rows_one_at_a_time_give_the_bits_of_four_at_a_time(int rows, int cols, int rowStart)
    {
        if (!Vector512.IsHardwareAccelerated)
        {
            Assert.Skip("the grouping is in the AVX-512 kernel, which this CPU cannot run");
        }

        var w = Random(rows * cols, (rows * 131) + cols);
        var x = Random(cols, cols + 3);
        var four = Run(w, x, rows, cols, rowStart, fourRows: true);
        var one = Run(w, x, rows, cols, rowStart, fourRows: false);
        for (var r = 0; r < rows; r++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(four[r]) == BitConverter.SingleToInt32Bits(one[r]),
                $"row {r}: one row at a time {one[r]}, four {four[r]}");
        }

        Assert.All(four.Take(rowStart), v => Assert.True(float.IsNaN(v), "a row before the range was written"));
    }

    [Theory]
    [InlineData(null, "Other", false, true)]
    [InlineData(null, "Other", true, true)]
    [InlineData(null, "AmdBeforeZen5", false, false)]
    [InlineData(null, "AmdBeforeZen5", true, false)]
    [InlineData("", "AmdBeforeZen5", false, false)]
    [InlineData(null, "AmdZen5OrLater", false, true)]
    [InlineData(null, "AmdZen5OrLater", true, false)]
    [InlineData("4", "AmdBeforeZen5", true, true)]
    [InlineData("4", "AmdZen5OrLater", true, true)]
    [InlineData("1", "Other", false, false)]
    [InlineData("1", "AmdZen5OrLater", false, false)]
    public void The_choice_follows_the_processor_and_kernel_unless_overridden(
        string? overrideValue, string processor, bool quantized, bool fourRows) =>
        Assert.Equal(fourRows, DecodeRowGrouping.Choose(overrideValue, Enum.Parse<DecodeRowGrouping.ProcessorKind>(processor), quantized));

    [Theory]
    [InlineData("2")]
    [InlineData("four")]
    public void A_bad_override_names_the_variable_and_the_choices(string value)
    {
        var error = Assert.Throws<ArgumentException>(() => DecodeRowGrouping.Choose(value, DecodeRowGrouping.ProcessorKind.Other, quantized: false));
        Assert.Contains(DecodeRowGrouping.Variable, error.Message, StringComparison.Ordinal);
        Assert.Contains($"'{value}'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_processor_probe_agrees_with_the_kernel()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/proc/cpuinfo"))
        {
            Assert.Skip("compares with /proc/cpuinfo, which only Linux has");
        }

        var vendor = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("vendor_id", StringComparison.Ordinal));
        if (vendor is null)
        {
            Assert.Skip("/proc/cpuinfo names no vendor_id (not an x86 machine)");
        }

        Assert.Equal(vendor.EndsWith("AuthenticAMD", StringComparison.Ordinal), DecodeRowGrouping.VendorIsAmd());
        var family = File.ReadLines("/proc/cpuinfo").First(l => l.StartsWith("cpu family", StringComparison.Ordinal));
        Assert.Equal(int.Parse(family[(family.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim(), CultureInfo.InvariantCulture), DecodeRowGrouping.Family());
        var expected = !DecodeRowGrouping.VendorIsAmd() ? DecodeRowGrouping.ProcessorKind.Other
            : DecodeRowGrouping.Family() >= 0x1A ? DecodeRowGrouping.ProcessorKind.AmdZen5OrLater
            : DecodeRowGrouping.ProcessorKind.AmdBeforeZen5;
        Assert.Equal(expected, DecodeRowGrouping.Probe());
    }

    private static float[] Run(float[] w, float[] x, int rows, int cols, int rowStart, bool fourRows)
    {
        var y = new float[rows];
        Array.Fill(y, float.NaN);
        using var grouping = RowGrouping.Set(fourRows);
        fixed (float* pw = w)
        fixed (float* px = x)
        fixed (float* py = y)
        {
            MatVecF32.Vector512Path(pw, cols, px, py, rowStart, rows);
        }

        return y;
    }
}
