using System;
using System.Globalization;
using System.Linq;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// The median of the same method with one parameter at a reference value (say Threads = 1) over this
/// row's median, every other parameter equal: a speedup read across rows, where BenchmarkDotNet's
/// Ratio column only compares methods.
/// </summary>
public sealed class SpeedupColumn(string parameter, object referenceValue) : IColumn
{
    public string Id => $"{nameof(SpeedupColumn)}.{parameter}";
    public string ColumnName => "Speedup";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => $"Median at {parameter} = {referenceValue} over this row's median (same method and other parameters)";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        BenchmarkCase? reference = summary.BenchmarksCases.FirstOrDefault(other =>
            other.Descriptor.Equals(benchmarkCase.Descriptor) &&
            other.Parameters.Items.All(item => item.Name == parameter
                ? Equals(item.Value, referenceValue)
                : Equals(item.Value, benchmarkCase.Parameters[item.Name])));
        double? median = summary[benchmarkCase]?.ResultStatistics?.Median;
        double? referenceMedian = reference is null ? null : summary[reference]?.ResultStatistics?.Median;
        return median is null || referenceMedian is null
            ? "-"
            : (referenceMedian.Value / median.Value).ToString("F2", CultureInfo.InvariantCulture);
    }
}
