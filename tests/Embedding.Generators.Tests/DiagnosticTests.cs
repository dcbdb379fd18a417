using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using Xunit;

namespace Embedding.Generators.Tests;

/// <summary>
/// Each diagnostic the generator reports: its ID, severity, the line and text it points at, and
/// whether the kernel set is still emitted. Also keeps docs/diagnostics.md in step with the descriptors.
/// </summary>
public sealed class DiagnosticTests
{
    private const string Usings = "using Embedding.Native;\n\nnamespace Consumer;\n\n";

    [Theory]
    [InlineData("0")]
    [InlineData("-3")]
    [InlineData("int.MinValue")]
    public void Diagnostics_ReportsEmb0001ForDimensionNotPositive(string dimension)
    {
        string attribute = "EmbeddingKernels(4, " + dimension + ")";
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, "EMB0001", DiagnosticSeverity.Error, attribute);
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("EmbeddingTypes.None", "EMB0007")]
    [InlineData("(EmbeddingTypes)16", "EMB0008")]
    [InlineData("EmbeddingTypes.All | (EmbeddingTypes)64", "EMB0008")]
    public void Diagnostics_ReportsBadTableTypes(string types, string id)
    {
        string attribute = "EmbeddingKernels(4, Types = " + types + ")";
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, id, DiagnosticSeverity.Error, attribute);
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.None", "EMB0007")]
    [InlineData("Quantized = (QuantizedBitWidths)1", "EMB0009")]
    [InlineData("Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.All | (QuantizedBitWidths)16", "EMB0009")]
    public void Diagnostics_ReportsBadQuantizedWidths(string named, string id)
    {
        string attribute = "EmbeddingKernels(4, " + named + ")";
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, id, DiagnosticSeverity.Error, attribute);
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void Diagnostics_AcceptsQuantizedKernelsWithoutTableTypes()
    {
        (Compilation output, var generatorDiagnostics, GeneratorRunResult result) = GeneratorHarness.RunAndUpdate(
            Usings + "[EmbeddingKernels(4, Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.Eight)]\npublic sealed partial class Kernels;\n");

        Assert.Empty(generatorDiagnostics);
        Assert.Equal(
            ["Consumer.Kernels.QuantizedBag.F32.D4.g.cs", "Consumer.Kernels.g.cs"],
            result.GeneratedSources.Select(source => source.HintName).Order(StringComparer.Ordinal));
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void Diagnostics_NamedTypesSelectTheGatherGroups()
    {
        string source = Usings + "[EmbeddingKernels(4, Types = EmbeddingTypes.BFloat16 | EmbeddingTypes.Float64)]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        Assert.Empty(result.Diagnostics);
        Assert.Equal(
            ["Consumer.Kernels.Gather.16Bit.D4.g.cs", "Consumer.Kernels.Gather.64Bit.D4.g.cs", "Consumer.Kernels.g.cs"],
            result.GeneratedSources.Select(source => source.HintName).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("65537")]
    [InlineData("1 << 20")]
    [InlineData("int.MaxValue")]
    public void Diagnostics_ReportsEmb0002ForDimensionTooLarge(string dimension)
    {
        string attribute = "EmbeddingKernels(" + dimension + ", 8)";
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, "EMB0002", DiagnosticSeverity.Error, attribute);
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void Diagnostics_AcceptsLargestSpecialisedDimension()
    {
        GeneratorRunResult result = GeneratorHarness.Run(Usings + "[EmbeddingKernels(65536)]\npublic sealed partial class Kernels;\n");

        Assert.Empty(result.Diagnostics);
        Assert.Contains(result.GeneratedSources, source => source.HintName == "Consumer.Kernels.Gather.32Bit.D65536.g.cs");
    }

    [Fact]
    public void Diagnostics_ReportsEmb0003ForDuplicateDimensionAndStillEmitsItOnce()
    {
        const string attribute = "EmbeddingKernels(16, 5, 16)";
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, "EMB0003", DiagnosticSeverity.Warning, attribute);
        Assert.Contains("16", result.Diagnostics[0].GetMessage(), StringComparison.Ordinal);
        Assert.Equal(
            ["Consumer.Kernels.Bag.F32.D16.g.cs", "Consumer.Kernels.Bag.F32.D5.g.cs", "Consumer.Kernels.Gather.32Bit.D16.g.cs", "Consumer.Kernels.Gather.32Bit.D5.g.cs", "Consumer.Kernels.ScatterAdd.F32.D16.g.cs", "Consumer.Kernels.ScatterAdd.F32.D5.g.cs", "Consumer.Kernels.g.cs"],
            GeneratorHarness.Sources(result).Keys);
        Assert.Contains("new int[] { 5, 16 }", GeneratorHarness.Sources(result)["Consumer.Kernels.g.cs"], StringComparison.Ordinal);
    }

    [Fact]
    public void Diagnostics_ReportsEmb0004ForClassNotPartial()
    {
        string source = Usings + "[EmbeddingKernels(8)]\npublic sealed class Kernels\n{\n}\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, "EMB0004", DiagnosticSeverity.Error, "Kernels", marker: "class Kernels");
        Assert.Empty(result.GeneratedSources);
    }

    public static TheoryData<string, string> UnsupportedShapes => new()
    {
        { "nested", "public partial class Outer\n{\n    [EmbeddingKernels(8)]\n    public sealed partial class Kernels;\n}\n" },
        { "generic", "[EmbeddingKernels(8)]\npublic sealed partial class Kernels<T>;\n" },
        { "static", "[EmbeddingKernels(8)]\npublic static partial class Kernels;\n" },
        { "abstract", "[EmbeddingKernels(8)]\npublic abstract partial class Kernels;\n" },
        { "own base class", "public class KernelBase\n{\n}\n\n[EmbeddingKernels(8)]\npublic partial class Kernels : KernelBase;\n" },
        // A file-local class cannot be completed from the generated file: the generator's
        // `internal partial class Kernels` would declare a second, unrelated type.
        { "file-local", "[EmbeddingKernels(8)]\nfile sealed partial class Kernels;\n" },
        // AttributeTargets.Class admits record classes, which the generated `partial class` cannot complete.
        { "record", "[EmbeddingKernels(8)]\npublic sealed partial record Kernels;\n" },
    };

    [Theory]
    [MemberData(nameof(UnsupportedShapes))]
    public void Diagnostics_ReportsEmb0005ForUnsupportedTypeShape(string shape, string declaration)
    {
        string source = Usings + declaration;

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, "EMB0005", DiagnosticSeverity.Error, "Kernels", marker: "partial " + (shape == "record" ? "record" : "class") + " Kernels", because: shape);
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("EmbeddingKernels")]
    [InlineData("EmbeddingKernels()")]
    [InlineData("EmbeddingKernels(new int[0])")]
    public void Diagnostics_ReportsEmb0006ForNoDimensions(string attribute)
    {
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        AssertSingle(result, source, "EMB0006", DiagnosticSeverity.Warning, attribute);
        Assert.Empty(result.GeneratedSources);
    }

    [Theory]
    [InlineData("EmbeddingKernels(null)")]
    [InlineData("EmbeddingKernels(default)")]
    [InlineData("EmbeddingKernels((int[])null!)")]
    public void Diagnostics_ReportsEmb0006ForNullDimensionsWithoutThrowing(string attribute)
    {
        string source = Usings + "[" + attribute + "]\npublic sealed partial class Kernels;\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        Assert.True(result.Exception is null, $"the generator threw: {result.Exception}");
        AssertSingle(result, source, "EMB0006", DiagnosticSeverity.Warning, attribute);
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void Diagnostics_WarningCanBeSuppressedWithPragma()
    {
        string source = Usings + "#pragma warning disable EMB0003\n[EmbeddingKernels(8, 8)]\n#pragma warning restore EMB0003\npublic sealed partial class Kernels;\n";

        (_, var generatorDiagnostics, GeneratorRunResult result) = GeneratorHarness.RunAndUpdate(source);

        Assert.Equal(4, result.GeneratedSources.Length);
        Assert.True(
            !generatorDiagnostics.Any(d => d.Id == "EMB0003" && !d.IsSuppressed),
            "EMB0003 is reported despite '#pragma warning disable EMB0003': " + string.Join("; ", generatorDiagnostics));
    }

    [Theory]
    [InlineData("public sealed partial class Kernels;")]
    [InlineData("internal partial class Kernels;")]
    [InlineData("partial class Kernels : EmbeddingKernelSet;")]
    [InlineData("public sealed partial class Kernels\n{\n    public int Extra => 1;\n}")]
    public void Diagnostics_ReportsNothingForValidInput(string declaration)
    {
        (Compilation output, var generatorDiagnostics, GeneratorRunResult result) =
            GeneratorHarness.RunAndUpdate(Usings + "[EmbeddingKernels(1, 8, 130)]\n" + declaration + "\n");

        Assert.Empty(generatorDiagnostics);
        Assert.Empty(result.Diagnostics);
        Assert.Equal(10, result.GeneratedSources.Length);
        Assert.Empty(output.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void Diagnostics_ReportsEveryProblemOfOneClass()
    {
        const string attribute = "EmbeddingKernels(0, 70000, 8, 8)";
        string source = Usings + "[" + attribute + "]\npublic static class Kernels\n{\n}\n";

        GeneratorRunResult result = GeneratorHarness.Run(source);

        Assert.Equal(
            ["EMB0001", "EMB0002", "EMB0003", "EMB0004", "EMB0005"],
            result.Diagnostics.Select(d => d.Id).Order(StringComparer.Ordinal));
        Assert.Empty(result.GeneratedSources);
    }

    [Fact]
    public void Diagnostics_ErrorsAreNotConfigurable()
    {
        foreach (DiagnosticDescriptor descriptor in Descriptors())
        {
            bool notConfigurable = descriptor.CustomTags.Contains(WellKnownDiagnosticTags.NotConfigurable);
            Assert.True(
                notConfigurable == (descriptor.DefaultSeverity == DiagnosticSeverity.Error),
                $"{descriptor.Id}: errors (and only errors) should be NotConfigurable");
            Assert.True(descriptor.IsEnabledByDefault, descriptor.Id);
        }
    }

    [Fact]
    public void Diagnostics_DocsTableMatchesDescriptors()
    {
        Dictionary<string, string[]> rows = File.ReadAllLines(DocsPath())
            .Where(line => line.StartsWith("| EMB", StringComparison.Ordinal))
            .Select(line => line.Trim().Trim('|').Split('|').Select(cell => cell.Trim()).ToArray())
            .ToDictionary(cells => cells[0], StringComparer.Ordinal);

        DiagnosticDescriptor[] descriptors = Descriptors();
        Assert.Equal(descriptors.Select(d => d.Id).Order(StringComparer.Ordinal), rows.Keys.Order(StringComparer.Ordinal));
        foreach (DiagnosticDescriptor descriptor in descriptors)
        {
            string[] cells = rows[descriptor.Id];
            Assert.Equal(descriptor.DefaultSeverity.ToString(), cells[1]);
            Assert.Equal(descriptor.Title.ToString(), cells[2]);
        }
    }

    private static void AssertSingle(
        GeneratorRunResult result, string source, string id, DiagnosticSeverity severity, string spanText, string? marker = null, string? because = null)
    {
        Diagnostic diagnostic = Assert.Single(result.Diagnostics);
        string context = because is null ? id : id + " (" + because + ")";
        Assert.True(id == diagnostic.Id, $"{context}: got {diagnostic}");
        Assert.Equal(severity, diagnostic.Severity);

        FileLinePositionSpan span = diagnostic.Location.GetLineSpan();
        Assert.Equal(GeneratorHarness.SourcePath(0), span.Path);
        Assert.Equal(GeneratorHarness.LineOf(source, marker ?? spanText), span.StartLinePosition.Line);
        Assert.Equal(spanText, source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
        Assert.DoesNotContain("{", diagnostic.GetMessage(), StringComparison.Ordinal);
    }

    /// <summary>The descriptors, read by reflection so the generator need not expose its internals.</summary>
    private static DiagnosticDescriptor[] Descriptors()
    {
        Type type = typeof(EmbeddingKernelGenerator).Assembly.GetType("Embedding.Generators.DiagnosticDescriptors", throwOnError: true)!;
        return type.GetProperties(BindingFlags.Public | BindingFlags.Static)
            .Where(property => property.PropertyType == typeof(DiagnosticDescriptor))
            .Select(property => (DiagnosticDescriptor)property.GetValue(null)!)
            .ToArray();
    }

    private static string DocsPath([CallerFilePath] string thisFile = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "..", "docs", "diagnostics.md"));
}
