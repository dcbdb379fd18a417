using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Xunit;

namespace Embedding.Generators.Tests;

/// <summary>
/// The pipeline caches: edits that do not touch an attributed class leave the specs unchanged and
/// the outputs cached; changing a dimension re-emits. The specs hold only plain values.
/// </summary>
public sealed class IncrementalTests
{
    private const string KernelsSource = """
        using Embedding.Native;

        namespace Consumer;

        [EmbeddingKernels(5, 16)]
        public sealed partial class Kernels;
        """;

    private const string OtherSource = """
        namespace Consumer;

        public static class Helpers
        {
            public static int Twice(int value) => value * 2;
        }
        """;

    private const string InvalidKernelsSource = """
        using Embedding.Native;

        namespace Consumer;

        [EmbeddingKernels(0, 5, 5)]
        public sealed partial class Kernels;
        """;

    private static readonly IncrementalStepRunReason[] CachedOrUnchanged = [IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged];

    [Fact]
    public void Incremental_RerunWithSameCompilationIsCached()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        GeneratorRunResult result = driver.RunGenerators(compilation.Clone()).GetRunResult().Results.Single();

        AssertStep(result, EmbeddingKernelGenerator.StepNames.Parse, CachedOrUnchanged);
        AssertStep(result, EmbeddingKernelGenerator.StepNames.Specs, CachedOrUnchanged);
        AssertOutputsCached(result);
    }

    [Fact]
    public void Incremental_AddingUnrelatedClassLeavesSpecsCached()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        CSharpCompilation edited = compilation.AddSyntaxTrees(
            GeneratorHarness.Parse("namespace Consumer;\n\npublic sealed class Unrelated\n{\n}\n", index: 2));
        GeneratorRunResult result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertStep(result, EmbeddingKernelGenerator.StepNames.Specs, CachedOrUnchanged);
        AssertOutputsCached(result);
    }

    [Fact]
    public void Incremental_EditingMethodBodyElsewhereLeavesSpecsCached()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        CSharpCompilation edited = Replace(compilation, 1, OtherSource.Replace("value * 2", "value + value", StringComparison.Ordinal));
        GeneratorRunResult result = driver.RunGenerators(edited).GetRunResult().Results.Single();

        AssertStep(result, EmbeddingKernelGenerator.StepNames.Specs, CachedOrUnchanged);
        AssertOutputsCached(result);
    }

    [Fact]
    public void Incremental_AddingMemberToAttributedClassLeavesSpecsUnchanged()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        string edited = KernelsSource.Replace(
            "public sealed partial class Kernels;", "public sealed partial class Kernels\n{\n    public int Extra => 1;\n}", StringComparison.Ordinal);
        GeneratorRunResult result = driver.RunGenerators(Replace(compilation, 0, edited)).GetRunResult().Results.Single();

        AssertStep(result, EmbeddingKernelGenerator.StepNames.Specs, CachedOrUnchanged);
        AssertOutputsCached(result);
    }

    [Theory]
    [InlineData("[EmbeddingKernels(5, 17)]")]
    [InlineData("[EmbeddingKernels(5)]")]
    [InlineData("[EmbeddingKernels(5, 16, 33)]")]
    [InlineData("[EmbeddingKernels(5, 16, Quantized = QuantizedBitWidths.Four)]")]
    public void Incremental_ChangingDimensionsOrQuantizedWidthsMarksSpecsModified(string attribute)
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        string edited = KernelsSource.Replace("[EmbeddingKernels(5, 16)]", attribute, StringComparison.Ordinal);
        GeneratorRunResult result = driver.RunGenerators(Replace(compilation, 0, edited)).GetRunResult().Results.Single();

        AssertStep(result, EmbeddingKernelGenerator.StepNames.Specs, [IncrementalStepRunReason.Modified]);
        Assert.Contains(
            result.TrackedOutputSteps.SelectMany(step => step.Value).SelectMany(run => run.Outputs),
            output => output.Reason == IncrementalStepRunReason.Modified);
    }

    [Fact]
    public void Incremental_RenamingClassMarksSpecsModified()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource);
        GeneratorDriver driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);

        string edited = KernelsSource.Replace("class Kernels", "class RenamedKernels", StringComparison.Ordinal);
        GeneratorRunResult result = driver.RunGenerators(Replace(compilation, 0, edited)).GetRunResult().Results.Single();

        AssertStep(result, EmbeddingKernelGenerator.StepNames.Specs, [IncrementalStepRunReason.Modified]);
        Assert.Contains(result.GeneratedSources, source => source.HintName == "Consumer.RenamedKernels.g.cs");
    }

    [Fact]
    public void SpecGraph_HoldsNoSymbolsSyntaxOrCompilation()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource, OtherSource, InvalidKernelsSource.Replace("class Kernels", "class BadKernels", StringComparison.Ordinal));
        GeneratorRunResult result = GeneratorHarness.CreateDriver().RunGenerators(compilation).GetRunResult().Results.Single();

        object[] values = StepOutputs(result, EmbeddingKernelGenerator.StepNames.Parse)
            .Concat(StepOutputs(result, EmbeddingKernelGenerator.StepNames.Specs))
            .ToArray();

        Assert.Contains(values, value => value.GetType().Name == "ParseResult");
        Assert.Contains(values, value => value.GetType().Name == "KernelSetSpec");
        Assert.Contains(result.Diagnostics, diagnostic => diagnostic.Id == "EMB0001");
        foreach (object value in values)
        {
            ForbiddenReferenceWalker.AssertClean(value);
        }
    }

    [Fact]
    public void SpecGraph_WalkerFindsForbiddenReferences()
    {
        CSharpCompilation compilation = GeneratorHarness.CreateCompilation(KernelsSource);
        INamedTypeSymbol symbol = compilation.GetTypeByMetadataName("Consumer.Kernels")!;

        Assert.Throws<Xunit.Sdk.TrueException>(() => ForbiddenReferenceWalker.AssertClean(new { Nested = new object[] { 1, compilation } }));
        Assert.Throws<Xunit.Sdk.TrueException>(() => ForbiddenReferenceWalker.AssertClean(Tuple.Create("x", symbol)));
        Assert.Throws<Xunit.Sdk.TrueException>(() => ForbiddenReferenceWalker.AssertClean(ImmutableArray.Create(compilation.SyntaxTrees[0].GetRoot().GetFirstToken())));
    }

    private static IEnumerable<object> StepOutputs(GeneratorRunResult result, string stepName)
    {
        Assert.True(result.TrackedSteps.ContainsKey(stepName), $"step '{stepName}' was not tracked");
        return result.TrackedSteps[stepName].SelectMany(run => run.Outputs).Select(output => output.Value);
    }

    private static void AssertStep(GeneratorRunResult result, string stepName, IncrementalStepRunReason[] allowed)
    {
        Assert.True(result.TrackedSteps.ContainsKey(stepName), $"step '{stepName}' was not tracked");
        var outputs = result.TrackedSteps[stepName].SelectMany(run => run.Outputs).ToArray();
        Assert.NotEmpty(outputs);
        Assert.All(outputs, output => Assert.Contains(output.Reason, allowed));
    }

    private static void AssertOutputsCached(GeneratorRunResult result)
    {
        var outputs = result.TrackedOutputSteps.SelectMany(step => step.Value).SelectMany(run => run.Outputs).ToArray();
        Assert.NotEmpty(outputs);
        Assert.All(outputs, output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));
    }

    private static CSharpCompilation Replace(CSharpCompilation compilation, int index, string source) =>
        compilation.ReplaceSyntaxTree(compilation.SyntaxTrees[index], GeneratorHarness.Parse(source, index));

    /// <summary>
    /// Walks every field reachable from a pipeline value and fails on anything that would pin a
    /// compilation in the cache: symbols, syntax, semantic models and compilations.
    /// </summary>
    private static class ForbiddenReferenceWalker
    {
        private static readonly Type[] Forbidden =
        [
            typeof(ISymbol), typeof(SyntaxNode), typeof(SyntaxTree), typeof(Compilation), typeof(SemanticModel),
            typeof(SyntaxToken), typeof(SyntaxTrivia), typeof(SyntaxReference), typeof(AttributeData),
        ];

        public static void AssertClean(object root)
        {
            var visited = new HashSet<object>(ReferenceEqualityComparer.Instance);
            Walk(root, root.GetType().Name, visited);
        }

        private static void Walk(object? value, string path, HashSet<object> visited)
        {
            if (value is null)
            {
                return;
            }

            Type type = value.GetType();
            Assert.True(
                !Forbidden.Any(forbidden => forbidden.IsAssignableFrom(type)) && !(value is Location { IsInSource: true }),
                $"{path} holds a {type.FullName}; specs must hold only plain values");

            if (type.IsPrimitive || type.IsEnum || type.IsPointer || value is string or decimal or Type or MemberInfo or Assembly or Delegate)
            {
                return;
            }

            if (!type.IsValueType && !visited.Add(value))
            {
                return;
            }

            if (value is Array array)
            {
                int i = 0;
                foreach (object? item in array)
                {
                    Walk(item, path + "[" + i++ + "]", visited);
                }

                return;
            }

            for (Type? current = type; current is not null; current = current.BaseType)
            {
                foreach (FieldInfo field in current.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                {
                    if (field.FieldType.IsPointer || field.FieldType.IsByRefLike)
                    {
                        continue;
                    }

                    Walk(field.GetValue(value), path + "." + field.Name, visited);
                }
            }
        }
    }
}
