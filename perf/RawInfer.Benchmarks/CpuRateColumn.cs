using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace RawInfer.Benchmarks;

/// <summary>
/// A throughput column: units handled per operation (taken from the case's parameters) divided by the mean
/// time per operation, scaled to units per second. Used for GB/s of weights streamed and tokens/s decoded.
/// </summary>
public sealed class CpuRateColumn : IColumn
{
    private readonly Func<BenchmarkCase, double> _unitsPerOperation;
    private readonly double _scale;

    public CpuRateColumn(string name, string legend, double scale, Func<BenchmarkCase, double> unitsPerOperation)
    {
        ColumnName = name;
        Legend = legend;
        _scale = scale;
        _unitsPerOperation = unitsPerOperation;
    }

    public string Id => "CpuRate." + ColumnName;

    public string ColumnName { get; }

    public string Legend { get; }

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var meanNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (meanNanoseconds is not > 0)
        {
            return "-";
        }

        var perSecond = _unitsPerOperation(benchmarkCase) / (meanNanoseconds.Value * 1e-9) / _scale;
        return perSecond.ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
