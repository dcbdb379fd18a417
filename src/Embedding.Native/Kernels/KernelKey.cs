namespace Embedding.Native;

/// <summary>The operations that have kernels. Each bag reduction is its own operation: its kernels differ.</summary>
public enum KernelOperation
{
    /// <summary>Forward lookup: copy rows (<see cref="GatherKernel{TElement, TIndex}"/>).</summary>
    Gather,

    /// <summary>Dense backward: add gradient rows into a table-shaped gradient (<see cref="ScatterAddKernel{TElement, TIndex}"/>).</summary>
    ScatterAdd,

    /// <summary>Bag forward, sum (<see cref="BagKernel{TElement, TIndex}"/>).</summary>
    BagSum,

    /// <summary>Bag forward, mean.</summary>
    BagMean,

    /// <summary>Bag forward, max (with the arg-max rows when asked for).</summary>
    BagMax,

    /// <summary>Bag forward, sum of per-sample-weighted rows (one rounding per step without a padding row, the product rounded first with one, as torch 1.13).</summary>
    BagWeightedSum,

    /// <summary>
    /// Quantized bag, 8-bit rows (torch's <c>embedding_bag_byte_rowwise_offsets</c>): sum or mean of dequantized rows,
    /// weighted or not, pruned or not (<see cref="QuantizedBagKernel{TIndex}"/>). The key's table type is
    /// <see cref="EmbeddingType.Float32"/>, the accumulator and output type.
    /// </summary>
    QuantizedBagByte,

    /// <summary>Quantized bag, 4-bit rows (<c>embedding_bag_4bit_rowwise_offsets</c>); as <see cref="QuantizedBagByte"/>.</summary>
    QuantizedBag4Bit,

    /// <summary>Quantized bag, 2-bit rows (<c>embedding_bag_2bit_rowwise_offsets</c>); as <see cref="QuantizedBagByte"/>.</summary>
    QuantizedBag2Bit,
}

/// <summary>
/// What one kernel is for: the operation, the table's element type, the index type, the row length
/// and the vector width its body uses. Every kernel, generated or generic, is found by this key alone.
/// </summary>
/// <param name="Operation">The operation.</param>
/// <param name="Table">The table's element type.</param>
/// <param name="Index">The index element type.</param>
/// <param name="Dimension">Elements per row.</param>
/// <param name="Width">The vector width of the kernel body.</param>
public readonly record struct KernelKey(KernelOperation Operation, EmbeddingType Table, EmbeddingIndexType Index, int Dimension, VectorWidth Width);
