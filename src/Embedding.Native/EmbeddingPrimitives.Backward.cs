using System;
using System.Buffers;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>The <c>paddingIndex</c> that means "no padding row" (torch uses -1 too; C: <c>EMB_NO_PADDING</c>).</summary>
    public const long NoPadding = -1;

    /// <summary>
    /// The largest table (rows) the frequency count and the coalesce can serve: their scratch is one
    /// pooled <see cref="int"/> per row, and an array holds at most <see cref="Array.MaxLength"/> elements.
    /// </summary>
    internal static long MaxScratchRows => Array.MaxLength;

    /// <summary>
    /// Dense gradient of <see cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    /// with respect to the table: torch's <c>embedding_dense_backward</c>, bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = gradWeight.Length / D;  c[k] = number of positions i with indices[i] == k   (whole call)
    /// require every 0 &lt;= indices[i] &lt; rows                      // else throws, nothing written
    /// if !(options has Accumulate): gradWeight[:] = +0.0
    /// for i in 0 .. indices.Length-1, in position order:
    ///     k = indices[i]; if k == paddingIndex: continue
    ///     if options has ScaleGradByFrequency: gradWeight[k] = fma(gradOutput[i], fl(1/c[k]), gradWeight[k])
    ///     else:                                gradWeight[k] = gradWeight[k] + gradOutput[i]
    /// </code>
    /// In short: <c>gradWeight[k] (+)= Σ_{i: indices[i] = k ≠ paddingIndex} gradOutput[i] · s[k]</c>, summed in position
    /// order. Each row accumulates serially in position order, as torch does, so the result is the same
    /// bits as torch 1.13 and as every vector width and thread count. <c>fl(1/c)</c> is <c>1.0 / c</c> computed in
    /// double and converted to the gradient's type as c10 converts a double (float: rounded once; double:
    /// kept; Half and BFloat16: rounded to float, then to the type); padding positions are counted in <c>c</c>,
    /// though the padding row receives nothing.
    /// <para>
    /// The gradient has the table's type; float and double update as above. Half and BFloat16 accumulate
    /// in their own type, rounded at every step as torch 1.13 does: without ScaleGradByFrequency
    /// <c>rd(acc + g)</c>; with it, Half <c>rd(acc + rd(g · fl(1/c)))</c>, and BFloat16
    /// <c>rd(fma_f32(g, fl(1/c), acc))</c> in the first <c>D − D % 32</c> columns (torch's vector kernel) and
    /// <c>rd(acc + rd(g · fl(1/c)))</c> in the last <c>D % 32</c> (its scalar kernel).
    /// </para>
    /// After a failure nothing has been written; on success nothing is allocated once a
    /// frequency-scaled call has run once (the count scratch is pooled).
    /// </remarks>
    /// <param name="gradOutput">Gradient of the forward output, <c>indices.Length × embeddingDim</c> elements of the table's type.</param>
    /// <param name="indices">The indices of the forward call (N-d index tensors flattened row-major).</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="gradWeight">The <c>rows × embeddingDim</c> gradient of the table; overwritten, or added to with <see cref="EmbeddingGradOptions.Accumulate"/>.</param>
    /// <param name="paddingIndex">A row whose positions contribute nothing, already normalised (see <see cref="NormalizePaddingIndex"/>), or <see cref="NoPadding"/>.</param>
    /// <param name="options">Frequency scaling and accumulation.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside <c>[0, rows)</c>, <paramref name="embeddingDim"/> is not positive, or <paramref name="options"/> has unknown flags.</exception>
    /// <exception cref="ArgumentException">The gradient lengths do not fit the shapes, or <paramref name="gradWeight"/> overlaps an input.</exception>
    public static void EmbeddingBackward(ReadOnlySpan<float> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, Span<float> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<float> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, Span<float> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    // One overload per table and index type, shaped as the float32 ones: the element type alone picks
    // the overload, so the optional parameters cannot make a call ambiguous (RS0026 guards against that).
#pragma warning disable RS0026
    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<double> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, Span<double> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<double> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, Span<double> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, Span<Half> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, Span<Half> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<BFloat16> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, Span<BFloat16> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
    public static void EmbeddingBackward(ReadOnlySpan<BFloat16> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, Span<BFloat16> gradWeight, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingBackward(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, KernelDispatch.BestWidth);
#pragma warning restore RS0026

    /// <summary>
    /// Sparse gradient in torch's layout (<c>sparse=True</c>: sparse_coo, uncoalesced): one entry per
    /// non-padding position, in position order; the values are the <paramref name="gradOutput"/> rows.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim;  c[k] = number of positions i with indices[i] == k   (whole call)
    /// require every 0 &lt;= indices[i] &lt; numEmbeddings              // else throws, nothing written
    /// n = 0
    /// for i in 0 .. indices.Length-1: if indices[i] != paddingIndex:
    ///     rows[n] = indices[i]; values[n] = gradOutput[i] (* fl(1/c[indices[i]]) with ScaleGradByFrequency); n += 1
    /// return n
    /// </code>
    /// The values have the table's type and are copied bit for bit. torch refuses <c>scale_grad_by_freq</c>
    /// with sparse gradients; here it multiplies each value by the same <c>fl(1/c)</c> the dense gradient
    /// uses, one rounding in the table's type (<c>rd(g · fl(1/c))</c>), so coalescing gives the dense result
    /// up to the fused rounding. <see cref="EmbeddingGradOptions.Accumulate"/> does not apply (an uncoalesced
    /// gradient accumulates by concatenation) and is rejected. <c>indices.Length</c> entries always suffice.
    /// </remarks>
    /// <param name="gradOutput">Gradient of the forward output, <c>indices.Length × embeddingDim</c> elements of the table's type.</param>
    /// <param name="indices">The indices of the forward call.</param>
    /// <param name="embeddingDim">Columns per row; zero or more.</param>
    /// <param name="numEmbeddings">Rows in the table.</param>
    /// <param name="rows">Receives the row of each entry.</param>
    /// <param name="values">Receives <c>entries × embeddingDim</c> elements.</param>
    /// <param name="paddingIndex">A normalised row whose positions are left out, or <see cref="NoPadding"/>.</param>
    /// <param name="options"><see cref="EmbeddingGradOptions.None"/> or <see cref="EmbeddingGradOptions.ScaleGradByFrequency"/>.</param>
    /// <returns>The number of entries written (nnz).</returns>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside the table, a size is negative, or <paramref name="options"/> is not allowed.</exception>
    /// <exception cref="ArgumentException">A length does not fit the shapes, an output is too short, or outputs overlap each other or an input.</exception>
    public static int EmbeddingSparseBackward(ReadOnlySpan<float> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<float> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<int>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<float> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<float> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<long>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    // One overload per table and index type, shaped as the float32 ones: the element type alone picks
    // the overload, so the optional parameters cannot make a call ambiguous (RS0026 guards against that).
#pragma warning disable RS0026
    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<double> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<double> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<double, int>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<double> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<double> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<double, long>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<Half> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<Half, int>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<Half> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<Half> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<Half, long>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<BFloat16> gradOutput, ReadOnlySpan<int> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<BFloat16> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<BFloat16, int>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);

    /// <inheritdoc cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>
    public static int EmbeddingSparseBackward(ReadOnlySpan<BFloat16> gradOutput, ReadOnlySpan<long> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<BFloat16> values, long paddingIndex = NoPadding, EmbeddingGradOptions options = EmbeddingGradOptions.None) =>
        EmbeddingSparseBackward<BFloat16, long>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options);
#pragma warning restore RS0026

    /// <summary>
    /// Coalesces a sparse gradient: the unique rows in ascending order, each with the sum of its values
    /// taken in entry order starting from +0.0 (the form the fused optimizer steps take).
    /// </summary>
    /// <remarks>
    /// <code>
    /// require every 0 &lt;= rows[e] &lt; numEmbeddings                  // else throws, nothing written
    /// u = sorted distinct values of rows
    /// for j in 0 .. len(u)-1:
    ///     uniqueRows[j] = u[j]; summedValues[j] = +0.0
    ///     for e in 0 .. rows.Length-1, in entry order: if rows[e] == u[j]: summedValues[j] = summedValues[j] + values[e]
    /// return len(u)
    /// </code>
    /// Each add is one rounding in the values' type (<c>rd(acc + v)</c>; Half and BFloat16 widen to float, add,
    /// and round back), so coalescing <see cref="EmbeddingSparseBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, long, Span{long}, Span{float}, long, EmbeddingGradOptions)"/>'s
    /// unscaled output gives the non-zero rows of the dense gradient, bit for bit, for every type. torch's
    /// <c>coalesce()</c> visits the entries of a row in the order of its (unstable) sort, which is entry order
    /// for up to 16 entries, and copies the first entry instead of adding it to +0.0 (a lone −0.0 stays −0.0
    /// there, +0.0 here). <c>rows.Length</c> entries always suffice.
    /// </remarks>
    /// <param name="rows">The row of each entry.</param>
    /// <param name="values">The <c>rows.Length × embeddingDim</c> values.</param>
    /// <param name="embeddingDim">Columns per row; zero or more.</param>
    /// <param name="numEmbeddings">Rows in the table.</param>
    /// <param name="uniqueRows">Receives the distinct rows, ascending.</param>
    /// <param name="summedValues">Receives <c>count × embeddingDim</c> elements of the values' type.</param>
    /// <returns>The number of distinct rows written.</returns>
    /// <exception cref="ArgumentOutOfRangeException">A row is outside <c>[0, numEmbeddings)</c> or a size is negative.</exception>
    /// <exception cref="ArgumentException">A length does not fit the shapes, an output is too short, or outputs overlap each other or an input.</exception>
    public static int SparseCoalesce(ReadOnlySpan<long> rows, ReadOnlySpan<float> values, int embeddingDim, long numEmbeddings, Span<long> uniqueRows, Span<float> summedValues) =>
        SparseCoalesce(rows, values, embeddingDim, numEmbeddings, uniqueRows, summedValues, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SparseCoalesce(ReadOnlySpan{long}, ReadOnlySpan{float}, int, long, Span{long}, Span{float})"/>
    public static int SparseCoalesce(ReadOnlySpan<long> rows, ReadOnlySpan<double> values, int embeddingDim, long numEmbeddings, Span<long> uniqueRows, Span<double> summedValues) =>
        SparseCoalesce<double>(rows, values, embeddingDim, numEmbeddings, uniqueRows, summedValues, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SparseCoalesce(ReadOnlySpan{long}, ReadOnlySpan{float}, int, long, Span{long}, Span{float})"/>
    public static int SparseCoalesce(ReadOnlySpan<long> rows, ReadOnlySpan<Half> values, int embeddingDim, long numEmbeddings, Span<long> uniqueRows, Span<Half> summedValues) =>
        SparseCoalesce<Half>(rows, values, embeddingDim, numEmbeddings, uniqueRows, summedValues, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SparseCoalesce(ReadOnlySpan{long}, ReadOnlySpan{float}, int, long, Span{long}, Span{float})"/>
    public static int SparseCoalesce(ReadOnlySpan<long> rows, ReadOnlySpan<BFloat16> values, int embeddingDim, long numEmbeddings, Span<long> uniqueRows, Span<BFloat16> summedValues) =>
        SparseCoalesce<BFloat16>(rows, values, embeddingDim, numEmbeddings, uniqueRows, summedValues, KernelDispatch.BestWidth);

    /// <summary>The float32 dense span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, Span<float> gradWeight, long paddingIndex, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBackward<float, TIndex>(gradOutput, indices, embeddingDim, gradWeight, paddingIndex, options, width, threads);

    /// <summary>The dense span overload for any table type, with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBackward<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, Span<TElement> gradWeight, long paddingIndex, EmbeddingGradOptions options, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (gradWeight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The gradient of the weight holds {gradWeight.Length} elements, which is not a whole number of rows of {embeddingDim}.", nameof(gradWeight));
        }

        long rows = gradWeight.Length / embeddingDim;
        CheckGradOutput(gradOutput, indices.Length, embeddingDim);
        CheckBackwardOptions(options, EmbeddingGradOptions.ScaleGradByFrequency | EmbeddingGradOptions.Accumulate, paddingIndex, rows);
        if (gradWeight.Overlaps(gradOutput) || MemoryMarshal.AsBytes(gradWeight).Overlaps(MemoryMarshal.AsBytes(indices)))
        {
            throw new ArgumentException("The gradient of the weight overlaps the output gradient or the indices.", nameof(gradWeight));
        }

        nint bad = EmbeddingBackward(
            ref MemoryMarshal.GetReference(gradOutput), ref MemoryMarshal.GetReference(indices), indices.Length, embeddingDim,
            rows, paddingIndex, options, ref MemoryMarshal.GetReference(gradWeight), width, threads);
        ThrowIfBadIndex(indices, bad, rows);
    }

    /// <summary>The float32 sparse span overload; values are copied or multiplied element by element, so no width choice matters.</summary>
    internal static int EmbeddingSparseBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<float> values, long paddingIndex, EmbeddingGradOptions options, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingSparseBackward<float, TIndex>(gradOutput, indices, embeddingDim, numEmbeddings, rows, values, paddingIndex, options, threads);

    /// <summary>The sparse span overload for any table type.</summary>
    internal static int EmbeddingSparseBackward<TElement, TIndex>(ReadOnlySpan<TElement> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<TElement> values, long paddingIndex, EmbeddingGradOptions options, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegative(embeddingDim);
        ArgumentOutOfRangeException.ThrowIfNegative(numEmbeddings);
        CheckGradOutput(gradOutput, indices.Length, embeddingDim);
        CheckBackwardOptions(options, EmbeddingGradOptions.ScaleGradByFrequency, paddingIndex, numEmbeddings);
        ReadOnlySpan<byte> inputs = MemoryMarshal.AsBytes(gradOutput), indexBytes = MemoryMarshal.AsBytes(indices);
        Span<byte> rowBytes = MemoryMarshal.AsBytes(rows), valueBytes = MemoryMarshal.AsBytes(values);
        if (rowBytes.Overlaps(inputs) || rowBytes.Overlaps(indexBytes) || rowBytes.Overlaps(valueBytes))
        {
            throw new ArgumentException("The rows output overlaps the values output or an input.", nameof(rows));
        }

        if (valueBytes.Overlaps(inputs) || valueBytes.Overlaps(indexBytes))
        {
            throw new ArgumentException("The values output overlaps an input.", nameof(values));
        }

        int capacity = embeddingDim == 0 ? rows.Length : Math.Min(rows.Length, values.Length / embeddingDim);
        nint bad = EmbeddingSparseBackward(
            ref MemoryMarshal.GetReference(gradOutput), ref MemoryMarshal.GetReference(indices), indices.Length, embeddingDim,
            numEmbeddings, paddingIndex, (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0,
            ref MemoryMarshal.GetReference(rows), ref MemoryMarshal.GetReference(values), capacity, out nint nnz, threads);
        ThrowIfBadIndex(indices, bad, numEmbeddings);
        if (nnz > capacity)
        {
            throw new ArgumentException($"The outputs hold {rows.Length} rows and {values.Length} elements; {nnz} entries × {embeddingDim} columns need {nnz} and {nnz * embeddingDim}.", rows.Length < nnz ? nameof(rows) : nameof(values));
        }

        return (int)nnz;
    }

    /// <summary>The float32 coalesce span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static int SparseCoalesce(ReadOnlySpan<long> rows, ReadOnlySpan<float> values, int embeddingDim, long numEmbeddings, Span<long> uniqueRows, Span<float> summedValues, VectorWidth width) =>
        SparseCoalesce<float>(rows, values, embeddingDim, numEmbeddings, uniqueRows, summedValues, width);

    /// <summary>The coalesce span overload for any value type, with the vector width chosen by the caller (tests force each width).</summary>
    internal static int SparseCoalesce<TElement>(ReadOnlySpan<long> rows, ReadOnlySpan<TElement> values, int embeddingDim, long numEmbeddings, Span<long> uniqueRows, Span<TElement> summedValues, VectorWidth width)
        where TElement : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(embeddingDim);
        ArgumentOutOfRangeException.ThrowIfNegative(numEmbeddings);
        if (values.Length != (long)rows.Length * embeddingDim)
        {
            throw new ArgumentException($"The values hold {values.Length} elements; {rows.Length} entries × {embeddingDim} columns need exactly {(long)rows.Length * embeddingDim}.", nameof(values));
        }

        if (numEmbeddings > MaxScratchRows)
        {
            throw new ArgumentOutOfRangeException(nameof(numEmbeddings), numEmbeddings, ScratchTooLarge(numEmbeddings));
        }

        ReadOnlySpan<byte> rowInput = MemoryMarshal.AsBytes(rows), valueInput = MemoryMarshal.AsBytes(values);
        Span<byte> rowBytes = MemoryMarshal.AsBytes(uniqueRows), valueBytes = MemoryMarshal.AsBytes(summedValues);
        if (rowBytes.Overlaps(rowInput) || rowBytes.Overlaps(valueInput) || rowBytes.Overlaps(valueBytes))
        {
            throw new ArgumentException("The unique-rows output overlaps the summed-values output or an input.", nameof(uniqueRows));
        }

        if (valueBytes.Overlaps(rowInput) || valueBytes.Overlaps(valueInput))
        {
            throw new ArgumentException("The summed-values output overlaps an input.", nameof(summedValues));
        }

        int capacity = embeddingDim == 0 ? uniqueRows.Length : Math.Min(uniqueRows.Length, summedValues.Length / embeddingDim);
        nint bad = SparseCoalesce(
            ref MemoryMarshal.GetReference(rows), ref MemoryMarshal.GetReference(values), rows.Length, embeddingDim, numEmbeddings,
            ref MemoryMarshal.GetReference(uniqueRows), ref MemoryMarshal.GetReference(summedValues), capacity, out nint unique, width);
        ThrowIfBadIndex(rows, bad, numEmbeddings, nameof(rows));
        if (unique > capacity)
        {
            throw new ArgumentException($"The outputs hold {uniqueRows.Length} rows and {summedValues.Length} elements; {unique} distinct rows × {embeddingDim} columns need {unique} and {unique * embeddingDim}.", uniqueRows.Length < unique ? nameof(uniqueRows) : nameof(summedValues));
        }

        return (int)unique;
    }

    /// <summary>
    /// The validated dense core shared by the span API and the C ABI: checks every index (on the
    /// calling thread), then zeroes (unless accumulating) and scatter-adds. Shapes, options, padding
    /// and buffers are the caller's responsibility; with frequency scaling, <paramref name="rows"/>
    /// must not exceed <see cref="MaxScratchRows"/>.
    /// </summary>
    /// <remarks>
    /// With more than one thread the table is split into ranges of destination rows: each piece zeroes
    /// its rows, then scans every position in order and applies those whose row is in its range, so
    /// each row still accumulates its contributions in position order (the bits of one thread).
    /// Frequency counts are computed once, before the split.
    /// </remarks>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was written.</returns>
    internal static unsafe nint EmbeddingBackward<TElement, TIndex>(ref readonly TElement gradOutput, ref readonly TIndex indices, nint count, int dimension, long rows, long paddingIndex, EmbeddingGradOptions options, ref TElement gradWeight, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex index = ref Unsafe.AsRef(in indices);
        nint bad = IndexRange.FindFirstOutOfRange(ref index, count, rows);
        if (bad >= 0)
        {
            return bad;
        }

        bool clear = (options & EmbeddingGradOptions.Accumulate) == 0;
        bool scatter = count != 0 && dimension != 0;
        long usefulBytes = sizeof(TElement) * (long)dimension * ((scatter ? 3L * count : 0) + (clear ? rows : 0));
        threads = EmbeddingThreads.For(usefulBytes, rows, threads);
        if (threads == 1)
        {
            if (clear)
            {
                Clear(ref gradWeight, rows * dimension);
            }

            if (!scatter)
            {
                return -1;
            }
        }

        using FrequencyCounts counts = scatter && (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0 ? FrequencyCounts.Of(ref index, count, rows) : FrequencyCounts.None;
        ref int countsStart = ref counts.Start;
        if (threads == 1)
        {
            DispatchScatterAdd(ref Unsafe.AsRef(in gradOutput), ref index, count, dimension, paddingIndex, ref countsStart, ref gradWeight, width);
            return -1;
        }

        fixed (TElement* source = &Unsafe.AsRef(in gradOutput))
        fixed (TIndex* first = &index)
        fixed (int* frequency = &countsStart)
        fixed (TElement* destination = &gradWeight)
        {
            var work = new ScatterAddWork<TElement, TIndex>
            {
                Source = source, Indices = first, Count = scatter ? count : 0, Dimension = dimension, Rows = rows, PaddingIndex = paddingIndex,
                Counts = frequency, Destination = destination, Clear = clear, Kernel = ScatterAddKernelFor<TElement, TIndex>(dimension, width, frequencyScaled: frequency != null),
            };
            WorkerPool.Run(ref work, threads, threads);
        }

        return -1;
    }

    /// <summary>
    /// One piece of a parallel dense backward: destination rows <c>[lo, hi)</c>. Zeroes them (unless
    /// accumulating), then walks every position in order, a chunk at a time compacted to the positions
    /// whose row falls in the range, and hands each chunk's list to the scatter-add kernel of the key, the
    /// one the serial backward runs: each row gets the bits of one thread, in position order.
    /// </summary>
    private unsafe struct ScatterAddWork<TElement, TIndex> : IParallelWork
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        /// <summary>Positions compacted per round: a 4 KiB list on the worker's stack.</summary>
        private const int ChunkPositions = 1024;

        public TElement* Source;
        public TIndex* Indices;
        public nint Count;
        public int Dimension;
        public long Rows;
        public long PaddingIndex;
        public int* Counts;
        public TElement* Destination;
        public bool Clear;
        public ScatterAddKernel<TElement, TIndex> Kernel;

        public readonly void Execute(int part, int parts)
        {
            long lo = EmbeddingThreads.Boundary(Rows, part, parts), hi = EmbeddingThreads.Boundary(Rows, part + 1, parts);
            if (Clear)
            {
                Clear(ref Destination[lo * Dimension], (hi - lo) * Dimension);
            }

            int* mine = stackalloc int[ChunkPositions];
            for (nint chunk = 0; chunk < Count; chunk += ChunkPositions)
            {
                // Compact the chunk to the positions whose row is in [lo, hi), in position order.
                int length = (int)Math.Min(ChunkPositions, Count - chunk);
                TIndex* indices = Indices + chunk;
                int kept = 0;
                for (int k = 0; k < length; k++)
                {
                    long candidate = long.CreateTruncating(indices[k]);
                    mine[kept] = k;
                    kept += EmbeddingThreads.Owns(candidate, lo, hi);
                }

                Kernel(in Source[chunk * Dimension], Dimension, in *indices, in *mine, kept, PaddingIndex, in Counts == null ? ref Unsafe.NullRef<int>() : ref *Counts, ref *Destination);
            }
        }
    }

    /// <summary>
    /// The validated sparse core: checks every index and counts the entries; writes them only when
    /// <paramref name="nnz"/> fits <paramref name="capacity"/> (the caller reports the shortfall).
    /// Large calls split the positions into contiguous ranges, each writing its own entries.
    /// </summary>
    /// <returns>-1 when every index is valid (then compare <paramref name="nnz"/> with the capacity); otherwise the position of the first bad index. On any failure nothing was written.</returns>
    internal static unsafe nint EmbeddingSparseBackward<TElement, TIndex>(ref readonly TElement gradOutput, ref readonly TIndex indices, nint count, int dimension, long rows, long paddingIndex, bool scaleByFrequency, ref long outRows, ref TElement outValues, nint capacity, out nint nnz, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex index = ref Unsafe.AsRef(in indices);
        nnz = 0;
        nint bad = IndexRange.FindFirstOutOfRange(ref index, count, rows);
        if (bad >= 0)
        {
            return bad;
        }

        for (nint i = 0; i < count; i++)
        {
            nnz += long.CreateTruncating(Unsafe.Add(ref index, i)) == paddingIndex ? 0 : 1;
        }

        if (nnz > capacity || nnz == 0)
        {
            return -1;
        }

        using FrequencyCounts counts = scaleByFrequency ? FrequencyCounts.Of(ref index, count, rows) : FrequencyCounts.None;
        ref int countsStart = ref counts.Start;
        threads = EmbeddingThreads.For(2L * sizeof(TElement) * dimension * nnz, count, threads);
        if (threads == 1)
        {
            SparseRange(ref Unsafe.AsRef(in gradOutput), ref index, 0, count, dimension, paddingIndex, ref countsStart, ref outRows, ref outValues, 0);
            return -1;
        }

        fixed (TElement* source = &Unsafe.AsRef(in gradOutput))
        fixed (TIndex* first = &index)
        fixed (int* frequency = &countsStart)
        fixed (long* entryRows = &outRows)
        fixed (TElement* entryValues = &outValues)
        {
            var work = new SparseWork<TElement, TIndex>
            {
                Source = source, Indices = first, Count = count, Dimension = dimension, PaddingIndex = paddingIndex,
                Counts = frequency, Rows = entryRows, Values = entryValues,
            };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, count), threads);
        }

        return -1;
    }

    /// <summary>Writes the entries of positions <c>[start, end)</c>, the first as entry <paramref name="entry"/>.</summary>
    private static void SparseRange<TElement, TIndex>(ref TElement source, ref TIndex index, nint start, nint end, int dimension, long paddingIndex, ref int counts, ref long outRows, ref TElement outValues, nint entry)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        bool scaled = !Unsafe.IsNullRef(ref counts);
        for (nint i = start; i < end; i++)
        {
            long row = long.CreateTruncating(Unsafe.Add(ref index, i));
            if (row == paddingIndex)
            {
                continue;
            }

            Unsafe.Add(ref outRows, entry) = row;
            ref TElement from = ref Unsafe.Add(ref source, i * dimension);
            ref TElement to = ref Unsafe.Add(ref outValues, entry * dimension);
            if (!scaled)
            {
                MemoryMarshal.CreateReadOnlySpan(ref from, dimension).CopyTo(MemoryMarshal.CreateSpan(ref to, dimension));
            }
            else
            {
                RowUpdate.Multiply(ref from, RowUpdate.FrequencyScale<TElement>(Unsafe.Add(ref counts, (nint)row)), ref to, dimension);
            }

            entry++;
        }
    }

    /// <summary>One piece of a parallel sparse backward: a contiguous range of positions, whose first entry follows the non-padding positions before it.</summary>
    private unsafe struct SparseWork<TElement, TIndex> : IParallelWork
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        public TElement* Source;
        public TIndex* Indices;
        public nint Count;
        public int Dimension;
        public long PaddingIndex;
        public int* Counts;
        public long* Rows;
        public TElement* Values;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Count, part + 1, parts);
            nint entry = start;
            if (PaddingIndex != NoPadding)
            {
                for (nint i = 0; i < start; i++)
                {
                    entry -= long.CreateTruncating(Indices[i]) == PaddingIndex ? 1 : 0;
                }
            }

            ref int counts = ref Counts == null ? ref Unsafe.NullRef<int>() : ref *Counts;
            SparseRange(ref *Source, ref *Indices, start, end, Dimension, PaddingIndex, ref counts, ref *Rows, ref *Values, entry);
        }
    }

    /// <summary>
    /// The validated coalesce core: checks every row, finds the distinct rows, and writes them (sorted)
    /// with their sums only when they fit <paramref name="capacity"/>. <paramref name="numEmbeddings"/>
    /// must not exceed <see cref="MaxScratchRows"/>, nor <paramref name="nnz"/> <see cref="Array.MaxLength"/>.
    /// </summary>
    /// <returns>-1 when every row is valid (then compare <paramref name="unique"/> with the capacity); otherwise the position of the first bad row. On any failure nothing was written.</returns>
    internal static nint SparseCoalesce<TElement>(ref readonly long rows, ref readonly TElement values, nint nnz, int dimension, long numEmbeddings, ref long uniqueRows, ref TElement summedValues, nint capacity, out nint unique, VectorWidth width)
        where TElement : unmanaged
    {
        ref long row = ref Unsafe.AsRef(in rows);
        unique = 0;
        nint bad = IndexRange.FindFirstOutOfRange(ref row, nnz, numEmbeddings);
        if (bad >= 0 || nnz == 0)
        {
            return bad;
        }

        // slots[r] for the rows this call names only: pooled arrays come back dirty, and clearing all
        // V entries per call would cost more than the coalesce itself for large tables.
        // 0 = named, 1 = counted, 2 = listed; then the output position of the row.
        int[] slots = ArrayPool<int>.Shared.Rent((int)numEmbeddings);
        int[]? mapped = null;
        try
        {
            for (nint e = 0; e < nnz; e++)
            {
                slots[Unsafe.Add(ref row, e)] = 0;
            }

            for (nint e = 0; e < nnz; e++)
            {
                ref int slot = ref slots[Unsafe.Add(ref row, e)];
                if (slot == 0)
                {
                    slot = 1;
                    unique++;
                }
            }

            if (unique > capacity)
            {
                return -1;
            }

            nint listed = 0;
            for (nint e = 0; e < nnz; e++)
            {
                ref int slot = ref slots[Unsafe.Add(ref row, e)];
                if (slot == 1)
                {
                    slot = 2;
                    Unsafe.Add(ref uniqueRows, listed++) = Unsafe.Add(ref row, e);
                }
            }

            Span<long> sorted = MemoryMarshal.CreateSpan(ref uniqueRows, (int)unique);
            sorted.Sort();
            for (int j = 0; j < sorted.Length; j++)
            {
                slots[sorted[j]] = j;
            }

            Clear(ref summedValues, (long)unique * dimension);
            if (dimension == 0)
            {
                return -1;
            }

            // Entry e adds into output row slots[rows[e]]: the dense scatter-add over the compacted rows,
            // so each sum runs in entry order from +0.0 with the same kernels as the dense gradient.
            mapped = ArrayPool<int>.Shared.Rent((int)nnz);
            for (nint e = 0; e < nnz; e++)
            {
                mapped[e] = slots[Unsafe.Add(ref row, e)];
            }

            DispatchScatterAdd(ref Unsafe.AsRef(in values), ref MemoryMarshal.GetArrayDataReference(mapped), nnz, dimension, NoPadding, ref Unsafe.NullRef<int>(), ref summedValues, width);
        }
        finally
        {
            ArrayPool<int>.Shared.Return(slots);
            if (mapped is not null)
            {
                ArrayPool<int>.Shared.Return(mapped);
            }
        }

        return -1;
    }

    /// <summary>Checks a padding row for the backward: a normalised row of the table or <see cref="NoPadding"/>.</summary>
    internal static bool IsValidPaddingRow(long paddingIndex, long rows) => paddingIndex == NoPadding || (paddingIndex >= 0 && paddingIndex < rows);

    internal static string PaddingRowOutOfRange(long paddingIndex, long rows) => string.Create(CultureInfo.InvariantCulture,
        $"padding_idx {paddingIndex} is not a row of the table: pass a normalised row in [0, {rows}) or {NoPadding} for no padding");

    internal static string ScratchTooLarge(long rows) => string.Create(CultureInfo.InvariantCulture,
        $"num_embeddings {rows} exceeds {MaxScratchRows}, the largest table whose rows can be counted (scale_grad_by_freq) or coalesced");

    private static void DispatchScatterAdd<TElement, TIndex>(ref TElement source, ref TIndex indices, nint count, int dimension, long paddingIndex, ref int counts, ref TElement destination, VectorWidth width)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        ScatterAddKernelFor<TElement, TIndex>(dimension, width, frequencyScaled: !Unsafe.IsNullRef(ref counts))(in source, dimension, in indices, in Unsafe.NullRef<int>(), count, paddingIndex, in counts, ref destination);

    /// <summary>
    /// The scatter-add kernel of the key: a generated one for a specialised dimension, else the generic one. The
    /// generated kernels fuse the frequency-scaled update as torch's FMA kernels do; when torch runs its default
    /// kernels (<see cref="TorchProducts.AreFused"/> false) a frequency-scaled call takes the generic kernel with
    /// the products rounded.
    /// </summary>
    private static unsafe ScatterAddKernel<TElement, TIndex> ScatterAddKernelFor<TElement, TIndex>(int dimension, VectorWidth width, bool frequencyScaled)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        width = KernelDispatch.FitWidth(width, dimension, sizeof(TElement));
        if (frequencyScaled && !TorchProducts.AreFused)
        {
            return GenericScatterAdd<TElement, TIndex>.At<RoundedProducts>(width);
        }

        return KernelDispatch.Find(
            new KernelKey(KernelOperation.ScatterAdd, TableElements.TypeOf<TElement>(), KernelDispatch.IndexTypeOf<TIndex>(), dimension, width),
            GenericScatterAdd<TElement, TIndex>.At<FusedProducts>(width));
    }

    /// <summary>Blocks up to this many bytes are cleared with ordinary vector stores, larger ones with libc's memset.</summary>
    /// <remarks>
    /// A gradient is cleared and then scattered into. With libc's memset (where <c>Span.Clear</c> ends), a cached
    /// 6 MiB gradient's clear and scatter took 2-4x as long in some runs as in others (bag max backward, B D = 16:
    /// 149-602 µs); with ordinary vector stores, 135-151 µs in every run. Blocks larger than the cache went both
    /// ways (A, 146 MiB: 10.0 → 7.7 ms; C, 244 MiB: 10.4 → 11.7 ms), so they keep memset. The bound is half the
    /// 32 MiB last-level cache of the machine measured (bench/results/gradient-clear.md).
    /// </remarks>
    internal const long CachedClearBytes = 16L << 20;

    /// <summary>Zeroes (+0.0 in every table type) <paramref name="length"/> elements.</summary>
    internal static void Clear<TElement>(ref TElement start, long length)
        where TElement : unmanaged
    {
        if (length * Unsafe.SizeOf<TElement>() <= CachedClearBytes)
        {
            ClearCached(ref Unsafe.As<TElement, byte>(ref start), (nuint)length * (nuint)Unsafe.SizeOf<TElement>());
            return;
        }

        while (length > 0)
        {
            int chunk = (int)Math.Min(length, 1 << 30);
            MemoryMarshal.CreateSpan(ref start, chunk).Clear();
            start = ref Unsafe.Add(ref start, chunk);
            length -= chunk;
        }
    }

    /// <summary>Zeroes <paramref name="bytes"/> bytes with ordinary vector stores, which leave them in the cache.</summary>
    private static void ClearCached(ref byte first, nuint bytes)
    {
        nuint width = (nuint)Vector<byte>.Count;
        nuint offset = 0;
        for (; offset + 4 * width <= bytes; offset += 4 * width)
        {
            Vector<byte>.Zero.StoreUnsafe(ref first, offset);
            Vector<byte>.Zero.StoreUnsafe(ref first, offset + width);
            Vector<byte>.Zero.StoreUnsafe(ref first, offset + 2 * width);
            Vector<byte>.Zero.StoreUnsafe(ref first, offset + 3 * width);
        }

        for (; offset < bytes; offset++)
        {
            Unsafe.Add(ref first, offset) = 0;
        }
    }

    private static void CheckGradOutput<TElement>(ReadOnlySpan<TElement> gradOutput, int count, int embeddingDim)
    {
        if (gradOutput.Length != (long)count * embeddingDim)
        {
            throw new ArgumentException($"The output gradient holds {gradOutput.Length} elements; {count} indices × {embeddingDim} columns need exactly {(long)count * embeddingDim}.", nameof(gradOutput));
        }
    }

    private static void CheckBackwardOptions(EmbeddingGradOptions options, EmbeddingGradOptions allowed, long paddingIndex, long rows)
    {
        if ((options & ~allowed) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options, $"Only {allowed} may be set here.");
        }

        if (!IsValidPaddingRow(paddingIndex, rows))
        {
            throw new ArgumentOutOfRangeException(nameof(paddingIndex), paddingIndex, PaddingRowOutOfRange(paddingIndex, rows));
        }

        if ((options & EmbeddingGradOptions.ScaleGradByFrequency) != 0 && rows > MaxScratchRows)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options, ScratchTooLarge(rows));
        }
    }

    private static void ThrowIfBadIndex<TIndex>(ReadOnlySpan<TIndex> indices, nint bad, long rows, string paramName = "indices")
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (bad >= 0)
        {
            long value = long.CreateTruncating(indices[(int)bad]);
            throw new ArgumentOutOfRangeException(paramName, value, EmbeddingErrors.IndexOutOfRange(bad, value, rows));
        }
    }
}
