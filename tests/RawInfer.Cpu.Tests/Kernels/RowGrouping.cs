using RawInfer.Cpu.Kernels;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>Sets <see cref="DecodeRowGrouping.FourRows"/> and <see cref="DecodeRowGrouping.FourRowsQ8_0"/> for a test
/// and puts them back on dispose (tests that use it share the grouping's collection, so none runs beside another).</summary>
internal readonly struct RowGrouping : IDisposable
{
    private readonly bool _before;
    private readonly bool _beforeQ8_0;

    private RowGrouping(bool fourRows)
    {
        _before = DecodeRowGrouping.FourRows;
        _beforeQ8_0 = DecodeRowGrouping.FourRowsQ8_0;
        DecodeRowGrouping.FourRows = fourRows;
        DecodeRowGrouping.FourRowsQ8_0 = fourRows;
    }

    public static RowGrouping Set(bool fourRows) => new(fourRows);

    public void Dispose()
    {
        DecodeRowGrouping.FourRows = _before;
        DecodeRowGrouping.FourRowsQ8_0 = _beforeQ8_0;
    }
}
