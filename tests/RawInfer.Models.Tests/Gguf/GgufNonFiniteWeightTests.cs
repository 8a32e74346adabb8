using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Models.Tests.Gguf;

/// <summary>
/// An Inf or NaN fp16 value in a weight (an F16 element, a Q8_0 block scale) is a corrupt file: the loader refuses
/// the tensor, naming it, the element's place and its byte offset, instead of handing kernels a value their cheap
/// half conversion does not cover. Finite extremes (the largest half, subnormals, negative zero) load.
/// </summary>
public sealed class GgufNonFiniteWeightTests
{
    private const int Rows = 3;
    private const int Cols = 64;

    [Theory]
    [InlineData((ushort)0x7C00, 0)]     // +Inf, the first element
    [InlineData((ushort)0xFC00, 77)]    // -Inf in row 1
    [InlineData((ushort)0x7E00, 191)]   // quiet NaN, the last element
    [InlineData((ushort)0x7C01, 130)]   // signalling NaN
    public void An_F16_weight_holding_inf_or_nan_is_refused_with_its_place(ushort bits, int element)
    {
        var encoded = Encode(TensorType.F16);
        BitConverter.TryWriteBytes(encoded.AsSpan(element * 2, 2), bits);
        using var file = GgufFile.Parse(Write(TensorType.F16, encoded));
        var e = Assert.Throws<ModelFormatException>(() => file.GetWeight("m"));
        Assert.Equal("m", e.Field);
        Assert.Contains($"element {element} (row {element / Cols}, column {element % Cols}) is Inf or NaN", e.Message, StringComparison.Ordinal);
        Assert.Equal(file.FindTensor("m")!.FileOffset + (element * 2), e.Offset);
        Assert.Contains($"at offset {e.Offset}", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((ushort)0x7C00, 0)]
    [InlineData((ushort)0xFE00, 5)] // block 5 = row 2's second block (two blocks per 64-column row)
    public void A_Q8_0_weight_with_an_inf_or_nan_block_scale_is_refused(ushort bits, int block)
    {
        var encoded = Encode(TensorType.Q8_0);
        BitConverter.TryWriteBytes(encoded.AsSpan(block * GgmlTypes.Q8_0BlockBytes, 2), bits);
        using var file = GgufFile.Parse(Write(TensorType.Q8_0, encoded));
        var e = Assert.Throws<ModelFormatException>(() => file.GetWeight("m"));
        Assert.Contains($"the scale of block {block} (row {block / 2}) is Inf or NaN", e.Message, StringComparison.Ordinal);
        Assert.Equal(file.FindTensor("m")!.FileOffset + (block * GgmlTypes.Q8_0BlockBytes), e.Offset);
    }

    [Fact]
    public void Finite_extremes_load()
    {
        var encoded = Encode(TensorType.F16);
        ushort[] extremes = [0x7BFF, 0xFBFF, 0x0001, 0x8001, 0x8000, 0x03FF, 0x0400];
        for (var i = 0; i < extremes.Length; i++)
        {
            BitConverter.TryWriteBytes(encoded.AsSpan(i * 40, 2), extremes[i]);
        }

        using var file = GgufFile.Parse(Write(TensorType.F16, encoded));
        var weight = file.GetWeight("m");
        Assert.Equal((Rows, Cols, TensorType.F16), (weight.Rows, weight.Cols, weight.Type));
    }

    [Fact]
    public void Inf_in_quants_of_a_Q8_0_block_is_just_bytes()
    {
        // Only the scale is a half; the 32 quant bytes may hold any pattern, 0x7C 0x00 included.
        var encoded = Encode(TensorType.Q8_0);
        encoded[2] = 0x00;
        encoded[3] = 0x7C;
        using var file = GgufFile.Parse(Write(TensorType.Q8_0, encoded));
        Assert.Equal(TensorType.Q8_0, file.GetWeight("m").Type);
    }

    private static byte[] Encode(TensorType type)
    {
        var random = new Random(7);
        var rowBytes = TensorEncoding.RowBytes(type, Cols);
        var encoded = new byte[Rows * rowBytes];
        var row = new float[Cols];
        for (var r = 0; r < Rows; r++)
        {
            for (var c = 0; c < Cols; c++)
            {
                row[c] = (random.NextSingle() * 4) - 2;
            }

            TensorEncoding.EncodeRow(row, type, encoded.AsSpan(r * rowBytes, rowBytes));
        }

        return encoded;
    }

    private static byte[] Write(TensorType type, byte[] encoded)
    {
        using var stream = new MemoryStream();
        using (var w = new GgufWriter(stream, leaveOpen: true))
        {
            w.AddMetadata("general.name", "non-finite");
            w.AddTensor("m", type, Cols, Rows);
            w.WriteHeader();
            w.WriteTensorData(encoded);
            w.Finish();
        }

        return stream.ToArray();
    }
}
