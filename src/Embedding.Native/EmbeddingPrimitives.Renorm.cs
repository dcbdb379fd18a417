using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>The epsilon torch adds to the norm before dividing: <c>max_norm / (norm + 1e-7)</c>.</summary>
    internal const double RenormEpsilon = 1e-7;

    /// <summary>
    /// Rescales, in place, each distinct row that <paramref name="indices"/> references and whose
    /// p-norm exceeds <paramref name="maxNorm"/>: <c>torch.embedding_renorm_(weight, indices, max_norm, norm_type)</c>,
    /// the step <c>F.embedding(..., max_norm=...)</c> runs before its gather.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D
    /// require 0 &lt;= indices[i] &lt; rows for every i       // else throws, nothing changed
    /// for each distinct k in indices, ascending:
    ///     n = ||weight[k]||_p                               // in double, p = normType (p = 1, 2: eight partial sums, see RowNorm):
    ///         p = +inf: max |x|     p = -inf: min |x|     p = 0: count of x != 0
    ///         p = 1: Σ |x|          p = 2: sqrt(Σ x·x)    else: (Σ |x|^p)^(1/p)   (negative and fractional p too)
    ///     if n &gt; maxNorm:                                  // strict, compared in double
    ///         s = (float)(maxNorm / (n + 1e-7))
    ///         weight[k][c] = weight[k][c] * s               // float multiply, every column
    /// </code>
    /// <para>
    /// One line: <c>W[k] *= fl32(maxNorm / (‖W[k]‖ₚ + 1e-7))</c> for each distinct referenced row with <c>‖W[k]‖ₚ &gt; maxNorm</c>.
    /// </para>
    /// <para>
    /// Differences from torch 1.13, all deliberate: the norm is computed in double, where torch computes
    /// <c>row.norm(p)</c> in float32 (p = 2: eight FMA lanes with its AVX2 kernels; p = 1 and other finite
    /// p: one running float sum) and then applies the same scale and multiply. A rescaled element
    /// therefore differs from torch's only through torch's norm error <c>e</c> of that row:
    /// <c>|ours - torch| &lt;= (e + 2^-22)·|torch|</c>. Measured for D ≤ 768 (bench/results/renorm-ulp.md),
    /// worst ulp and share of rescaled elements differing: p = 2: 4 ulp, 36%; p = 3: 10, 74%; p = 1.5:
    /// 19, 85%; p = 1: 29, 87%; p = 0.5: 51, 93%; p = ±inf and 0 (exact norms) bit-identical. A row
    /// whose norm is within <c>e</c> of <paramref name="maxNorm"/> can be rescaled by one side only.
    /// Every index is validated before any row changes (torch renormalises the rows sorted before a
    /// bad index, and wraps negative ones, before it fails). Like torch, <paramref name="maxNorm"/>
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
    /// for each distinct k in indices, ascending:
    ///     n = torch's row.norm(p) of weight[k], columns in order, p = normType:
    ///         p = +inf: max |x|     p = -inf: min |x|                      (exact)
    ///         float64:  acc = 0.0 in double, per column:
    ///             p = 0: acc += (x != 0)    p = 1: acc += |x|    p = 2: acc = fma(x, x, acc); n = sqrt(acc)
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
    /// The validated core shared by the span API and the C ABI: checks every index, then rescales
    /// each distinct referenced row once, in ascending order; large calls split the sorted rows into
    /// contiguous ranges, a row belonging to the range that holds its first copy. Shapes and buffers are the caller's
    /// responsibility; <paramref name="count"/> must not exceed <see cref="Array.MaxLength"/>.
    /// </summary>
    /// <typeparam name="TElement"><see cref="float"/>, <see cref="double"/>, <see cref="Half"/> or <see cref="BFloat16"/>.</typeparam>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was changed.</returns>
    internal static unsafe nint Renorm<TElement, TIndex>(ref TElement weight, long rows, int dimension, ref readonly TIndex indices, nint count, double maxNorm, double normType, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex index = ref Unsafe.AsRef(in indices);
        nint bad = IndexRange.FindFirstOutOfRange(ref index, count, rows);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        // Sort a copy, never the caller's buffer; rented, so a warm pool makes this allocation-free.
        long[] sorted = ArrayPool<long>.Shared.Rent((int)count);
        try
        {
            Span<long> distinct = sorted.AsSpan(0, (int)count);
            for (int i = 0; i < distinct.Length; i++)
            {
                distinct[i] = long.CreateTruncating(Unsafe.Add(ref index, i));
            }

            distinct.Sort();
            width = KernelDispatch.FitWidth(width, dimension, Unsafe.SizeOf<TElement>());
            threads = EmbeddingThreads.For(2L * Unsafe.SizeOf<TElement>() * dimension * count, count, threads);
            if (threads == 1)
            {
                RenormRows(width, ref weight, dimension, distinct, maxNorm, normType);
            }
            else
            {
                fixed (TElement* table = &weight)
                fixed (long* first = sorted)
                {
                    var work = new RenormWork<TElement> { Weight = table, Sorted = first, Count = count, Dimension = dimension, MaxNorm = maxNorm, NormType = normType, Width = width };
                    WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, count), threads);
                }
            }
        }
        finally
        {
            ArrayPool<long>.Shared.Return(sorted);
        }

        return -1;
    }

    private static void RenormRows<TElement>(VectorWidth width, ref TElement weight, int dimension, ReadOnlySpan<long> sorted, double maxNorm, double normType)
        where TElement : unmanaged
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                RenormRows<TElement, Elementwise512>(ref weight, dimension, sorted, maxNorm, normType);
                break;
            case VectorWidth.Vector256:
                RenormRows<TElement, Elementwise256>(ref weight, dimension, sorted, maxNorm, normType);
                break;
            case VectorWidth.Vector128:
                RenormRows<TElement, Elementwise128>(ref weight, dimension, sorted, maxNorm, normType);
                break;
            default:
                RenormRows<TElement, ElementwiseScalar>(ref weight, dimension, sorted, maxNorm, normType);
                break;
        }
    }

    /// <summary>
    /// One piece of a parallel renorm: a contiguous range of the sorted indices, less the leading copies
    /// of the row before the range (the piece holding that row's first copy rescales it).
    /// </summary>
    private unsafe struct RenormWork<TElement> : IParallelWork
        where TElement : unmanaged
    {
        public TElement* Weight;
        public long* Sorted;
        public nint Count;
        public int Dimension;
        public double MaxNorm;
        public double NormType;
        public VectorWidth Width;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Count, part + 1, parts);
            while (start > 0 && start < end && Sorted[start] == Sorted[start - 1])
            {
                start++;
            }

            if (end > start)
            {
                RenormRows(Width, ref *Weight, Dimension, new ReadOnlySpan<long>(Sorted + start, (int)(end - start)), MaxNorm, NormType);
            }
        }
    }

    private static void RenormRows<TElement, TWidth>(ref TElement weight, int dimension, ReadOnlySpan<long> sorted, double maxNorm, double normType)
        where TElement : unmanaged
        where TWidth : IElementwiseWidth
    {
        long previous = -1;
        foreach (long k in sorted)
        {
            // Sorted, so duplicates are adjacent: each row is rescaled once, like torch's unique().
            if (k == previous)
            {
                continue;
            }

            previous = k;
            ref TElement row = ref Unsafe.Add(ref weight, (nint)k * dimension);
            double norm = RowNorm(ref row, dimension, normType);
            if (norm > maxNorm)
            {
                ScaleRow<TElement, TWidth>(ref row, dimension, maxNorm / (norm + RenormEpsilon));
            }
        }
    }

    /// <summary>The row's p-norm as the table type computes it (see the per-type overloads), widened to double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double RowNorm<TElement>(ref TElement row, int dimension, double p)
        where TElement : unmanaged =>
        typeof(TElement) == typeof(float) ? RowNorm(ref Unsafe.As<TElement, float>(ref row), dimension, p)
        : typeof(TElement) == typeof(double) ? RowNorm(ref Unsafe.As<TElement, double>(ref row), dimension, p)
        : typeof(TElement) == typeof(Half) ? ReducedRowNorm<Half, Float16Rounding>(ref Unsafe.As<TElement, Half>(ref row), dimension, p)
        : ReducedRowNorm<BFloat16, BFloat16Rounding>(ref Unsafe.As<TElement, BFloat16>(ref row), dimension, p);

    /// <summary>
    /// <c>row[c] = rd(row[c] · rd(scale))</c>, <paramref name="scale"/> the double quotient
    /// <c>maxNorm / (norm + 1e-7)</c>: float and float64 multiply whole vectors of the width and
    /// finish the row one column at a time (not an overlapping last vector: the overlapped columns
    /// would be scaled twice); float16 and bfloat16 multiply in float, exactly, and round once, one
    /// column at a time.
    /// </summary>
    private static void ScaleRow<TElement, TWidth>(ref TElement row, int dimension, double scale)
        where TElement : unmanaged
        where TWidth : IElementwiseWidth
    {
        if (typeof(TElement) == typeof(float))
        {
            MultiplyRow<float, TWidth>(ref Unsafe.As<TElement, float>(ref row), dimension, (float)scale);
        }
        else if (typeof(TElement) == typeof(double))
        {
            MultiplyRow<double, TWidth>(ref Unsafe.As<TElement, double>(ref row), dimension, scale);
        }
        else if (typeof(TElement) == typeof(Half))
        {
            ScaleReducedRow<Half, Float16Rounding>(ref Unsafe.As<TElement, Half>(ref row), dimension, scale);
        }
        else
        {
            ScaleReducedRow<BFloat16, BFloat16Rounding>(ref Unsafe.As<TElement, BFloat16>(ref row), dimension, scale);
        }
    }

    /// <summary>
    /// <c>row[c] *= scale</c> for float and double: whole vectors of the register <typeparamref name="TWidth"/>
    /// names, then one column at a time. Each product is one correctly rounded multiply at every width.
    /// </summary>
    private static void MultiplyRow<T, TWidth>(ref T row, int dimension, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
    {
        nuint end = (nuint)dimension, column = 0;
        if (TWidth.Lanes == Vector512<float>.Count)
        {
            for (; column + (nuint)Vector512<T>.Count <= end; column += (nuint)Vector512<T>.Count)
            {
                (Vector512.LoadUnsafe(ref row, column) * scale).StoreUnsafe(ref row, column);
            }
        }
        else if (TWidth.Lanes == Vector256<float>.Count)
        {
            for (; column + (nuint)Vector256<T>.Count <= end; column += (nuint)Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref row, column) * scale).StoreUnsafe(ref row, column);
            }
        }
        else if (TWidth.Lanes == Vector128<float>.Count)
        {
            for (; column + (nuint)Vector128<T>.Count <= end; column += (nuint)Vector128<T>.Count)
            {
                (Vector128.LoadUnsafe(ref row, column) * scale).StoreUnsafe(ref row, column);
            }
        }

        for (; column < end; column++)
        {
            Unsafe.Add(ref row, column) *= scale;
        }
    }

    /// <summary>
    /// <c>row[c] = rd(float(row[c]) · float(s))</c> with <c>s = rd((float)scale)</c>, the double quotient
    /// converted as torch's <c>Scalar.to&lt;Half&gt;()</c> / <c>to&lt;BFloat16&gt;()</c> does (through float). Two
    /// 16-bit significands multiply exactly in float, so the one rounding is the store's.
    /// </summary>
    private static void ScaleReducedRow<T, TRounding>(ref T row, int dimension, double scale)
        where T : unmanaged
        where TRounding : IReducedRounding<T>
    {
        float s = TRounding.Round((float)scale);
        for (int c = 0; c < dimension; c++)
        {
            ref T x = ref Unsafe.Add(ref row, c);
            x = TRounding.Narrow(TRounding.Widen(x) * s);
        }
    }

    /// <summary>
    /// torch 1.13's <c>row.norm(p)</c> of a float64 row, exactly: one running double accumulator,
    /// columns in order (the 2-norm through fused multiply-adds).
    /// </summary>
    internal static double RowNorm(ref double row, int dimension, double p)
    {
        double result = 0;
        if (double.IsPositiveInfinity(p))
        {
            for (int c = 0; c < dimension; c++)
            {
                result = Math.Max(result, Math.Abs(Unsafe.Add(ref row, c)));
            }

            return result;
        }

        if (double.IsNegativeInfinity(p))
        {
            result = double.PositiveInfinity;
            for (int c = 0; c < dimension; c++)
            {
                result = Math.Min(result, Math.Abs(Unsafe.Add(ref row, c)));
            }

            return result;
        }

        if (p == 0)
        {
            // The number of non-zero elements (NaN counts as non-zero).
            for (int c = 0; c < dimension; c++)
            {
                result += Unsafe.Add(ref row, c) != 0 ? 1 : 0;
            }

            return result;
        }

        if (p == 1)
        {
            for (int c = 0; c < dimension; c++)
            {
                result += Math.Abs(Unsafe.Add(ref row, c));
            }

            return result;
        }

        if (p == 2)
        {
            for (int c = 0; c < dimension; c++)
            {
                double x = Unsafe.Add(ref row, c);
                result = Math.FusedMultiplyAdd(x, x, result);
            }

            return Math.Sqrt(result);
        }

        // Math.Pow is the C library's pow, as torch's std::pow is.
        for (int c = 0; c < dimension; c++)
        {
            result += Math.Pow(Math.Abs(Unsafe.Add(ref row, c)), p);
        }

        return Math.Pow(result, 1.0 / p);
    }

    /// <summary>
    /// torch 1.13's <c>row.norm(p)</c> of a float16 or bfloat16 row, exactly, widened to double: the
    /// accumulator is a value of the table type, each step computed in float and rounded back (c10's
    /// Half and BFloat16 operators); the 2-norm is the type's own (<see cref="IReducedRounding{T}.SumOfSquares"/>).
    /// </summary>
    internal static double ReducedRowNorm<T, TRounding>(ref T row, int dimension, double p)
        where T : unmanaged
        where TRounding : IReducedRounding<T>
    {
        float result = 0;
        if (double.IsPositiveInfinity(p))
        {
            for (int c = 0; c < dimension; c++)
            {
                result = MathF.Max(result, MathF.Abs(TRounding.Widen(Unsafe.Add(ref row, c))));
            }

            return result;
        }

        if (double.IsNegativeInfinity(p))
        {
            result = float.PositiveInfinity;
            for (int c = 0; c < dimension; c++)
            {
                result = MathF.Min(result, MathF.Abs(TRounding.Widen(Unsafe.Add(ref row, c))));
            }

            return result;
        }

        if (p == 0)
        {
            // Counted in the table type: the count stops growing once 1 is below half an ulp of it.
            for (int c = 0; c < dimension; c++)
            {
                result = TRounding.Round(result + (TRounding.Widen(Unsafe.Add(ref row, c)) != 0 ? 1 : 0));
            }

            return result;
        }

        if (p == 1)
        {
            for (int c = 0; c < dimension; c++)
            {
                result = TRounding.Round(result + MathF.Abs(TRounding.Widen(Unsafe.Add(ref row, c))));
            }

            return result;
        }

        if (p == 2)
        {
            return TRounding.Round(MathF.Sqrt(TRounding.SumOfSquares(ref row, dimension)));
        }

        // torch converts p, and 1/p, to the table type; MathF.Pow is the C library's powf.
        float q = TRounding.Round((float)p);
        for (int c = 0; c < dimension; c++)
        {
            float term = MathF.Pow(MathF.Abs(TRounding.Widen(Unsafe.Add(ref row, c))), q);
            result = TRounding.Round(result + (TRounding.RoundsPowerTerm ? TRounding.Round(term) : term));
        }

        return TRounding.Round(MathF.Pow(result, TRounding.Round(1 / q)));
    }

    /// <summary>
    /// A 16-bit table type's conversions and the two places where torch 1.13's norm differs between
    /// float16 and bfloat16: the sum of squares of the 2-norm, and whether a <c>powf</c> term is
    /// rounded to the type before it is added.
    /// </summary>
    internal interface IReducedRounding<T>
        where T : unmanaged
    {
        /// <summary>The value as a float (exact).</summary>
        static abstract float Widen(T x);

        /// <summary>The float rounded to the type (to nearest, ties to even).</summary>
        static abstract T Narrow(float x);

        /// <summary><c>Widen(Narrow(x))</c>: a float rounded to a value of the type.</summary>
        static abstract float Round(float x);

        /// <summary>Whether the general-p norm rounds <c>powf(|x|, p)</c> to the type before adding it (bfloat16 does, float16 does not).</summary>
        static abstract bool RoundsPowerTerm { get; }

        /// <summary>The sum of squares the 2-norm takes the square root of, in float, torch's order and roundings.</summary>
        static abstract float SumOfSquares(ref T row, int dimension);
    }

    /// <summary>float16: c10::Half arithmetic; the 2-norm's sum is a half accumulator, <c>acc = rd(acc + rd(x·x))</c>.</summary>
    internal readonly struct Float16Rounding : IReducedRounding<Half>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Widen(Half x) => (float)x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Half Narrow(float x) => (Half)x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Round(float x) => (float)(Half)x;

        public static bool RoundsPowerTerm => false;

        public static float SumOfSquares(ref Half row, int dimension)
        {
            float sum = 0;
            for (int c = 0; c < dimension; c++)
            {
                float x = (float)Unsafe.Add(ref row, c);
                sum = Round(sum + Round(x * x));
            }

            return sum;
        }
    }

    /// <summary>
    /// bfloat16: c10::BFloat16 arithmetic; the 2-norm's sum is torch's vectorised float kernel
    /// (AVX2 layout): eight float lanes take <c>lane[c mod 8] = fmaf(x, x, lane)</c> over whole blocks of
    /// sixteen columns, the lanes are added left to right, and the last <c>D mod 16</c> columns continue
    /// <c>s = fmaf(x, x, s)</c>.
    /// </summary>
    internal readonly struct BFloat16Rounding : IReducedRounding<BFloat16>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Widen(BFloat16 x) => (float)x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static BFloat16 Narrow(float x) => (BFloat16)x;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static float Round(float x) => (float)(BFloat16)x;

        public static bool RoundsPowerTerm => true;

        public static float SumOfSquares(ref BFloat16 row, int dimension)
        {
            // Sixteen bfloat16 fill one 256-bit vector, which torch widens to two float vectors of eight.
            const int Block = 16, Lanes = 8;
            Span<float> lane = stackalloc float[Lanes];
            lane.Clear();
            int whole = dimension - dimension % Block, c = 0;
            for (; c < whole; c++)
            {
                float x = (float)Unsafe.Add(ref row, c);
                lane[c % Lanes] = MathF.FusedMultiplyAdd(x, x, lane[c % Lanes]);
            }

            float sum = lane[0];
            for (int j = 1; j < Lanes; j++)
            {
                sum += lane[j];
            }

            for (; c < dimension; c++)
            {
                float x = (float)Unsafe.Add(ref row, c);
                sum = MathF.FusedMultiplyAdd(x, x, sum);
            }

            return sum;
        }
    }

    /// <summary>
    /// The p-norm of one row in double, one scalar function for every width: a norm is a horizontal
    /// reduction, so one fixed order is what keeps every width bit-identical. For p = 1 and 2 that
    /// order is <see cref="PartialSums{TTerm}"/>'s; for the other p, columns in order.
    /// </summary>
    internal static double RowNorm(ref float row, int dimension, double p)
    {
        double result = 0;
        if (double.IsPositiveInfinity(p))
        {
            for (int c = 0; c < dimension; c++)
            {
                result = Math.Max(result, Math.Abs((double)Unsafe.Add(ref row, c)));
            }

            return result;
        }

        if (double.IsNegativeInfinity(p))
        {
            result = double.PositiveInfinity;
            for (int c = 0; c < dimension; c++)
            {
                result = Math.Min(result, Math.Abs((double)Unsafe.Add(ref row, c)));
            }

            return result;
        }

        if (p == 0)
        {
            // torch: the number of non-zero elements (NaN counts as non-zero).
            for (int c = 0; c < dimension; c++)
            {
                result += Unsafe.Add(ref row, c) != 0 ? 1 : 0;
            }

            return result;
        }

        if (p == 1)
        {
            return PartialSums<AbsoluteValue>(ref row, dimension);
        }

        if (p == 2)
        {
            return Math.Sqrt(PartialSums<Square>(ref row, dimension));
        }

        for (int c = 0; c < dimension; c++)
        {
            result += Math.Pow(Math.Abs((double)Unsafe.Add(ref row, c)), p);
        }

        return Math.Pow(result, 1.0 / p);
    }

    /// <summary>
    /// Σ term(x_c) in double, in a fixed order: column c goes to partial sum c mod 8 (each partial sum
    /// in column order), and the eight are combined as ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)).
    /// Eight independent add chains instead of one: a single chain is bound by the add latency (about
    /// four cycles a column; renorm at D = 768 ran no faster than torch's). Scalar on purpose, so the
    /// order, and every bit, is the same on every ISA and width.
    /// </summary>
    internal static double PartialSums<TTerm>(ref float row, int dimension)
        where TTerm : INormTerm
    {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        int c = 0;
        for (; c + 8 <= dimension; c += 8)
        {
            ref float x = ref Unsafe.Add(ref row, c);
            s0 += TTerm.Of(x);
            s1 += TTerm.Of(Unsafe.Add(ref x, 1));
            s2 += TTerm.Of(Unsafe.Add(ref x, 2));
            s3 += TTerm.Of(Unsafe.Add(ref x, 3));
            s4 += TTerm.Of(Unsafe.Add(ref x, 4));
            s5 += TTerm.Of(Unsafe.Add(ref x, 5));
            s6 += TTerm.Of(Unsafe.Add(ref x, 6));
            s7 += TTerm.Of(Unsafe.Add(ref x, 7));
        }

        if (c < dimension)
        {
            // The last columns (fewer than eight) go to partial sums 0, 1, ... as c mod 8 says; the
            // partial sums without a column add +0.0, which changes no sum of non-negative terms.
            s0 += TermOrZero<TTerm>(ref row, c, dimension);
            s1 += TermOrZero<TTerm>(ref row, c + 1, dimension);
            s2 += TermOrZero<TTerm>(ref row, c + 2, dimension);
            s3 += TermOrZero<TTerm>(ref row, c + 3, dimension);
            s4 += TermOrZero<TTerm>(ref row, c + 4, dimension);
            s5 += TermOrZero<TTerm>(ref row, c + 5, dimension);
            s6 += TermOrZero<TTerm>(ref row, c + 6, dimension);
        }

        return ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double TermOrZero<TTerm>(ref float row, int column, int dimension)
        where TTerm : INormTerm =>
        column < dimension ? TTerm.Of(Unsafe.Add(ref row, column)) : 0;

    /// <summary>What a p-norm adds up per column.</summary>
    internal interface INormTerm
    {
        static abstract double Of(float x);
    }

    /// <summary>p = 1: |x|.</summary>
    internal readonly struct AbsoluteValue : INormTerm
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static double Of(float x) => Math.Abs((double)x);
    }

    /// <summary>p = 2: x·x, exact in double (the product of two floats).</summary>
    internal readonly struct Square : INormTerm
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static double Of(float x) => (double)x * x;
    }
}
