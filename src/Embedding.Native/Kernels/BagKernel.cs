namespace Embedding.Native;

/// <summary>
/// A bag-forward kernel for one reduction, table type, embedding dimension and vector width: for each of
/// <paramref name="numBags"/> bags, the reduction of the rows its non-padding positions name, in
/// position order (see <c>EmbeddingPrimitives.EmbeddingBag</c> for the arithmetic of each mode).
/// </summary>
/// <remarks>
/// <para>
/// Every column accumulates over the bag in position order in its own register lane; nothing is
/// reduced horizontally, so the results are the same bits at every width. A bag with no non-padding
/// position gives +0.0 (and max index -1). A float16 table accumulates in float32 and rounds to half
/// at the store, as torch 1.13 does.
/// </para>
/// <para>
/// Kernels do no validation: every index must be in <c>[0, rows)</c>, <paramref name="starts"/> must
/// hold <c>numBags + 1</c> non-decreasing positions within the indices, <paramref name="destination"/>
/// must hold <c>numBags × D</c> elements, and <paramref name="maxIndices"/> (max kernels only) as many longs.
/// </para>
/// </remarks>
/// <typeparam name="TElement">The table element: <see cref="float"/>, <see cref="double"/> or <see cref="System.Half"/>
/// (the output and the per-sample weights have the same type, as torch requires).</typeparam>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <param name="weight">First element of the row-major <c>[rows, D]</c> table.</param>
/// <param name="rows">The table's rows: whether it fits the cache decides how much of each row ahead is prefetched (<see cref="KernelHints.PrefetchesWholeRows"/>).</param>
/// <param name="dimension">D, columns per row (a specialised kernel has it built in and ignores it).</param>
/// <param name="indices">First row index; positions fit in an <see cref="int"/>.</param>
/// <param name="starts">First of the <c>numBags + 1</c> bag boundaries: bag b is positions <c>[starts[b], starts[b+1])</c>.</param>
/// <param name="numBags">Number of bags.</param>
/// <param name="paddingIndex">The row whose positions count for nothing, or -1 for none.</param>
/// <param name="perSampleWeights">One weight per position (weighted-sum kernels), else a null reference.</param>
/// <param name="destination">First element of the <c>[numBags, D]</c> output.</param>
/// <param name="maxIndices">First element of the <c>[numBags, D]</c> arg-max rows (max kernels), else a null reference.</param>
public delegate void BagKernel<TElement, TIndex>(ref readonly TElement weight, long rows, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly TElement perSampleWeights, ref TElement destination, ref long maxIndices)
    where TElement : unmanaged
    where TIndex : unmanaged;
