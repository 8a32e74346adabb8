using System.Buffers.Binary;

namespace RawInfer.Models.Gguf;

/// <summary>
/// Row conversions between float32 and the stored weight types: F16 and BF16 round to nearest even; Q8_0 is
/// llama.cpp's layout (per block of 32: fp16 scale d = max|x|/127, then 32 int8 q = round(x/d), halves away
/// from zero). Used by the GGUF writer and as the scalar reference for the CPU kernels.
/// </summary>
public static class TensorEncoding
{
    /// <summary>Bytes of one row of <paramref name="cols"/> elements of <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentException">Q8_0 with cols not a multiple of 32.</exception>
    public static int RowBytes(TensorType type, int cols)
    {
        if (type == TensorType.Q8_0 && cols % GgmlTypes.Q8_0BlockElements != 0)
        {
            throw new ArgumentException($"Q8_0 rows need a multiple of 32 columns, not {cols}", nameof(cols));
        }

        return checked((int)GgmlTypes.RowBytes(type, cols));
    }

    /// <summary>Encodes one row of floats into <paramref name="dst"/> (<see cref="RowBytes"/> bytes).</summary>
    public static void EncodeRow(ReadOnlySpan<float> src, TensorType type, Span<byte> dst)
    {
        int need = RowBytes(type, src.Length);
        if (dst.Length < need)
        {
            throw new ArgumentException($"{type} row of {src.Length} needs {need} bytes, got {dst.Length}", nameof(dst));
        }

        switch (type)
        {
            case TensorType.F32:
                for (int i = 0; i < src.Length; i++)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(dst[(4 * i)..], src[i]);
                }

                break;
            case TensorType.F16:
                for (int i = 0; i < src.Length; i++)
                {
                    BinaryPrimitives.WriteHalfLittleEndian(dst[(2 * i)..], (Half)src[i]);
                }

                break;
            case TensorType.BF16:
                for (int i = 0; i < src.Length; i++)
                {
                    BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], ToBFloat16(src[i]));
                }

                break;
            case TensorType.Q8_0:
                for (int b = 0; b < src.Length / GgmlTypes.Q8_0BlockElements; b++)
                {
                    EncodeQ8_0Block(src.Slice(b * GgmlTypes.Q8_0BlockElements, GgmlTypes.Q8_0BlockElements),
                        dst.Slice(b * GgmlTypes.Q8_0BlockBytes, GgmlTypes.Q8_0BlockBytes));
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    /// <summary>Decodes one row of <paramref name="dst"/>.Length elements from <paramref name="src"/>.</summary>
    public static void DecodeRow(ReadOnlySpan<byte> src, TensorType type, Span<float> dst)
    {
        int need = RowBytes(type, dst.Length);
        if (src.Length < need)
        {
            throw new ArgumentException($"{type} row of {dst.Length} needs {need} bytes, got {src.Length}", nameof(src));
        }

        switch (type)
        {
            case TensorType.F32:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                }

                break;
            case TensorType.F16:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                }

                break;
            case TensorType.BF16:
                for (int i = 0; i < dst.Length; i++)
                {
                    dst[i] = FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]));
                }

                break;
            case TensorType.Q8_0:
                for (int b = 0; b < dst.Length / GgmlTypes.Q8_0BlockElements; b++)
                {
                    var block = src.Slice(b * GgmlTypes.Q8_0BlockBytes, GgmlTypes.Q8_0BlockBytes);
                    float d = (float)BinaryPrimitives.ReadHalfLittleEndian(block);
                    for (int i = 0; i < GgmlTypes.Q8_0BlockElements; i++)
                    {
                        dst[(b * GgmlTypes.Q8_0BlockElements) + i] = d * (sbyte)block[2 + i];
                    }
                }

                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }

    /// <summary>float32 → bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x0040);
        }

        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>bfloat16 bits → float32 (exact: the bits become the high half).</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    private static void EncodeQ8_0Block(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0;
        foreach (float v in x)
        {
            amax = Math.Max(amax, Math.Abs(v));
        }

        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        BinaryPrimitives.WriteHalfLittleEndian(block, (Half)d);
        for (int i = 0; i < x.Length; i++)
        {
            block[2 + i] = (byte)(sbyte)MathF.Round(x[i] * id, MidpointRounding.AwayFromZero);
        }
    }
}
