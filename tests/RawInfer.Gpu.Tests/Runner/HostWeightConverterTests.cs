using System.Runtime.InteropServices;
using RawInfer.Gpu.Runner;
using RawInfer.Models;
using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// Host conversions before upload, against the scalar references in <see cref="TensorEncoding"/> (decode to
/// float32, then one round-to-nearest-even) and a few hand-checked roundings.
/// </summary>
public sealed unsafe class HostWeightConverterTests
{
    public static TheoryData<TensorType, GpuElementType, int> Cases()
    {
        var data = new TheoryData<TensorType, GpuElementType, int>();
        foreach (var target in new[] { GpuElementType.F16, GpuElementType.BF16 })
        {
            foreach (var cols in new[] { 1, 17, 257 })
            {
                data.Add(TensorType.F32, target, cols);
                data.Add(TensorType.F16, target, cols);
                data.Add(TensorType.BF16, target, cols);
            }

            data.Add(TensorType.Q8_0, target, 32);
            data.Add(TensorType.Q8_0, target, 96);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void RowsMatchDecodeThenRound(TensorType stored, GpuElementType target, int cols)
    {
        const int Rows = 5;
        var random = new Random(cols + (int)stored);
        var values = new float[Rows * cols];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = ((2 * random.NextSingle()) - 1) * 3;
        }

        var rowBytes = TensorEncoding.RowBytes(stored, cols);
        var bytes = GC.AllocateArray<byte>(Rows * rowBytes, pinned: true);
        for (var r = 0; r < Rows; r++)
        {
            TensorEncoding.EncodeRow(values.AsSpan(r * cols, cols), stored, bytes.AsSpan(r * rowBytes, rowBytes));
        }

        fixed (byte* p = bytes)
        {
            var tensor = new WeightTensor(p, stored, Rows, cols);

            // rows 1..3 only: the offset into the tensor must be honoured
            var converted = new ushort[3 * cols];
            HostWeightConverter.ConvertRows(tensor, 1, 3, target, converted);
            var decoded = new float[cols];
            for (var r = 0; r < 3; r++)
            {
                TensorEncoding.DecodeRow(bytes.AsSpan((r + 1) * rowBytes, rowBytes), stored, decoded);
                for (var c = 0; c < cols; c++)
                {
                    var expected = target == GpuElementType.F16
                        ? BitConverter.HalfToUInt16Bits((Half)decoded[c])
                        : TensorEncoding.ToBFloat16(decoded[c]);
                    Assert.Equal(expected, converted[(r * cols) + c]);
                }
            }
        }
    }

    [Theory]
    [InlineData(1.0f, GpuElementType.F16, (ushort)0x3C00)]
    [InlineData(1.00048828125f, GpuElementType.F16, (ushort)0x3C00)]   // 1 + 2^-11: a tie, rounds to the even 1.0
    [InlineData(1.00146484375f, GpuElementType.F16, (ushort)0x3C02)]   // 1 + 3·2^-11: a tie, rounds up to even
    [InlineData(70000f, GpuElementType.F16, (ushort)0x7C00)]           // past 65,504: +inf
    [InlineData(-2.5f, GpuElementType.BF16, (ushort)0xC020)]
    [InlineData(1.00390625f, GpuElementType.BF16, (ushort)0x3F80)]      // 1 + 2^-8: a tie, rounds to the even 1.0
    [InlineData(1.01171875f, GpuElementType.BF16, (ushort)0x3F82)]      // 1 + 3·2^-8: a tie, rounds up to even
    public void RoundingIsToNearestEven(float value, GpuElementType target, ushort expected)
    {
        Assert.Equal(expected, HostWeightConverter.FromFloat(value, target));
    }

    [Fact]
    public void SameTypeIsABitCopy()
    {
        // NaN payloads and subnormals survive a same-type copy unchanged
        ushort[] bits = [0x7E01, 0x0001, 0x8000, 0x3C00, 0xFBFF];
        var bytes = GC.AllocateArray<byte>(bits.Length * 2, pinned: true);
        MemoryMarshal.AsBytes(bits.AsSpan()).CopyTo(bytes);
        fixed (byte* p = bytes)
        {
            foreach (var (stored, target) in new[] { (TensorType.F16, GpuElementType.F16), (TensorType.BF16, GpuElementType.BF16) })
            {
                var output = new ushort[bits.Length];
                HostWeightConverter.ConvertRows(new WeightTensor(p, stored, 1, bits.Length), 0, 1, target, output);
                Assert.Equal(bits, output);
            }
        }
    }

    [Fact]
    public void Q8_0DequantisesScaleTimesQuant()
    {
        // one block: scale 0.5 (fp16 0x3800), quants -128..-97
        var block = GC.AllocateArray<byte>(GgmlTypes.Q8_0BlockBytes, pinned: true);
        block[0] = 0x00;
        block[1] = 0x38;
        for (var i = 0; i < 32; i++)
        {
            block[2 + i] = (byte)(sbyte)(-128 + i);
        }

        fixed (byte* p = block)
        {
            var output = new ushort[32];
            HostWeightConverter.ConvertRows(new WeightTensor(p, TensorType.Q8_0, 1, 32), 0, 1, GpuElementType.F16, output);
            for (var i = 0; i < 32; i++)
            {
                Assert.Equal(0.5f * (-128 + i), HostWeightConverter.ToFloat(output[i], GpuElementType.F16));
            }
        }
    }

    [Fact]
    public void BadRangesAndSmallDestinationsAreRefused()
    {
        var bytes = GC.AllocateArray<byte>(4 * 8, pinned: true);
        fixed (byte* p = bytes)
        {
            var tensor = new WeightTensor(p, TensorType.F32, 2, 4);
            Assert.Throws<ArgumentOutOfRangeException>(() => HostWeightConverter.ConvertRows(tensor, 1, 2, GpuElementType.F16, new ushort[8]));
            Assert.Throws<ArgumentException>(() => HostWeightConverter.ConvertRows(tensor, 0, 2, GpuElementType.F16, new ushort[7]));
        }
    }
}
