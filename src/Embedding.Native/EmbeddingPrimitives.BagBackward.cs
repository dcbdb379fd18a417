using System;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>
    /// Dense gradient of <see cref="EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/>
    /// with respect to the table: torch's <c>_embedding_bag_dense_backward</c>, with every row's
    /// contributions summed in torch's order.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = gradWeight.Length / D;  c[k] = positions i with indices[i] == k  (whole call, padding included)
    /// P_b = the positions of bag b whose index is not paddingIndex
    /// require every 0 &lt;= indices[i] &lt; rows; for max, every maxIndices[b][d] of a bag with P_b non-empty too   // else throws, nothing written
    /// if !(options has Accumulate): gradWeight[:] = +0.0
    /// sum, mean: order = the positions 0 .. indices.Length-1 (padding included) in the order torch's unstable sort
    ///            of the indices leaves them (libstdc++ std::sort of (indices[i], i) by value: introsort, then insertion sort)
    ///     for i in order, if indices[i] != paddingIndex, with b = the bag of i:
    ///     s = perSampleWeights[i] (or 1)                          // in double
    ///     if options has ScaleGradByFrequency: s = s / c[indices[i]]
    ///     if mean:                             s = s / |P_b|
    ///     gradWeight[indices[i]] = fma(gradOutput[b], (float)s, gradWeight[indices[i]])
    /// max: for each bag b with P_b non-empty, in bag order, each column d:
    ///     gradWeight[maxIndices[b][d]][d] = gradWeight[maxIndices[b][d]][d] + gradOutput[b][d]
    /// </code>
    /// In short: <c>gradWeight[k] (+)= Σ_{i ∈ P_b, indices[i] = k} s_i · gradOutput[bag(i)]</c>, summed in torch's order
    /// (position order when the call has at most 16 positions: libstdc++ sorts short ranges by insertion).
    /// <para>
    /// Matching torch 1.13: bit for bit in every mode. sum and mean use torch's formula, its double-built,
    /// once-rounded scale and fused update, and its order: torch sorts the indices (<c>indices.sort()</c>, not
    /// stable) and applies each row's contributions in sorted order; that sort is reproduced step for step, so
    /// every vector width and thread count gives torch's bits. With
    /// <see cref="EmbeddingGradOptions.ScaleGradByFrequency"/>, <c>c[k]</c> is row k's own count, as torch documents;
    /// torch ≤ 2.13 divides by another row's count (a known bug, issue #190063), which is not copied.
    /// </para>
    /// <para>
    /// <paramref name="maxIndices"/> is read only in max mode; the entries of bags with no non-padding
    /// position are ignored (this library's forward writes -1 there, torch's writes 0). torch refuses
    /// frequency scaling in max mode and per-sample weights outside sum mode; so does this method.
    /// After a failure nothing has been written; nothing is allocated once a call of the same shape
    /// has run (the bag boundaries and frequency counts are pooled).
    /// </para>
    /// </remarks>
    /// <param name="gradOutput">Gradient of the forward output, <c>bags × embeddingDim</c> floats.</param>
    /// <param name="indices">The indices of the forward call.</param>
    /// <param name="offsets">The offsets of the forward call (see <see cref="EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/>).</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="mode">The forward's reduction.</param>
    /// <param name="gradWeight">The <c>rows × embeddingDim</c> gradient of the table; overwritten, or added to with <see cref="EmbeddingGradOptions.Accumulate"/>.</param>
    /// <param name="includeLastOffset">torch's <c>include_last_offset</c>, as in the forward.</param>
    /// <param name="perSampleWeights">The forward's per-sample weights (sum mode only), or empty.</param>
    /// <param name="paddingIndex">A normalised row whose positions contribute nothing, or <see cref="NoPadding"/>.</param>
    /// <param name="maxIndices">Max mode: the forward's <c>bags × embeddingDim</c> arg-max rows.</param>
    /// <param name="options">Frequency scaling (sum and mean) and accumulation.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index, a max index or <paramref name="paddingIndex"/> is outside <c>[0, rows)</c>, <paramref name="embeddingDim"/> is not positive, or <paramref name="mode"/> or <paramref name="options"/> is unknown.</exception>
    /// <exception cref="ArgumentException">The offsets are malformed, a length does not fit the shapes, an option does not suit the mode, or <paramref name="gradWeight"/> overlaps an input.</exception>
    public static void EmbeddingBagBackward<TIndex, TOffset>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<float> gradWeight, bool includeLastOffset = false, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<long> maxIndices = default, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagBackward(gradOutput, indices, offsets, embeddingDim, mode, gradWeight, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, options, KernelDispatch.BestWidth);

    /// <summary>
    /// The dense bag gradient for fixed-size bags (a 2-D <c>[B, bagSize]</c> input): bag b is positions
    /// <c>[b·bagSize, (b+1)·bagSize)</c>. Otherwise as the offsets overload.
    /// </summary>
    /// <inheritdoc cref="EmbeddingBagBackward{TIndex, TOffset}(ReadOnlySpan{float}, ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, ReadOnlySpan{long}, EmbeddingGradOptions)" path="/remarks"/>
    /// <param name="gradOutput">Gradient of the forward output, <c>B × embeddingDim</c> floats.</param>
    /// <param name="indices">The flattened <c>[B, bagSize]</c> indices of the forward call.</param>
    /// <param name="bagSize">Positions per bag; positive and dividing <c>indices.Length</c>.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="mode">The forward's reduction.</param>
    /// <param name="gradWeight">The <c>rows × embeddingDim</c> gradient of the table.</param>
    /// <param name="perSampleWeights">The forward's per-sample weights (sum mode only), or empty.</param>
    /// <param name="paddingIndex">A normalised row whose positions contribute nothing, or <see cref="NoPadding"/>.</param>
    /// <param name="maxIndices">Max mode: the forward's <c>B × embeddingDim</c> arg-max rows.</param>
    /// <param name="options">Frequency scaling (sum and mean) and accumulation.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index, a max index or <paramref name="paddingIndex"/> is outside <c>[0, rows)</c>, <paramref name="embeddingDim"/> is not positive, or <paramref name="mode"/> or <paramref name="options"/> is unknown.</exception>
    /// <exception cref="ArgumentException"><paramref name="bagSize"/> does not divide the indices, a length does not fit the shapes, an option does not suit the mode, or <paramref name="gradWeight"/> overlaps an input.</exception>
    public static void EmbeddingBagBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<float> gradWeight, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<long> maxIndices = default, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagBackward(gradOutput, indices, bagSize, embeddingDim, mode, gradWeight, perSampleWeights, paddingIndex, maxIndices, options, KernelDispatch.BestWidth);

    /// <summary>
    /// Sparse gradient of the bag forward (sum and mean) in torch's layout (<c>sparse=True</c>:
    /// sparse_coo, uncoalesced): one entry per non-padding position in a bag, in position order.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim;  c[k] = positions i with indices[i] == k  (whole call, padding included)
    /// require every 0 &lt;= indices[i] &lt; numEmbeddings                     // else throws, nothing written
    /// n = 0
    /// for each bag b, for i in P_b (its non-padding positions), in position order:
    ///     v = gradOutput[b]
    ///     if mean:                             v = v * fl(1/|P_b|)         // (float)|P_b|, a float reciprocal
    ///     if perSampleWeights given:           v = v * perSampleWeights[i]
    ///     if options has ScaleGradByFrequency: v = v * (float)(1.0 / c[indices[i]])
    ///     rows[n] = indices[i]; values[n] = v; n += 1                       // each product rounded; no factor: a copy
    /// return n
    /// </code>
    /// This is torch 1.13's <c>_embedding_bag_sparse_backward</c> bit for bit: <c>index_select</c> of
    /// the output gradient, times the float reciprocal of the bag size (mean), times the sample weight.
    /// torch refuses <c>scale_grad_by_freq</c> with sparse gradients; here it multiplies each value by
    /// <c>fl(1/c)</c> last, as <see cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/> does.
    /// Max mode is refused, as torch does ("max mode does not support sparse weights").
    /// <see cref="EmbeddingGradOptions.Accumulate"/> does not apply and is rejected. <c>indices.Length</c> entries always suffice.
    /// </remarks>
    /// <param name="gradOutput">Gradient of the forward output, <c>bags × embeddingDim</c> floats.</param>
    /// <param name="indices">The indices of the forward call.</param>
    /// <param name="offsets">The offsets of the forward call.</param>
    /// <param name="embeddingDim">Columns per row; zero or more.</param>
    /// <param name="numEmbeddings">Rows in the table.</param>
    /// <param name="mode"><see cref="EmbeddingBagMode.Sum"/> or <see cref="EmbeddingBagMode.Mean"/>.</param>
    /// <param name="rows">Receives the row of each entry.</param>
    /// <param name="values">Receives <c>entries × embeddingDim</c> floats.</param>
    /// <param name="includeLastOffset">torch's <c>include_last_offset</c>, as in the forward.</param>
    /// <param name="perSampleWeights">The forward's per-sample weights (sum mode only), or empty.</param>
    /// <param name="paddingIndex">A normalised row whose positions are left out, or <see cref="NoPadding"/>.</param>
    /// <param name="options"><see cref="EmbeddingGradOptions.None"/> or <see cref="EmbeddingGradOptions.ScaleGradByFrequency"/>.</param>
    /// <returns>The number of entries written (nnz).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside the table, a size is negative, or <paramref name="mode"/> or <paramref name="options"/> is not allowed.</exception>
    /// <exception cref="ArgumentException">The offsets are malformed, a length does not fit the shapes, an output is too short, max mode or per-sample weights outside sum mode, or outputs overlap each other or an input.</exception>
    public static int EmbeddingBagSparseBackward<TIndex, TOffset>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<float> values, bool includeLastOffset = false, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagSparseBackward(gradOutput, indices, offsets, embeddingDim, numEmbeddings, mode, rows, values, includeLastOffset, perSampleWeights, paddingIndex, options, KernelDispatch.BestWidth);

    /// <summary>The sparse bag gradient for fixed-size bags (a 2-D <c>[B, bagSize]</c> input). Otherwise as the offsets overload.</summary>
    /// <inheritdoc cref="EmbeddingBagSparseBackward{TIndex, TOffset}(ReadOnlySpan{float}, ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, int, long, EmbeddingBagMode, Span{long}, Span{float}, bool, ReadOnlySpan{float}, long, EmbeddingGradOptions)" path="/remarks"/>
    /// <param name="gradOutput">Gradient of the forward output, <c>B × embeddingDim</c> floats.</param>
    /// <param name="indices">The flattened <c>[B, bagSize]</c> indices of the forward call.</param>
    /// <param name="bagSize">Positions per bag; positive and dividing <c>indices.Length</c>.</param>
    /// <param name="embeddingDim">Columns per row; zero or more.</param>
    /// <param name="numEmbeddings">Rows in the table.</param>
    /// <param name="mode"><see cref="EmbeddingBagMode.Sum"/> or <see cref="EmbeddingBagMode.Mean"/>.</param>
    /// <param name="rows">Receives the row of each entry.</param>
    /// <param name="values">Receives <c>entries × embeddingDim</c> floats.</param>
    /// <param name="perSampleWeights">The forward's per-sample weights (sum mode only), or empty.</param>
    /// <param name="paddingIndex">A normalised row whose positions are left out, or <see cref="NoPadding"/>.</param>
    /// <param name="options"><see cref="EmbeddingGradOptions.None"/> or <see cref="EmbeddingGradOptions.ScaleGradByFrequency"/>.</param>
    /// <returns>The number of entries written (nnz).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside the table, a size is negative, or <paramref name="mode"/> or <paramref name="options"/> is not allowed.</exception>
    /// <exception cref="ArgumentException"><paramref name="bagSize"/> does not divide the indices, a length does not fit the shapes, an output is too short, max mode or per-sample weights outside sum mode, or outputs overlap each other or an input.</exception>
    public static int EmbeddingBagSparseBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<float> values, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagSparseBackward(gradOutput, indices, bagSize, embeddingDim, numEmbeddings, mode, rows, values, perSampleWeights, paddingIndex, options, KernelDispatch.BestWidth);

    /// <summary>
    /// Gradient of the weighted bag sum with respect to the per-sample weights: torch's
    /// <c>_embedding_bag_per_sample_weights_backward</c>, bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D
    /// require every 0 &lt;= indices[i] &lt; rows                        // else throws, nothing written
    /// gradPerSampleWeights[:] = +0.0
    /// for each bag b, for each position i in b with indices[i] != paddingIndex:
    ///     acc = +0.0f; for d in 0 .. D-1: acc = acc + fl(gradOutput[b][d] * weight[indices[i]][d])
    ///     gradPerSampleWeights[i] = acc
    /// </code>
    /// In short: <c>gradPerSampleWeights[i] = ⟨gradOutput[bag(i)], weight[indices[i]]⟩</c>, 0 at padding positions.
    /// The dot is sequential with each product rounded before the add, as torch's netlib <c>sdot</c>
    /// computes it (no fused multiply-add), so it is the same bits as torch 1.13 on every ISA.
    /// Only <see cref="EmbeddingBagMode.Sum"/> takes per-sample weights; other modes throw.
    /// </remarks>
    /// <param name="gradOutput">Gradient of the forward output, <c>bags × embeddingDim</c> floats.</param>
    /// <param name="weight">The forward's <c>rows × embeddingDim</c> table.</param>
    /// <param name="indices">The indices of the forward call.</param>
    /// <param name="offsets">The offsets of the forward call.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="mode">Must be <see cref="EmbeddingBagMode.Sum"/>.</param>
    /// <param name="gradPerSampleWeights">Receives <c>indices.Length</c> floats.</param>
    /// <param name="includeLastOffset">torch's <c>include_last_offset</c>, as in the forward.</param>
    /// <param name="paddingIndex">A normalised row whose positions get 0, or <see cref="NoPadding"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside <c>[0, rows)</c>, <paramref name="embeddingDim"/> is not positive, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException">The mode is not sum, the offsets are malformed, a length does not fit the shapes, or the output overlaps an input.</exception>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<float> weight, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<float> gradPerSampleWeights, bool includeLastOffset = false, long paddingIndex = NoPadding)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagPerSampleWeightsBackwardOf(gradOutput, weight, indices, offsets, embeddingDim, mode, gradPerSampleWeights, includeLastOffset, paddingIndex);

    /// <summary>The per-sample-weights gradient for fixed-size bags (a 2-D <c>[B, bagSize]</c> input). Otherwise as the offsets overload.</summary>
    /// <inheritdoc cref="EmbeddingBagPerSampleWeightsBackward{TIndex, TOffset}(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, int, EmbeddingBagMode, Span{float}, bool, long)" path="/remarks"/>
    /// <param name="gradOutput">Gradient of the forward output, <c>B × embeddingDim</c> floats.</param>
    /// <param name="weight">The forward's <c>rows × embeddingDim</c> table.</param>
    /// <param name="indices">The flattened <c>[B, bagSize]</c> indices of the forward call.</param>
    /// <param name="bagSize">Positions per bag; positive and dividing <c>indices.Length</c>.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="mode">Must be <see cref="EmbeddingBagMode.Sum"/>.</param>
    /// <param name="gradPerSampleWeights">Receives <c>indices.Length</c> floats.</param>
    /// <param name="paddingIndex">A normalised row whose positions get 0, or <see cref="NoPadding"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside <c>[0, rows)</c>, <paramref name="embeddingDim"/> is not positive, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException">The mode is not sum, <paramref name="bagSize"/> does not divide the indices, a length does not fit the shapes, or the output overlaps an input.</exception>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<float> weight, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<float> gradPerSampleWeights, long paddingIndex = NoPadding)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagPerSampleWeightsBackwardOf(gradOutput, weight, indices, bagSize, embeddingDim, mode, gradPerSampleWeights, paddingIndex);

    /// <summary>The dense offsets overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBagBackward<TIndex, TOffset>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<float> gradWeight, bool includeLastOffset, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<long> maxIndices, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagBackwardAtWidth(gradOutput, indices, offsets, embeddingDim, mode, gradWeight, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, options, width, threads);

    /// <summary>The dense fixed-size overload with the vector width chosen by the caller.</summary>
    internal static void EmbeddingBagBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<float> gradWeight, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<long> maxIndices, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagBackwardAtWidth(gradOutput, indices, bagSize, embeddingDim, mode, gradWeight, perSampleWeights, paddingIndex, maxIndices, options, width, threads);

    /// <summary>The sparse offsets overload with the vector width chosen by the caller.</summary>
    internal static int EmbeddingBagSparseBackward<TIndex, TOffset>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<float> values, bool includeLastOffset, ReadOnlySpan<float> perSampleWeights, long paddingIndex, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagSparseBackwardAtWidth(gradOutput, indices, offsets, embeddingDim, numEmbeddings, mode, rows, values, includeLastOffset, perSampleWeights, paddingIndex, options, width, threads);

    /// <summary>The sparse fixed-size overload with the vector width chosen by the caller.</summary>
    internal static int EmbeddingBagSparseBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<float> values, ReadOnlySpan<float> perSampleWeights, long paddingIndex, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagSparseBackwardAtWidth(gradOutput, indices, bagSize, embeddingDim, numEmbeddings, mode, rows, values, perSampleWeights, paddingIndex, options, width, threads);

    // RS0026: these overloads differ from the float ones in the table's element type only; a call
    // always tells them apart by its span types.
#pragma warning disable RS0026

    /// <summary>The dense bag gradient of a float64 table: as the float overload, with torch 1.13's float64 arithmetic (docs/table-types.md, "EmbeddingBag backward"); duplicates added in torch's order.</summary>
    public static void EmbeddingBagBackward<TIndex, TOffset>(ReadOnlySpan<double> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<double> gradWeight, bool includeLastOffset = false, ReadOnlySpan<double> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<long> maxIndices = default, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagBackwardAtWidth(gradOutput, indices, offsets, embeddingDim, mode, gradWeight, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, options, KernelDispatch.BestWidth);

    /// <summary>The dense bag gradient of a float64 table for fixed-size bags.</summary>
    public static void EmbeddingBagBackward<TIndex>(ReadOnlySpan<double> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<double> gradWeight, ReadOnlySpan<double> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<long> maxIndices = default, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagBackwardAtWidth(gradOutput, indices, bagSize, embeddingDim, mode, gradWeight, perSampleWeights, paddingIndex, maxIndices, options, KernelDispatch.BestWidth);

    /// <summary>The sparse bag gradient of a float64 table: as the float overload, each factor a product rounded to float64 (the mean's reciprocal computed in the type).</summary>
    /// <returns>The number of entries written (nnz).</returns>
    public static int EmbeddingBagSparseBackward<TIndex, TOffset>(ReadOnlySpan<double> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<double> values, bool includeLastOffset = false, ReadOnlySpan<double> perSampleWeights = default, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagSparseBackwardAtWidth(gradOutput, indices, offsets, embeddingDim, numEmbeddings, mode, rows, values, includeLastOffset, perSampleWeights, paddingIndex, options, KernelDispatch.BestWidth);

    /// <summary>The sparse bag gradient of a float64 table for fixed-size bags.</summary>
    /// <returns>The number of entries written (nnz).</returns>
    public static int EmbeddingBagSparseBackward<TIndex>(ReadOnlySpan<double> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<double> values, ReadOnlySpan<double> perSampleWeights = default, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagSparseBackwardAtWidth(gradOutput, indices, bagSize, embeddingDim, numEmbeddings, mode, rows, values, perSampleWeights, paddingIndex, options, KernelDispatch.BestWidth);

    /// <summary>The per-sample-weights gradient of a float64 table: a sequential dot from +0.0, each product rounded before the add.</summary>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>(ReadOnlySpan<double> gradOutput, ReadOnlySpan<double> weight, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<double> gradPerSampleWeights, bool includeLastOffset = false, long paddingIndex = NoPadding)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagPerSampleWeightsBackwardOf(gradOutput, weight, indices, offsets, embeddingDim, mode, gradPerSampleWeights, includeLastOffset, paddingIndex);

    /// <summary>The per-sample-weights gradient of a float64 table for fixed-size bags.</summary>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex>(ReadOnlySpan<double> gradOutput, ReadOnlySpan<double> weight, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<double> gradPerSampleWeights, long paddingIndex = NoPadding)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagPerSampleWeightsBackwardOf(gradOutput, weight, indices, bagSize, embeddingDim, mode, gradPerSampleWeights, paddingIndex);

    /// <summary>The dense bag gradient of a float16 table: as the float overload, with torch 1.13's float16 arithmetic (docs/table-types.md, "EmbeddingBag backward"); duplicates added in torch's order.</summary>
    public static void EmbeddingBagBackward<TIndex, TOffset>(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<Half> gradWeight, bool includeLastOffset = false, ReadOnlySpan<Half> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<long> maxIndices = default, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagBackwardAtWidth(gradOutput, indices, offsets, embeddingDim, mode, gradWeight, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, options, KernelDispatch.BestWidth);

    /// <summary>The dense bag gradient of a float16 table for fixed-size bags.</summary>
    public static void EmbeddingBagBackward<TIndex>(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<Half> gradWeight, ReadOnlySpan<Half> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<long> maxIndices = default, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagBackwardAtWidth(gradOutput, indices, bagSize, embeddingDim, mode, gradWeight, perSampleWeights, paddingIndex, maxIndices, options, KernelDispatch.BestWidth);

    /// <summary>The sparse bag gradient of a float16 table: as the float overload, each factor a product rounded to float16 (the mean's reciprocal computed in the type).</summary>
    /// <returns>The number of entries written (nnz).</returns>
    public static int EmbeddingBagSparseBackward<TIndex, TOffset>(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<Half> values, bool includeLastOffset = false, ReadOnlySpan<Half> perSampleWeights = default, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagSparseBackwardAtWidth(gradOutput, indices, offsets, embeddingDim, numEmbeddings, mode, rows, values, includeLastOffset, perSampleWeights, paddingIndex, options, KernelDispatch.BestWidth);

    /// <summary>The sparse bag gradient of a float16 table for fixed-size bags.</summary>
    /// <returns>The number of entries written (nnz).</returns>
    public static int EmbeddingBagSparseBackward<TIndex>(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<Half> values, ReadOnlySpan<Half> perSampleWeights = default, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagSparseBackwardAtWidth(gradOutput, indices, bagSize, embeddingDim, numEmbeddings, mode, rows, values, perSampleWeights, paddingIndex, options, KernelDispatch.BestWidth);

    /// <summary>The per-sample-weights gradient of a float16 table: a sequential dot from +0.0, each product rounded before the add, in a half accumulator.</summary>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<Half> weight, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<Half> gradPerSampleWeights, bool includeLastOffset = false, long paddingIndex = NoPadding)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagPerSampleWeightsBackwardOf(gradOutput, weight, indices, offsets, embeddingDim, mode, gradPerSampleWeights, includeLastOffset, paddingIndex);

    /// <summary>The per-sample-weights gradient of a float16 table for fixed-size bags.</summary>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex>(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<Half> weight, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<Half> gradPerSampleWeights, long paddingIndex = NoPadding)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagPerSampleWeightsBackwardOf(gradOutput, weight, indices, bagSize, embeddingDim, mode, gradPerSampleWeights, paddingIndex);
#pragma warning restore RS0026

    /// <summary>The dense bag gradient of any supported table type at a given width (tests pin the width and the threads).</summary>
    internal static void EmbeddingBagBackwardAtWidth<TElement, TIndex, TOffset>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<TElement> gradWeight, bool includeLastOffset, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, ReadOnlySpan<long> maxIndices, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        long rows = CheckBagBackward(indices, embeddingDim, mode, gradWeight, perSampleWeights, paddingIndex, options);
        ThrowIfBadBackwardLayout(BagsBuilder.TryCreateBags<TIndex, TOffset, TElement>(indices, offsets, includeLastOffset, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled), nameof(offsets));
        using (pooled)
        {
            DenseBagBackward(gradOutput, pooled.Bags, embeddingDim, rows, mode, gradWeight, maxIndices, options, width, threads);
        }
    }

    /// <summary>The dense bag gradient of any supported table type for fixed-size bags at a given width.</summary>
    internal static void EmbeddingBagBackwardAtWidth<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<TElement> gradWeight, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, ReadOnlySpan<long> maxIndices, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long rows = CheckBagBackward(indices, embeddingDim, mode, gradWeight, perSampleWeights, paddingIndex, options);
        ThrowIfBadBackwardLayout(BagsBuilder.TryCreateFixedBags<TIndex, TElement>(indices, bagSize, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled), nameof(bagSize));
        using (pooled)
        {
            DenseBagBackward(gradOutput, pooled.Bags, embeddingDim, rows, mode, gradWeight, maxIndices, options, width, threads);
        }
    }

    /// <summary>The sparse bag gradient of any supported table type at a given width.</summary>
    internal static int EmbeddingBagSparseBackwardAtWidth<TElement, TIndex, TOffset>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<TElement> values, bool includeLastOffset, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        CheckBagBackwardSparse(gradOutput, indices, embeddingDim, numEmbeddings, mode, rows, values, perSampleWeights, paddingIndex, options);
        ThrowIfBadBackwardLayout(BagsBuilder.TryCreateBags<TIndex, TOffset, TElement>(indices, offsets, includeLastOffset, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled), nameof(offsets));
        using (pooled)
        {
            return SparseBagBackward(gradOutput, pooled.Bags, embeddingDim, numEmbeddings, mode, rows, values, options, width, threads);
        }
    }

    /// <summary>The sparse bag gradient of any supported table type for fixed-size bags at a given width.</summary>
    internal static int EmbeddingBagSparseBackwardAtWidth<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<TElement> values, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckBagBackwardSparse(gradOutput, indices, embeddingDim, numEmbeddings, mode, rows, values, perSampleWeights, paddingIndex, options);
        ThrowIfBadBackwardLayout(BagsBuilder.TryCreateFixedBags<TIndex, TElement>(indices, bagSize, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled), nameof(bagSize));
        using (pooled)
        {
            return SparseBagBackward(gradOutput, pooled.Bags, embeddingDim, numEmbeddings, mode, rows, values, options, width, threads);
        }
    }

    /// <summary>The per-sample-weights gradient of any supported table type.</summary>
    internal static void EmbeddingBagPerSampleWeightsBackwardOf<TElement, TIndex, TOffset>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TElement> weight, ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, int embeddingDim, EmbeddingBagMode mode, Span<TElement> gradPerSampleWeights, bool includeLastOffset, long paddingIndex, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        CheckBagPerSampleWeightsBackward(gradOutput, weight, indices, embeddingDim, mode, gradPerSampleWeights, paddingIndex, out long rows);
        ThrowIfBadBackwardLayout(BagsBuilder.TryCreateBags<TIndex, TOffset, TElement>(indices, offsets, includeLastOffset, default, paddingIndex, out PooledBags<TIndex> pooled), nameof(offsets));
        using (pooled)
        {
            BagPerSampleWeightsBackward(gradOutput, weight, pooled.Bags, embeddingDim, rows, gradPerSampleWeights, threads);
        }
    }

    /// <summary>The per-sample-weights gradient of any supported table type for fixed-size bags.</summary>
    internal static void EmbeddingBagPerSampleWeightsBackwardOf<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TElement> weight, ReadOnlySpan<TIndex> indices, int bagSize, int embeddingDim, EmbeddingBagMode mode, Span<TElement> gradPerSampleWeights, long paddingIndex, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckBagPerSampleWeightsBackward(gradOutput, weight, indices, embeddingDim, mode, gradPerSampleWeights, paddingIndex, out long rows);
        ThrowIfBadBackwardLayout(BagsBuilder.TryCreateFixedBags<TIndex, TElement>(indices, bagSize, default, paddingIndex, out PooledBags<TIndex> pooled), nameof(bagSize));
        using (pooled)
        {
            BagPerSampleWeightsBackward(gradOutput, weight, pooled.Bags, embeddingDim, rows, gradPerSampleWeights, threads);
        }
    }

    /// <summary>torch's refusals of option and mode combinations, in torch's words; null when the combination is allowed.</summary>
    internal static string? BagBackwardModeError(EmbeddingBagMode mode, bool hasPerSampleWeights, EmbeddingGradOptions options, bool sparse)
    {
        if (mode == EmbeddingBagMode.Max && sparse)
        {
            return "max mode does not support sparse weights";
        }

        if (mode == EmbeddingBagMode.Max && (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0)
        {
            return "max mode does not support scaling the gradient by the frequency";
        }

        return hasPerSampleWeights && mode != EmbeddingBagMode.Sum ? WeightsNeedSum(mode) : null;
    }

    /// <summary>Shape, mode, option and padding checks of the dense span overloads; returns the table's rows.</summary>
    private static long CheckBagBackward<TElement, TIndex>(ReadOnlySpan<TIndex> indices, int embeddingDim, EmbeddingBagMode mode, Span<TElement> gradWeight, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, EmbeddingGradOptions options)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckIndexType<TIndex>(nameof(TIndex));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (gradWeight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The gradient of the weight holds {gradWeight.Length} values, which is not a whole number of rows of {embeddingDim}.", nameof(gradWeight));
        }

        long rows = gradWeight.Length / embeddingDim;
        CheckBagBackwardMode(mode);
        CheckBackwardOptions(options, EmbeddingGradOptions.ScaleGradByFrequency | EmbeddingGradOptions.Accumulate, paddingIndex, rows);
        if (BagBackwardModeError(mode, !perSampleWeights.IsEmpty, options, sparse: false) is { } modeError)
        {
            throw new ArgumentException(modeError, perSampleWeights.IsEmpty ? nameof(options) : nameof(perSampleWeights));
        }

        return rows;
    }

    /// <summary>The dense core behind the span overloads: shapes of the bag-sized buffers, overlaps, then the core.</summary>
    private static void DenseBagBackward<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, Bags<TIndex> bags, int embeddingDim, long rows, EmbeddingBagMode mode, Span<TElement> gradWeight, ReadOnlySpan<long> maxIndices, EmbeddingGradOptions options, VectorWidth width, int threads)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long bagElements = (long)bags.Count * embeddingDim;
        CheckBagBackwardGradOutput(gradOutput, bags.Count, embeddingDim);
        if (mode == EmbeddingBagMode.Max && maxIndices.Length != bagElements)
        {
            throw new ArgumentException($"The max indices hold {maxIndices.Length} values; {bags.Count} bags × {embeddingDim} columns need exactly {bagElements}.", nameof(maxIndices));
        }

        Span<byte> written = MemoryMarshal.AsBytes(gradWeight);
        if (written.Overlaps(MemoryMarshal.AsBytes(gradOutput)) || written.Overlaps(MemoryMarshal.AsBytes(bags.Indices))
            || written.Overlaps(MemoryMarshal.AsBytes(bags.PerSampleWeightsOf<TElement>())) || written.Overlaps(MemoryMarshal.AsBytes(maxIndices)))
        {
            throw new ArgumentException("The gradient of the weight overlaps the output gradient, the indices, the per-sample weights or the max indices.", nameof(gradWeight));
        }

        nint bad = BagBackwardDriver.Dense(
            in MemoryMarshal.GetReference(gradOutput), in bags, embeddingDim, rows, mode, in MemoryMarshal.GetReference(maxIndices), options,
            ref MemoryMarshal.GetReference(gradWeight), width, out bool badMaxIndex, threads);
        if (badMaxIndex)
        {
            ThrowIfBadIndex(maxIndices, bad, rows, nameof(maxIndices));
        }

        ThrowIfBadIndex(bags.Indices, bad, rows);
    }

    private static void CheckBagBackwardSparse<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<TElement> values, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, EmbeddingGradOptions options)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckIndexType<TIndex>(nameof(TIndex));
        ArgumentOutOfRangeException.ThrowIfNegative(embeddingDim);
        ArgumentOutOfRangeException.ThrowIfNegative(numEmbeddings);
        CheckBagBackwardMode(mode);
        CheckBackwardOptions(options, EmbeddingGradOptions.ScaleGradByFrequency, paddingIndex, numEmbeddings);
        if (BagBackwardModeError(mode, !perSampleWeights.IsEmpty, options, sparse: true) is { } modeError)
        {
            throw new ArgumentException(modeError, perSampleWeights.IsEmpty || mode == EmbeddingBagMode.Max ? nameof(mode) : nameof(perSampleWeights));
        }

        ReadOnlySpan<byte> gradBytes = MemoryMarshal.AsBytes(gradOutput), indexBytes = MemoryMarshal.AsBytes(indices), weightBytes = MemoryMarshal.AsBytes(perSampleWeights);
        Span<byte> rowBytes = MemoryMarshal.AsBytes(rows), valueBytes = MemoryMarshal.AsBytes(values);
        if (rowBytes.Overlaps(gradBytes) || rowBytes.Overlaps(indexBytes) || rowBytes.Overlaps(weightBytes) || rowBytes.Overlaps(valueBytes))
        {
            throw new ArgumentException("The rows output overlaps the values output or an input.", nameof(rows));
        }

        if (valueBytes.Overlaps(gradBytes) || valueBytes.Overlaps(indexBytes) || valueBytes.Overlaps(weightBytes))
        {
            throw new ArgumentException("The values output overlaps an input.", nameof(values));
        }
    }

    private static int SparseBagBackward<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, Bags<TIndex> bags, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, Span<long> rows, Span<TElement> values, EmbeddingGradOptions options, VectorWidth width, int threads)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckBagBackwardGradOutput(gradOutput, bags.Count, embeddingDim);
        int capacity = embeddingDim == 0 ? rows.Length : Math.Min(rows.Length, values.Length / embeddingDim);
        nint bad = BagBackwardDriver.Sparse(
            in MemoryMarshal.GetReference(gradOutput), in bags, embeddingDim, numEmbeddings, mode, (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0,
            ref MemoryMarshal.GetReference(rows), ref MemoryMarshal.GetReference(values), capacity, width, out nint nnz, threads);
        ThrowIfBadIndex(bags.Indices, bad, numEmbeddings);
        if (nnz > capacity)
        {
            throw new ArgumentException($"The outputs hold {rows.Length} rows and {values.Length} values; {nnz} entries × {embeddingDim} columns need {nnz} and {nnz * embeddingDim}.", rows.Length < nnz ? nameof(rows) : nameof(values));
        }

        return (int)nnz;
    }

    private static void CheckBagPerSampleWeightsBackward<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TElement> weight, ReadOnlySpan<TIndex> indices, int embeddingDim, EmbeddingBagMode mode, Span<TElement> gradPerSampleWeights, long paddingIndex, out long rows)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckIndexType<TIndex>(nameof(TIndex));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} values, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        rows = weight.Length / embeddingDim;
        CheckBagBackwardMode(mode);
        if (mode != EmbeddingBagMode.Sum)
        {
            throw new ArgumentException(PerSampleWeightsBackwardModeError, nameof(mode));
        }

        CheckBackwardOptions(EmbeddingGradOptions.None, EmbeddingGradOptions.None, paddingIndex, rows);
        if (gradPerSampleWeights.Length != indices.Length)
        {
            throw new ArgumentException($"The per-sample-weights gradient holds {gradPerSampleWeights.Length} values; it needs one per index, {indices.Length}.", nameof(gradPerSampleWeights));
        }

        Span<byte> written = MemoryMarshal.AsBytes(gradPerSampleWeights);
        if (written.Overlaps(MemoryMarshal.AsBytes(gradOutput)) || written.Overlaps(MemoryMarshal.AsBytes(weight)) || written.Overlaps(MemoryMarshal.AsBytes(indices)))
        {
            throw new ArgumentException("The per-sample-weights gradient overlaps an input.", nameof(gradPerSampleWeights));
        }
    }

    private static void BagPerSampleWeightsBackward<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TElement> weight, Bags<TIndex> bags, int embeddingDim, long rows, Span<TElement> gradPerSampleWeights, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckBagBackwardGradOutput(gradOutput, bags.Count, embeddingDim);
        nint bad = BagBackwardDriver.PerSampleWeights(
            in MemoryMarshal.GetReference(gradOutput), in MemoryMarshal.GetReference(weight), in bags, embeddingDim, rows, ref MemoryMarshal.GetReference(gradPerSampleWeights), threads);
        ThrowIfBadIndex(bags.Indices, bad, rows);
    }

    /// <summary>torch's message when the per-sample-weights gradient is asked for outside sum mode.</summary>
    internal const string PerSampleWeightsBackwardModeError = "embedding_bag_backward: per_sample_weights only supported for mode='sum'";

    private static void CheckBagBackwardMode(EmbeddingBagMode mode)
    {
        if (mode is not (EmbeddingBagMode.Sum or EmbeddingBagMode.Mean or EmbeddingBagMode.Max))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "mode has to be one of sum, mean or max");
        }
    }

    private static void CheckBagBackwardGradOutput<TElement>(ReadOnlySpan<TElement> gradOutput, int bags, int embeddingDim)
        where TElement : unmanaged
    {
        if (gradOutput.Length != (long)bags * embeddingDim)
        {
            throw new ArgumentException($"The output gradient holds {gradOutput.Length} values; {bags} bags × {embeddingDim} columns need exactly {(long)bags * embeddingDim}.", nameof(gradOutput));
        }
    }

    private static void ThrowIfBadBackwardLayout(string? error, string paramName)
    {
        if (error is not null)
        {
            throw new ArgumentException(error, error.StartsWith("embedding_bag: If per_sample_weights", StringComparison.Ordinal) ? "perSampleWeights" : paramName);
        }
    }
}
