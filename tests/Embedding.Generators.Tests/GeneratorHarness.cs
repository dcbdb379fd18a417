using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Embedding.Native;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace Embedding.Generators.Tests;

/// <summary>
/// Builds consumer compilations and runs <see cref="EmbeddingKernelGenerator"/> over them the way
/// the compiler does, with step tracking on so the caching tests can read each step's reason.
/// </summary>
internal static class GeneratorHarness
{
    /// <summary>Where consumer sources pretend to live; generated text must never mention it.</summary>
    public static readonly string SourceRoot = Path.Combine(Path.GetTempPath(), "embedding-consumer-sources");

    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    /// <summary>Every trusted platform assembly of the running runtime, plus Embedding.Native.</summary>
    public static ImmutableArray<MetadataReference> References { get; } = LoadReferences();

    /// <summary>The version the generator stamps into <c>[GeneratedCode]</c>.</summary>
    public static string GeneratorVersion { get; } =
        typeof(EmbeddingKernelGenerator).Assembly.GetName().Version?.ToString() ?? "0.0.0.0";

    public static string SourcePath(int index) => Path.Combine(SourceRoot, "Source" + index + ".cs");

    public static SyntaxTree Parse(string source, int index = 0) =>
        CSharpSyntaxTree.ParseText(source, ParseOptions, SourcePath(index));

    /// <summary>
    /// A consumer compilation as the compiler sees it with the generator attached: EMB0100, which
    /// the compiler reports on every <c>[EmbeddingKernels]</c>, is suppressed, as
    /// <see cref="GeneratorAttachedSuppressor"/> does in a real build (a bare
    /// <see cref="Compilation"/> runs no suppressors; <see cref="SuppressorTests"/> covers it).
    /// </summary>
    public static CSharpCompilation CreateCompilation(params string[] sources)
    {
        CSharpCompilation compilation = CreateCompilationWithoutGenerator(sources);
        return compilation.WithOptions(compilation.Options.WithSpecificDiagnosticOptions(
            [KeyValuePair.Create(GeneratorAttachedSuppressor.SuppressedDiagnosticId, ReportDiagnostic.Suppress)]));
    }

    /// <summary>A consumer compilation as the compiler sees it without the generator.</summary>
    public static CSharpCompilation CreateCompilationWithoutGenerator(params string[] sources) =>
        CSharpCompilation.Create(
            "Consumer" + Guid.NewGuid().ToString("N"),
            sources.Select((source, i) => Parse(source, i)),
            References,
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                optimizationLevel: OptimizationLevel.Release,
                nullableContextOptions: NullableContextOptions.Enable,
                deterministic: true));

    public static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create(
            [new EmbeddingKernelGenerator().AsSourceGenerator()],
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Runs the generator once over <paramref name="sources"/>.</summary>
    public static GeneratorRunResult Run(params string[] sources) =>
        CreateDriver().RunGenerators(CreateCompilation(sources)).GetRunResult().Results.Single();

    /// <summary>Runs the generator and returns the compilation with the generated trees added.</summary>
    public static (Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, GeneratorRunResult Result) RunAndUpdate(params string[] sources)
    {
        GeneratorDriver driver = CreateDriver().RunGeneratorsAndUpdateCompilation(
            CreateCompilation(sources), out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        return (output, diagnostics, driver.GetRunResult().Results.Single());
    }

    /// <summary>Hint name → text of every generated source, in hint-name order.</summary>
    public static SortedDictionary<string, string> Sources(GeneratorRunResult result)
    {
        var sources = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (GeneratedSourceResult source in result.GeneratedSources)
        {
            sources.Add(source.HintName, source.SourceText.ToString());
        }

        return sources;
    }

    /// <summary>Replaces the generator version in <c>[GeneratedCode]</c> with <c>%VERSION%</c>.</summary>
    public static string NormaliseVersion(string text) =>
        text.Replace("\"Embedding.Generators\", \"" + GeneratorVersion + "\"", "\"Embedding.Generators\", \"%VERSION%\"", StringComparison.Ordinal);

    /// <summary>Zero-based line of the first occurrence of <paramref name="marker"/> in <paramref name="source"/>.</summary>
    public static int LineOf(string source, string marker)
    {
        int position = source.IndexOf(marker, StringComparison.Ordinal);
        Assert.True(position >= 0, $"marker '{marker}' not in source");
        return source.AsSpan(0, position).Count('\n');
    }

    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        string trusted = (string?)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")
            ?? throw new InvalidOperationException("The runtime did not report its trusted platform assemblies.");
        return trusted.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append(typeof(EmbeddingKernelSet).Assembly.Location)
            .Distinct(StringComparer.Ordinal)
            .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path))
            .ToImmutableArray();
    }
}
