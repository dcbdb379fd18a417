using Embedding.Generators.Helpers;
using Embedding.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Embedding.Generators
{
    /// <summary>
    /// Emits straight-line SIMD kernels for the embedding dimensions named by
    /// <c>[EmbeddingKernels(...)]</c> on a partial class, plus the table that maps a dimension to
    /// its kernels. Pipeline: attribute → <see cref="Parser"/> (symbols to a value spec) →
    /// <see cref="Emitter"/> (spec to source). Diagnostics flow out separately, so a spec that did
    /// not change is not emitted again even when its diagnostics are re-reported.
    /// </summary>
    [Generator(LanguageNames.CSharp)]
    public sealed partial class EmbeddingKernelGenerator : IIncrementalGenerator
    {
        /// <summary>The marker attribute, defined in Embedding.Native.</summary>
        public const string AttributeMetadataName = "Embedding.Native.EmbeddingKernelsAttribute";

        /// <summary>Names of the tracked pipeline steps, for the incremental-caching tests.</summary>
        public static class StepNames
        {
            public const string Parse = nameof(Parse);
            public const string Specs = nameof(Specs);
        }

        public void Initialize(IncrementalGeneratorInitializationContext context)
        {
            IncrementalValuesProvider<ParseResult> results = context.SyntaxProvider
                .ForAttributeWithMetadataName(
                    AttributeMetadataName,
                    predicate: static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                    transform: static (attributeContext, cancellationToken) => Parser.Parse(attributeContext, cancellationToken))
                .WithTrackingName(StepNames.Parse);

            IncrementalValuesProvider<(EquatableArray<DiagnosticInfo> Diagnostics, Compilation Compilation)> diagnostics = results
                .Where(static result => result.Diagnostics.Count > 0)
                .Select(static (result, _) => result.Diagnostics)
                .Combine(context.CompilationProvider);
            context.RegisterSourceOutput(diagnostics, static (output, pair) =>
            {
                foreach (DiagnosticInfo diagnostic in pair.Diagnostics)
                {
                    output.ReportDiagnostic(diagnostic.ToDiagnostic(pair.Compilation));
                }
            });

            IncrementalValuesProvider<KernelSetSpec> specs = results
                .Where(static result => result.Spec is not null)
                .Select(static (result, _) => result.Spec!)
                .WithTrackingName(StepNames.Specs);

            context.RegisterSourceOutput(specs, static (output, spec) =>
            {
                foreach (GeneratedFile file in Emitter.Emit(spec))
                {
                    output.AddSource(file.HintName, file.Text);
                }
            });
        }
    }
}
