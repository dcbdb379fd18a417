using System;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using Embedding.Native;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Xunit;

namespace Embedding.Generators.Tests;

/// <summary>
/// EMB0100: without the generator (a plain ProjectReference to Embedding.Native) the compiler
/// stops at <c>[EmbeddingKernels]</c> and says what to add; with it, the generator assembly's
/// <see cref="GeneratorAttachedSuppressor"/> suppresses the diagnostic.
/// </summary>
public sealed class SuppressorTests
{
    private const string Source = """
        using Embedding.Native;

        namespace Consumer;

        [EmbeddingKernels(48)]
        internal sealed partial class MyKernels;
        """;

    [Fact]
    public void WithoutTheGenerator_UsingTheAttributeIsAnErrorThatNamesTheGeneratorReference()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilationWithoutGenerator(Source);

        Diagnostic diagnostic = Assert.Single(compilation.GetDiagnostics(), d => d.Id == GeneratorAttachedSuppressor.SuppressedDiagnosticId);
        Assert.Equal(DiagnosticSeverity.Error, diagnostic.Severity);
        Assert.Equal("EmbeddingKernels(48)", Source.Substring(diagnostic.Location.SourceSpan.Start, diagnostic.Location.SourceSpan.Length));
        string message = diagnostic.GetMessage();
        Assert.Contains("Embedding.Generators.csproj", message, StringComparison.Ordinal);
        Assert.Contains("OutputItemType=\"Analyzer\" ReferenceOutputAssembly=\"false\"", message, StringComparison.Ordinal);
        Assert.Contains("docs/project-reference.md", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WithTheGenerator_TheSuppressorSuppressesEmb0100()
    {
        CompilationWithAnalyzers compilation = GeneratorHarness.CreateCompilationWithoutGenerator(Source).WithAnalyzers(
            [new GeneratorAttachedSuppressor()],
            new CompilationWithAnalyzersOptions(
                new AnalyzerOptions([]), onAnalyzerException: null, concurrentAnalysis: false,
                logAnalyzerExecutionTime: false, reportSuppressedDiagnostics: true));

        ImmutableArray<Diagnostic> diagnostics = await compilation.GetAllDiagnosticsAsync();

        Diagnostic diagnostic = Assert.Single(diagnostics, d => d.Id == GeneratorAttachedSuppressor.SuppressedDiagnosticId);
        Assert.True(diagnostic.IsSuppressed);
        Assert.Empty(diagnostics.Where(d => !d.IsSuppressed && d.Severity >= DiagnosticSeverity.Warning));
    }

    [Fact]
    public void TheSuppressorShipsWithTheGenerator()
    {
        Assert.Same(typeof(EmbeddingKernelGenerator).Assembly, typeof(GeneratorAttachedSuppressor).Assembly);
    }

    [Fact]
    public void TheAttributeConstructorCarriesTheSuppressedId()
    {
        ConstructorInfo constructor = typeof(EmbeddingKernelsAttribute).GetConstructor([typeof(int[])])!;
        ExperimentalAttribute? experimental = constructor.GetCustomAttribute<ExperimentalAttribute>();

        Assert.NotNull(experimental);
        Assert.Equal(GeneratorAttachedSuppressor.SuppressedDiagnosticId, experimental.DiagnosticId);
        Assert.Null(typeof(EmbeddingKernelsAttribute).GetCustomAttribute<ExperimentalAttribute>());
    }
}
