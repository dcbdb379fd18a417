using Microsoft.CodeAnalysis;

namespace Embedding.Generators
{
    /// <summary>
    /// Every diagnostic the generator reports. Keep this list and the table in
    /// docs/diagnostics.md in step: IDs are never reused or renumbered. EMB0100 is taken too: the
    /// compiler reports it for <c>[EmbeddingKernels]</c> without the generator, and
    /// <see cref="GeneratorAttachedSuppressor"/> suppresses it.
    /// </summary>
    internal static class DiagnosticDescriptors
    {
        private const string Category = "Embedding.Generators";

        public static DiagnosticDescriptor DimensionNotPositive { get; } = new DiagnosticDescriptor(
            id: "EMB0001",
            title: "Embedding dimension must be positive",
            messageFormat: "Embedding dimension {0} on '{1}' is not positive; a kernel needs at least one column",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);

        public static DiagnosticDescriptor DimensionTooLarge { get; } = new DiagnosticDescriptor(
            id: "EMB0002",
            title: "Embedding dimension is too large to specialise",
            messageFormat: "Embedding dimension {0} on '{1}' exceeds {2}, the largest dimension the generator specialises; remove it: the generic kernel serves any dimension",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);

        public static DiagnosticDescriptor DuplicateDimension { get; } = new DiagnosticDescriptor(
            id: "EMB0003",
            title: "Embedding dimension listed twice",
            messageFormat: "Embedding dimension {0} is listed more than once on '{1}'; it is specialised once",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Warning,
            isEnabledByDefault: true);

        public static DiagnosticDescriptor TypeNotPartial { get; } = new DiagnosticDescriptor(
            id: "EMB0004",
            title: "Kernel set class must be partial",
            messageFormat: "'{0}' is marked with [EmbeddingKernels] but is not partial; the generator adds the kernels to it",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);

        public static DiagnosticDescriptor UnsupportedTypeShape { get; } = new DiagnosticDescriptor(
            id: "EMB0005",
            title: "Kernel set class must be a top-level, non-generic, non-static class",
            messageFormat: "'{0}' cannot hold generated kernels: it must be a top-level, non-generic, non-static, non-abstract, non-file-local class (not a record) with a parameterless constructor and no base class of its own",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);

        public static DiagnosticDescriptor NoDimensions { get; } = new DiagnosticDescriptor(
            id: "EMB0006",
            title: "No embedding dimensions given",
            messageFormat: "'{0}' is marked with [EmbeddingKernels] but names no dimensions; nothing is generated",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Warning,
            isEnabledByDefault: true);

        public static DiagnosticDescriptor NoTableTypes { get; } = new DiagnosticDescriptor(
            id: "EMB0007",
            title: "No table types given",
            messageFormat: "'{0}' asks for no table types (Types = EmbeddingTypes.None) and no quantized tables; name at least one, e.g. Types = EmbeddingTypes.Float32 | EmbeddingTypes.Float16 or Quantized = QuantizedBitWidths.Eight",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);

        public static DiagnosticDescriptor UnknownTableTypes { get; } = new DiagnosticDescriptor(
            id: "EMB0008",
            title: "Unknown table types",
            messageFormat: "'{0}' asks for table types {1}, which are not EmbeddingTypes values; use Float32, Float64, Float16, BFloat16 or All",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);

        public static DiagnosticDescriptor UnknownQuantizedWidths { get; } = new DiagnosticDescriptor(
            id: "EMB0009",
            title: "Unknown quantized code widths",
            messageFormat: "'{0}' asks for quantized code widths {1}, which are not QuantizedBitWidths values; use Two, Four, Eight or All",
            category: Category,
            defaultSeverity: DiagnosticSeverity.Error,
            isEnabledByDefault: true,
            customTags: WellKnownDiagnosticTags.NotConfigurable);
    }
}
