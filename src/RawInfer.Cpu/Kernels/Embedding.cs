using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
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

            // F16, BF16 and Q8_0 rows are dequantized here, one case each.
            default:
                ThrowUnsupported(table.Type);
                break;
        }
    }

    /// <summary>True when <see cref="CopyRow"/> handles <paramref name="type"/>.</summary>
    public static bool Supports(TensorType type) => type == TensorType.F32;

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowOutOfRange(int row, int rows) =>
        throw new ArgumentOutOfRangeException(nameof(row), $"embedding row {row} outside 0..{rows - 1}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnsupported(TensorType type) =>
        throw new NotSupportedException($"CPU embedding lookup has no kernel for {type} tables");
}
