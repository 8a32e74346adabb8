using RawInfer.Cpu.Kernels.Quantized;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>
/// Where the in-register tiles of F16, BF16 and Q8_0 rows prefetch (<see cref="WidenInRegisters.PrefetchLead"/>,
/// <see cref="WidenInRegisters.PrefetchOffset"/>): each row's own stream a lead ahead of the place being read,
/// carried into the same row of the next tile past the row's end; and, for rows a multiple of 4 KiB long, never
/// into the L1 set being read. Only the arithmetic is checked: a prefetch is a hint, and the products' bits with
/// either lead are covered by <see cref="WidenGemmTests"/> (rows of 2,048 F16 columns are 4 KiB long).
/// </summary>
public sealed class PrefetchLeadTests
{
    private const int Line = 64;
    private const int SetsOfL1 = 64; // 32 or 48 KiB of 8 or 12 ways: addresses 4 KiB apart share a set

    [Theory]
    [InlineData(4096, WidenInRegisters.AliasedRowLead)]  // F16 rows of 2,048 columns
    [InlineData(8192, WidenInRegisters.AliasedRowLead)]  // F16 rows of 4,096 columns
    [InlineData(1536, 1536)]                             // F16 rows of 768 columns: the next tile
    [InlineData(11264, 11264)]                           // F16 rows of 5,632 columns
    [InlineData(2176, 2176)]                             // Q8_0 rows of 2,048 columns
    [InlineData(6144, 6144)]                             // 2 KiB past a multiple of 4 KiB: two sets, four ways each
    public void Rows_a_multiple_of_4_KiB_long_lead_by_a_kilobyte_and_others_by_a_whole_row(long rowBytes, long lead)
    {
        Assert.True(WidenInRegisters.ShortLeadForAliasedRows, "the default");
        Assert.Equal(lead, WidenInRegisters.PrefetchLead(rowBytes));
    }

    [Theory]
    [InlineData(1536)]
    [InlineData(2176)]
    [InlineData(4096)]
    [InlineData(8192)]
    [InlineData(11264)]
    public void Each_row_is_prefetched_its_lead_ahead_in_its_own_stream(long rowBytes)
    {
        var lead = WidenInRegisters.PrefetchLead(rowBytes);
        foreach (var (place, r, _, at) in Prefetches(rowBytes))
        {
            // row r's stream: its bytes in this tile, then its bytes in the next tile (8 rows on)
            var tile = at / (8 * rowBytes);
            var row = at % (8 * rowBytes) / rowBytes;
            var stream = (tile * rowBytes) + (at % rowBytes);
            Assert.True(row == r && tile <= 1, $"rows of {rowBytes} bytes, place {place}: row {r}'s prefetch lands in row {row} of tile {tile}");
            Assert.Equal(place + lead, stream);
        }
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(8192)]
    public void Rows_a_multiple_of_4_KiB_long_are_never_prefetched_into_the_set_being_read(long rowBytes)
    {
        foreach (var (_, _, read, prefetched) in Prefetches(rowBytes))
        {
            Assert.NotEqual(read / Line % SetsOfL1, prefetched / Line % SetsOfL1);
        }
    }

    /// <summary>
    /// For each place a tile's loop prefetches at (a line apart through a row) and each of its 8 rows: the byte it
    /// reads there and the byte it prefetches, both from the tile's start.
    /// </summary>
    private static IEnumerable<(long Place, int Row, long Read, long Prefetched)> Prefetches(long rowBytes)
    {
        var lead = WidenInRegisters.PrefetchLead(rowBytes);
        for (long place = 0; place < rowBytes; place += Line)
        {
            var fromRowZero = WidenInRegisters.PrefetchOffset(rowBytes, place + lead);
            for (var r = 0; r < 8; r++)
            {
                yield return (place, r, (r * rowBytes) + place, fromRowZero + (r * rowBytes));
            }
        }
    }
}
