using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using RawInfer.Cpu.Kernels.Quantized;
using RawInfer.Models;

namespace RawInfer.Cpu.Kernels;

/// <summary>Token-embedding lookup: one row of the table as float32, whatever the table's element type.</summary>
internal static class Embedding
{
    /// <summary>destination = table[row, :]. table: (vocab, dim); destination: (dim)</summary>
    public static unsafe void CopyRow(in WeightTensor table, int row, Span<float> destination)
    {
        if ((uint)row >= (uint)table.Rows || destination.Length != table.Cols)
        {
            ThrowOutOfRange(row, table.Rows);
        }

        switch (table.Type)
        {
            case TensorType.F32:
                new ReadOnlySpan<float>((float*)table.Data + ((long)row * table.Cols), table.Cols).CopyTo(destination);
                break;

            case TensorType.F16:
                MatVecF16.DequantizeRow(in table, row, destination);
                break;

            case TensorType.BF16:
                MatVecBF16.DequantizeRow(in table, row, destination);
                break;

            case TensorType.Q8_0:
                MatVecQ8_0.DequantizeRow(in table, row, destination);
                break;

            default:
                ThrowUnsupported(table.Type);
                break;
        }
    }

    /// <summary>True when <see cref="CopyRow"/> handles <paramref name="type"/>.</summary>
    public static bool Supports(TensorType type) =>
        type is TensorType.F32 or TensorType.F16 or TensorType.BF16 or TensorType.Q8_0;

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowOutOfRange(int row, int rows) =>
        throw new ArgumentOutOfRangeException(nameof(row), $"embedding row {row} outside 0..{rows - 1}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnsupported(TensorType type) =>
        throw new NotSupportedException($"CPU embedding lookup has no kernel for {type} tables");
}
