using System;
using System.Globalization;
using System.Linq;
using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// GB/s of useful bytes (rows read + rows written, index bytes not counted), from the median time.
/// Each benchmark class declares <c>public static double UsefulBytes(int dim)</c> (or with the
/// parameters it needs, by name), so the bytes are defined next to the workload. A parameter named
/// <c>method</c> receives the benchmark method's name, for classes whose methods move different bytes.
/// </summary>
public sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Useful bytes (rows read + rows written) per second, from the median";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        BenchmarkReport? report = summary[benchmarkCase];
        double? medianNs = report?.ResultStatistics?.Median;
        MethodInfo? bytes = benchmarkCase.Descriptor.Type.GetMethod("UsefulBytes", BindingFlags.Public | BindingFlags.Static);
        if (medianNs is null || bytes is null)
        {
            return "-";
        }

        object?[] arguments = bytes.GetParameters()
            .Select(parameter => string.Equals(parameter.Name, "method", StringComparison.Ordinal)
                ? benchmarkCase.Descriptor.WorkloadMethod.Name
                : benchmarkCase.Parameters.Items.First(item => string.Equals(item.Name, parameter.Name, StringComparison.OrdinalIgnoreCase)).Value)
            .ToArray();
        double useful = (double)bytes.Invoke(null, arguments)!;
        return (useful / medianNs.Value).ToString("F2", CultureInfo.InvariantCulture);
    }
}
