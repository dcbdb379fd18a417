using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Embedding.Generators
{
    /// <summary>
    /// Suppresses EMB0100, which the compiler reports wherever <c>[EmbeddingKernels]</c> is used
    /// (the attribute's constructor is marked <c>[Experimental("EMB0100")]</c>). The suppressor
    /// ships in the same assembly as <see cref="EmbeddingKernelGenerator"/>, so it runs exactly when
    /// the generator does: a project that has the generator never sees EMB0100, and one that
    /// references Embedding.Native without it (a plain ProjectReference) gets a build error that
    /// says what to add instead of a class without kernels. The compiler runs suppressors even
    /// when analyzers are off (RunAnalyzers=false), as it runs generators.
    /// </summary>
    [DiagnosticAnalyzer(LanguageNames.CSharp)]
    public sealed class GeneratorAttachedSuppressor : DiagnosticSuppressor
    {
        /// <summary>The ID on <c>EmbeddingKernelsAttribute</c>'s constructor.</summary>
        public const string SuppressedDiagnosticId = "EMB0100";

        private static readonly SuppressionDescriptor GeneratorAttached = new SuppressionDescriptor(
            id: "EMBS0100",
            suppressedDiagnosticId: SuppressedDiagnosticId,
            justification: "The Embedding.Generators source generator is attached to this compilation and generates the [EmbeddingKernels] kernels");

        public override ImmutableArray<SuppressionDescriptor> SupportedSuppressions { get; } = ImmutableArray.Create(GeneratorAttached);

        public override void ReportSuppressions(SuppressionAnalysisContext context)
        {
            foreach (Diagnostic diagnostic in context.ReportedDiagnostics)
            {
                context.ReportSuppression(Suppression.Create(GeneratorAttached, diagnostic));
            }
        }
    }
}
