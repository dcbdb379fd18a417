namespace Embedding.Native;

/// <summary>
/// A quantized bag kernel for one code width, embedding dimension and vector width: for each of
/// <paramref name="numBags"/> bags, the sum (or mean) of the dequantized rows its positions name, in
/// position order, with torch 1.13's arithmetic (see <c>EmbeddingPrimitives.QuantizedEmbeddingBag</c>).
/// </summary>
/// <remarks>
/// <para>
/// Every column accumulates in its own float lane, <c>out[j] = (float)((double)s·code_j + (double)(out[j] + b))</c>
/// per row, with <c>s = w·scale</c> and <c>b = w·bias</c> (w the per-sample weight, or 1); nothing is reduced
/// horizontally, so every width gives the same bits. A bag with no row gives +0.0.
/// </para>
/// <para>
/// Kernels do no validation: every index must be in <c>[0, rows)</c> (with a mapping: in the mapping, and every
/// mapping entry used -1 or a row), <paramref name="starts"/> must hold <c>numBags + 1</c> non-decreasing
/// positions within the indices and <paramref name="destination"/> <c>numBags × D</c> floats.
/// </para>
/// </remarks>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <param name="packed">First byte of the <c>[rows, RowBytes]</c> packed table (<see cref="QuantizedRowLayout"/>).</param>
/// <param name="dimension">D, columns per row (a specialised kernel has it built in and ignores it).</param>
/// <param name="indices">First index; positions fit in an <see cref="int"/>.</param>
/// <param name="starts">First of the <c>numBags + 1</c> bag boundaries: bag b is positions <c>[starts[b], starts[b+1])</c>.</param>
/// <param name="numBags">Number of bags.</param>
/// <param name="paddingIndex">The index whose positions count for nothing, or -1 for none.</param>
/// <param name="mapping">First entry of the pruning map (an index selects <c>mapping[index]</c>, -1 adds nothing), or a null reference when not pruned.</param>
/// <param name="perSampleWeights">One weight per position, or a null reference (every weight 1).</param>
/// <param name="mean">True to divide each bag's sum by its count of non-padding positions (at least 1).</param>
/// <param name="destination">First element of the <c>[numBags, D]</c> output.</param>
public delegate void QuantizedBagKernel<TIndex>(ref readonly byte packed, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly int mapping, ref readonly float perSampleWeights, bool mean, ref float destination)
    where TIndex : unmanaged;
