namespace Embedding.Native;

/// <summary>
/// A scatter-add kernel for one table type, embedding dimension and vector width: the inner loop of the
/// embedding backward, <c>for k in 0..count: i = positions?[k] ?? k; if indices[i] != paddingIndex: destination[indices[i]] += source[i]</c>.
/// </summary>
/// <remarks>
/// <para>
/// Rows are updated one position at a time, in position order, so a row named by several positions
/// accumulates its contributions in the order torch uses; results are the same bits at every width.
/// </para>
/// <para>
/// With <paramref name="counts"/> a null reference each update is <c>acc = rd(acc + g)</c>. Otherwise
/// <paramref name="counts"/> is indexed by row and each update adds <c>g</c> scaled by
/// <c>fl(1.0 / counts[k])</c>: torch's <c>scale_grad_by_freq</c>, whose scale is computed in double and
/// converted to the table's type as c10 converts it. float32 and float64 update with
/// <c>fma(g, fl(scale), acc)</c>, float16 with <c>rd(acc + rd(g·fl(scale)))</c>, and bfloat16 with
/// <c>rd(fma_f32(g, fl(scale), acc))</c> in the first <c>D − D % 32</c> columns and
/// <c>rd(acc + rd(g·fl(scale)))</c> in the last <c>D % 32</c>, as torch 1.13 does (docs/table-types.md).
/// </para>
/// <para>
/// Kernels do no validation: every index must be in <c>[0, rows)</c>, <paramref name="destination"/>
/// must hold <c>rows × D</c> elements and every named row must have a positive count.
/// </para>
/// </remarks>
/// <typeparam name="TElement">The table's element: <see cref="float"/>, <see cref="double"/>, <see cref="System.Half"/> or <see cref="BFloat16"/>.</typeparam>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <param name="source">First element of the <c>[count, D]</c> gradient rows, one per position.</param>
/// <param name="dimension">D, columns per row (a specialised kernel has it built in and ignores it).</param>
/// <param name="indices">The destination row of each position.</param>
/// <param name="positions">
/// The positions to apply, ascending (relative to <paramref name="source"/> and <paramref name="indices"/>), or a null
/// reference for all of <c>0 .. count-1</c>. A thread of the parallel backward passes the positions whose rows it owns.
/// </param>
/// <param name="count">Number of positions to apply.</param>
/// <param name="paddingIndex">The row whose positions are skipped, or -1 for none.</param>
/// <param name="counts">Occurrences of each row in the whole call, or a null reference for unscaled sums.</param>
/// <param name="destination">First element of the row-major <c>[rows, D]</c> gradient being accumulated.</param>
public delegate void ScatterAddKernel<TElement, TIndex>(ref readonly TElement source, int dimension, ref readonly TIndex indices, ref readonly int positions, nint count, long paddingIndex, ref readonly int counts, ref TElement destination)
    where TElement : unmanaged
    where TIndex : unmanaged;
