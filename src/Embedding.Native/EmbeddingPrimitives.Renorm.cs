using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>
    /// Rescales, in place, each distinct row that <paramref name="indices"/> references and whose
    /// p-norm exceeds <paramref name="maxNorm"/>: <c>torch.embedding_renorm_(weight, indices, max_norm, norm_type)</c>,
    /// the step <c>F.embedding(..., max_norm=...)</c> runs before its gather.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D
    /// require 0 &lt;= indices[i] &lt; rows for every i       // else throws, nothing changed
    /// p = (float)normType                                   // torch hands its norm a float; that value picks the norm
    /// for each distinct k in indices, ascending:
    ///     n = torch's row.norm(p) of weight[k], in float:
    ///         p = +inf: max |x|     p = -inf: min |x|     p = 0: count of x != 0         (exact)
    ///         p = 1: acc = 0f; acc += |x| per column, in order
    ///         p = 2: L = 8 (16 when torch runs its AVX-512 kernels) float lanes, over the whole blocks of
    ///                L columns lane[c mod L] += x·x; s = lane[0] + … + lane[L-1] left to right; then
    ///                s += x·x for the last D mod L columns in order; n = sqrtf(s). With torch's FMA
    ///                kernels (AVX2, AVX-512) each += x·x is one fmaf, except that when L/2 or more
    ///                columns are left after the blocks the first L/2 of them add a rounded x·x;
    ///                with its default kernels every x·x is rounded first
    ///         else:  acc = 0f; acc += powf(|x|, p) per column; n = powf(acc, 1f / p)
    ///     if n &gt; maxNorm:                                  // strict, compared in double
    ///         s = (float)(maxNorm / (n + 1e-7))             // the quotient in double
    ///         weight[k][c] = weight[k][c] * s               // float multiply, every column
    /// </code>
    /// <para>
    /// One line: <c>W[k] *= fl32(maxNorm / (‖W[k]‖ₚ + 1e-7))</c> for each distinct referenced row with <c>‖W[k]‖ₚ &gt; maxNorm</c>,
    /// the norm computed as torch 1.13 computes <c>row.norm(p)</c> for float32, so the result is torch's bit for bit.
    /// </para>
    /// <para>
    /// The kernels are the ones torch picks in this process, not this library's ISA tier: those named by
    /// <c>ATEN_CPU_CAPABILITY</c> (<c>avx512</c>, <c>avx2</c>, <c>default</c>) when it is set, else AVX2 on a
    /// CPU with AVX2 and FMA, else the default ones. powf is the C library's, as torch's; sqrtf and fmaf
    /// are correctly rounded. The difference from torch 1.13: every index is validated before any row
    /// changes (torch renormalises the rows sorted before a bad index, and wraps negative ones, before
    /// it fails). Like torch, <paramref name="maxNorm"/>
    /// and <paramref name="normType"/> are not validated: <c>maxNorm = 0</c> zeroes every referenced
    /// row with a non-zero norm, and a negative <paramref name="maxNorm"/> flips its sign. A row whose
    /// norm is NaN is left as it is. The index buffer is not modified; it is sorted in a pooled copy,
    /// so the call allocates nothing once the pool is warm.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> floats; rescaled in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="indices">Row indices, any count, duplicates allowed (each row is rescaled once).</param>
    /// <param name="maxNorm">The largest norm a referenced row keeps.</param>
    /// <param name="normType">The p of the p-norm; torch's default is 2.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is negative or not below rows, or <paramref name="embeddingDim"/> is not positive.</exception>
    /// <exception cref="ArgumentException">The weight length is not a multiple of <paramref name="embeddingDim"/>, or the indices overlap the weight.</exception>
    public static void EmbeddingRenorm(Span<float> weight, int embeddingDim, ReadOnlySpan<int> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingRenorm(Span{float}, int, ReadOnlySpan{int}, double, double)"/>
    public static void EmbeddingRenorm(Span<float> weight, int embeddingDim, ReadOnlySpan<long> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <summary>
    /// Rescales, in place, each distinct row of a float64, float16 or bfloat16 table that
    /// <paramref name="indices"/> references and whose p-norm exceeds <paramref name="maxNorm"/>:
    /// <c>torch.embedding_renorm_(weight, indices, max_norm, norm_type)</c>, with torch 1.13's own
    /// norm arithmetic for the type, so the result is torch's bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D, rd(x) = x rounded to the table type (from float:
    /// round to nearest even; from double through float, as torch's scalar conversion does)
    /// require 0 &lt;= indices[i] &lt; rows for every i       // else throws, nothing changed
    /// p = (float)normType                                   // torch hands its norm a float; that value picks the norm
    /// for each distinct k in indices, ascending:
    ///     n = torch's row.norm(p) of weight[k], columns in order:
    ///         p = +inf: max |x|     p = -inf: min |x|                      (exact)
    ///         float64:  acc = 0.0 in double, per column:
    ///             p = 0: acc += (x != 0)    p = 1: acc += |x|    p = 2: acc = fma(x, x, acc); n = sqrt(acc)
    ///                    (acc += rd(x·x) instead of the fma when torch runs its default, non-FMA kernels)
    ///             else:  acc += pow(|x|, p); n = pow(acc, 1 / p)
    ///         float16 / bfloat16: acc = 0 in the table type, every step in float then rounded:
    ///             p = 0: acc = rd(acc + (x != 0))        (bfloat16 stops counting at 256, float16 at 2048)
    ///             p = 1: acc = rd(acc + |x|)
    ///             p = 2, float16:  acc = rd(acc + rd(x·x)); n = rd(sqrtf(acc))
    ///             p = 2, bfloat16: eight float lanes, lane[j] = fmaf(x, x, lane[j]) over the columns of
    ///                              whole blocks of 16 (column c into lane c mod 8); s = lane[0] + … + lane[7]
    ///                              left to right in float; s = fmaf(x, x, s) for the last D mod 16
    ///                              columns; n = rd(sqrtf(s))
    ///             else: q = rd(p); float16: acc = rd(acc + powf(|x|, q))
    ///                              bfloat16: acc = rd(acc + rd(powf(|x|, q)))
    ///                   n = rd(powf(acc, rd(1 / q)))
    ///     if n &gt; maxNorm:                                  // strict, compared in double
    ///         s = rd(maxNorm / (n + 1e-7))                  // the quotient in double
    ///         weight[k][c] = rd(weight[k][c] · s)           // one rounding (exact in float for 16-bit types)
    /// </code>
    /// <para>
    /// One line: <c>W[k] = rd(W[k] · rd(maxNorm / (‖W[k]‖ₚ + 1e-7)))</c> for each distinct referenced row with
    /// <c>‖W[k]‖ₚ &gt; maxNorm</c>, the norm computed as torch 1.13 computes it for the type.
    /// </para>
    /// <para>
    /// pow is the C library's <c>pow</c>/<c>powf</c>, as torch's; sqrt and fma are correctly rounded.
    /// The bfloat16 2-norm is the layout of torch's AVX2 kernels (a torch build running its AVX-512
    /// kernels would use sixteen lanes). Differences from torch 1.13: every index is validated before
    /// any row changes (torch renormalises the rows sorted before a bad index, and wraps negative ones,
    /// before it fails); a product that is NaN is stored as the type's default quiet NaN (torch's
    /// vectorised bfloat16 multiply may store 0xFFFF instead of 0x7FC0). Like torch, maxNorm and normType
    /// are not validated, and a row whose norm is NaN is left as it is.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> elements; rescaled in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="indices">Row indices, any count, duplicates allowed (each row is rescaled once).</param>
    /// <param name="maxNorm">The largest norm a referenced row keeps.</param>
    /// <param name="normType">The p of the p-norm; torch's default is 2.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is negative or not below rows, or <paramref name="embeddingDim"/> is not positive.</exception>
    /// <exception cref="ArgumentException">The weight length is not a multiple of <paramref name="embeddingDim"/>, or the indices overlap the weight.</exception>
    // RS0026 guards against overloads that differ only in optional parameters, which callers could not
    // tell apart; these differ in the table's element type, so every call binds to exactly one of them.
#pragma warning disable RS0026
    public static void EmbeddingRenorm(Span<double> weight, int embeddingDim, ReadOnlySpan<int> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm<double, int>(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingRenorm(Span{double}, int, ReadOnlySpan{int}, double, double)"/>
    public static void EmbeddingRenorm(Span<double> weight, int embeddingDim, ReadOnlySpan<long> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm<double, long>(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingRenorm(Span{double}, int, ReadOnlySpan{int}, double, double)"/>
    public static void EmbeddingRenorm(Span<Half> weight, int embeddingDim, ReadOnlySpan<int> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm<Half, int>(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingRenorm(Span{double}, int, ReadOnlySpan{int}, double, double)"/>
    public static void EmbeddingRenorm(Span<Half> weight, int embeddingDim, ReadOnlySpan<long> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm<Half, long>(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingRenorm(Span{double}, int, ReadOnlySpan{int}, double, double)"/>
    public static void EmbeddingRenorm(Span<BFloat16> weight, int embeddingDim, ReadOnlySpan<int> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm<BFloat16, int>(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);

    /// <inheritdoc cref="EmbeddingRenorm(Span{double}, int, ReadOnlySpan{int}, double, double)"/>
    public static void EmbeddingRenorm(Span<BFloat16> weight, int embeddingDim, ReadOnlySpan<long> indices, double maxNorm, double normType = 2.0) =>
        EmbeddingRenorm<BFloat16, long>(weight, embeddingDim, indices, maxNorm, normType, KernelDispatch.BestWidth);
#pragma warning restore RS0026

    /// <summary>The float32 span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingRenorm<TIndex>(Span<float> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingRenorm<float, TIndex>(weight, embeddingDim, indices, maxNorm, normType, width, threads);

    /// <summary>The span overload for any table type, with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingRenorm<TElement, TIndex>(Span<TElement> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} elements, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        if (MemoryMarshal.AsBytes(weight).Overlaps(MemoryMarshal.AsBytes(indices)))
        {
            throw new ArgumentException("The indices overlap the weight.", nameof(indices));
        }

        long rows = weight.Length / embeddingDim;
        nint bad = Renorm(
            ref MemoryMarshal.GetReference(weight), rows, embeddingDim,
            in MemoryMarshal.GetReference(indices), indices.Length, maxNorm, normType, width, threads);
        if (bad >= 0)
        {
            long value = long.CreateTruncating(indices[(int)bad]);
            throw new ArgumentOutOfRangeException(nameof(indices), value, EmbeddingErrors.IndexOutOfRange(bad, value, rows));
        }
    }

    /// <summary>
    /// The validated core shared by the span API and the C ABI: checks every index, then renormalises
    /// (<see cref="RenormRunner"/>). Shapes and buffers are the caller's responsibility;
    /// <paramref name="count"/> must not exceed <see cref="Array.MaxLength"/>. <paramref name="stridedRows"/>:
    /// the table is a contiguous copy of one whose rows torch sees with a column stride, so the float32
    /// and bfloat16 2-norms are torch's scalar ones (<see cref="StridedRowsRenorm{TElement, TSum, TBase}"/>).
    /// </summary>
    /// <typeparam name="TElement"><see cref="float"/>, <see cref="double"/>, <see cref="Half"/> or <see cref="BFloat16"/>.</typeparam>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was changed.</returns>
    internal static nint Renorm<TElement, TIndex>(ref TElement weight, long rows, int dimension, ref readonly TIndex indices, nint count, double maxNorm, double normType, VectorWidth width, int threads = EmbeddingThreads.UseCount, bool stridedRows = false)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex index = ref Unsafe.AsRef(in indices);
        nint bad = IndexRange.FindFirstOutOfRange(ref index, count, rows);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        RenormRunner.Run(ref weight, dimension, ref index, count, maxNorm, normType, width, threads, stridedRows);
        return -1;
    }
}
