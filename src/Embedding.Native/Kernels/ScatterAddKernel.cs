namespace Embedding.Native;

/// <summary>
/// A scatter-add kernel for one embedding dimension and vector width: the inner loop of the
/// embedding backward, <c>for i in 0..count: if indices[i] != paddingIndex: destination[indices[i]] += source[i]</c>.
/// </summary>
/// <remarks>
/// <para>
/// Rows are updated one position at a time, in position order, so a row named by several positions
/// accumulates its contributions in the order torch uses; results are the same bits at every width.
/// </para>
/// <para>
/// With <paramref name="counts"/> a null reference each update is <c>acc = acc + g</c>. Otherwise
/// <paramref name="counts"/> is indexed by row and each update is
/// <c>acc = fma(g, (float)(1.0 / counts[k]), acc)</c>: torch's <c>scale_grad_by_freq</c>, whose scale
/// is computed in double and rounded to float once.
/// </para>
/// <para>
/// Kernels do no validation: every index must be in <c>[0, rows)</c>, <paramref name="destination"/>
/// must hold <c>rows × D</c> floats and every named row must have a positive count.
/// </para>
/// </remarks>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <param name="source">First element of the <c>[count, D]</c> gradient rows, one per position.</param>
/// <param name="dimension">D, columns per row (a specialised kernel has it built in and ignores it).</param>
/// <param name="indices">First of <paramref name="count"/> destination rows.</param>
/// <param name="count">Number of positions.</param>
/// <param name="paddingIndex">The row whose positions are skipped, or -1 for none.</param>
/// <param name="counts">Occurrences of each row in the whole call, or a null reference for unscaled sums.</param>
/// <param name="destination">First element of the row-major <c>[rows, D]</c> gradient being accumulated.</param>
public delegate void ScatterAddKernel<TIndex>(ref readonly float source, int dimension, ref readonly TIndex indices, nint count, long paddingIndex, ref readonly int counts, ref float destination)
    where TIndex : unmanaged;
