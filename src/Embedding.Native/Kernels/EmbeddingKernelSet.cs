using System;

namespace Embedding.Native;

/// <summary>
/// A table of kernels specialised for a fixed set of embedding dimensions and table types. The
/// generator derives every <see cref="EmbeddingKernelsAttribute"/> class from this type and fills in
/// <see cref="Find"/>: one lookup by <see cref="KernelKey"/> for every operation.
/// </summary>
public abstract class EmbeddingKernelSet
{
    /// <summary>The dimensions this set specialises, ascending.</summary>
    public abstract ReadOnlySpan<int> Dimensions { get; }

    /// <summary>The table types this set specialises.</summary>
    public abstract EmbeddingTypes Types { get; }

    /// <summary>The code widths of the quantized tables this set specialises; none unless overridden.</summary>
    public virtual QuantizedBitWidths Quantized => QuantizedBitWidths.None;

    /// <summary>
    /// The kernel for <paramref name="key"/>, or <see langword="null"/> when this set does not
    /// specialise it. The delegate's type follows the operation: <see cref="GatherKernel{TElement, TIndex}"/>,
    /// <see cref="ScatterAddKernel{TElement, TIndex}"/>, <see cref="BagKernel{TElement, TIndex}"/> or
    /// <see cref="QuantizedBagKernel{TIndex}"/>.
    /// </summary>
    /// <param name="key">Operation, table type, index type, dimension and width.</param>
    public abstract Delegate? Find(KernelKey key);
}
