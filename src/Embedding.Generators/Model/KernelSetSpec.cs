using Embedding.Generators.Helpers;

namespace Embedding.Generators.Model
{
    /// <summary>
    /// Everything the emitter needs to know about one class marked with
    /// <c>[EmbeddingKernels(...)]</c>: its name and place, the dimensions, the table types and the quantized
    /// code widths to specialise.
    /// </summary>
    /// <remarks>
    /// Specs are values: built from symbols once, then compared by the incremental pipeline to
    /// decide whether to emit again. They must never hold an <c>ISymbol</c>, a syntax node or a
    /// <c>Compilation</c> (that would keep old compilations alive and defeat caching), and they must
    /// not change after construction. A test walks this object graph to enforce that.
    /// </remarks>
    internal sealed record KernelSetSpec(
        string? Namespace,
        string TypeName,
        string Accessibility,
        EquatableArray<int> Dimensions,
        TableTypeSet Types,
        QuantizedWidthSet Quantized)
    {
        /// <summary>The type's name including its namespace, used for hint names.</summary>
        public string FullName => Namespace is null ? TypeName : Namespace + "." + TypeName;
    }

    /// <summary>The parser's result for one attributed class: a spec when it can be emitted, and its diagnostics.</summary>
    internal sealed record ParseResult(KernelSetSpec? Spec, EquatableArray<DiagnosticInfo> Diagnostics);
}
