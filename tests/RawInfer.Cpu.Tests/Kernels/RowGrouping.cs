using RawInfer.Cpu.Kernels;

namespace RawInfer.Cpu.Tests.Kernels;

/// <summary>Sets <see cref="DecodeRowGrouping.FourRows"/> for a test and puts it back on dispose (tests that use it
/// share the grouping's collection, so none runs beside another).</summary>
internal readonly struct RowGrouping : IDisposable
{
    private readonly bool _before;

    private RowGrouping(bool fourRows)
    {
        _before = DecodeRowGrouping.FourRows;
        DecodeRowGrouping.FourRows = fourRows;
    }

    public static RowGrouping Set(bool fourRows) => new(fourRows);

    public void Dispose() => DecodeRowGrouping.FourRows = _before;
}
