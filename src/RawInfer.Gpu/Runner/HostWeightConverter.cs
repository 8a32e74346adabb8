using System.Buffers.Binary;
using System.Runtime.InteropServices;
using RawInfer.Models;
using RawInfer.Models.Gguf;

namespace RawInfer.Gpu.Runner;

/// <summary>
/// Converts weight rows on the host into the 16-bit element type the device computes with, before upload.
/// F16 → F16 and BF16 → BF16 are byte copies; F32 rounds to nearest even; Q8_0 is dequantised (scale × int8,
/// exact in float32) and then rounded once, so a Q8_0 model costs one rounding, not two.
/// </summary>
public static unsafe class HostWeightConverter
{
    /// <summary>
    /// Converts rows <paramref name="firstRow"/> .. <paramref name="firstRow"/>+<paramref name="rowCount"/>-1 of
    /// <paramref name="source"/> into <paramref name="destination"/>: (rowCount, cols) elements of
    /// <paramref name="target"/> as raw 16-bit patterns, row-major.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The rows lie outside the tensor.</exception>
    /// <exception cref="ArgumentException">The destination is too small.</exception>
    /// <exception cref="NotSupportedException">The tensor's type has no conversion.</exception>
    public static void ConvertRows(in WeightTensor source, int firstRow, int rowCount, GpuElementType target, Span<ushort> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(firstRow + (long)rowCount, source.Rows, nameof(rowCount));
        var cols = source.Cols;
        var need = (long)rowCount * cols;
        if (destination.Length < need)
        {
            throw new ArgumentException($"{rowCount} rows of {cols} need {need} elements, the destination holds {destination.Length}", nameof(destination));
        }

        if (source.Type is not (TensorType.F32 or TensorType.F16 or TensorType.BF16 or TensorType.Q8_0))
        {
            throw new NotSupportedException($"no device conversion for {source.Type} weights");
        }

        var rowBytes = TensorEncoding.RowBytes(source.Type, cols);
        for (var r = 0; r < rowCount; r++)
        {
            var row = new ReadOnlySpan<byte>(source.Data + ((long)(firstRow + r) * rowBytes), rowBytes);
            ConvertRow(row, source.Type, target, destination.Slice(r * cols, cols));
        }
    }

    /// <summary>The tensor's elements as float32 (norm weights, which stay float32 on the device).</summary>
    public static float[] ToFloat32(in WeightTensor source)
    {
        var result = new float[checked((int)source.ElementCount)];
        var rowBytes = TensorEncoding.RowBytes(source.Type, source.Cols);
        for (var r = 0; r < source.Rows; r++)
        {
            var row = new ReadOnlySpan<byte>(source.Data + ((long)r * rowBytes), rowBytes);
            TensorEncoding.DecodeRow(row, source.Type, result.AsSpan(r * source.Cols, source.Cols));
        }

        return result;
    }

    /// <summary>float32 → the bit pattern of <paramref name="target"/>, round to nearest even.</summary>
    public static ushort FromFloat(float value, GpuElementType target) => target == GpuElementType.BF16
        ? TensorEncoding.ToBFloat16(value)
        : BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>The bit pattern of <paramref name="type"/> → float32 (exact).</summary>
    public static float ToFloat(ushort bits, GpuElementType type) => type == GpuElementType.BF16
        ? TensorEncoding.FromBFloat16(bits)
        : (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>One row of <paramref name="destination"/>.Length elements.</summary>
    private static void ConvertRow(ReadOnlySpan<byte> row, TensorType stored, GpuElementType target, Span<ushort> destination)
    {
        var cols = destination.Length;
        switch (stored)
        {
            case TensorType.F16 when target == GpuElementType.F16:
            case TensorType.BF16 when target == GpuElementType.BF16:
                // same bits: a copy (the files are little-endian, as is every machine we run on)
                MemoryMarshal.Cast<byte, ushort>(row[..(2 * cols)]).CopyTo(destination);
                break;
            case TensorType.F32:
                var floats = MemoryMarshal.Cast<byte, float>(row[..(4 * cols)]);
                for (var i = 0; i < cols; i++)
                {
                    destination[i] = FromFloat(floats[i], target);
                }

                break;
            case TensorType.F16:
                for (var i = 0; i < cols; i++)
                {
                    destination[i] = FromFloat((float)BinaryPrimitives.ReadHalfLittleEndian(row[(2 * i)..]), target);
                }

                break;
            case TensorType.BF16:
                for (var i = 0; i < cols; i++)
                {
                    destination[i] = FromFloat(TensorEncoding.FromBFloat16(BinaryPrimitives.ReadUInt16LittleEndian(row[(2 * i)..])), target);
                }

                break;
            case TensorType.Q8_0:
                for (var b = 0; b < cols / GgmlTypes.Q8_0BlockElements; b++)
                {
                    var block = row.Slice(b * GgmlTypes.Q8_0BlockBytes, GgmlTypes.Q8_0BlockBytes);
                    var scale = (float)BinaryPrimitives.ReadHalfLittleEndian(block);
                    var output = destination.Slice(b * GgmlTypes.Q8_0BlockElements, GgmlTypes.Q8_0BlockElements);
                    for (var i = 0; i < output.Length; i++)
                    {
                        output[i] = FromFloat(scale * (sbyte)block[2 + i], target);
                    }
                }

                break;
            default:
                throw new NotSupportedException($"no device conversion for {stored} weights");
        }
    }
}
