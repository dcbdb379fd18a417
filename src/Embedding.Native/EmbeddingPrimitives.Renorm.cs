using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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

    /// <summary>The span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingRenorm<TIndex>(Span<float> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} floats, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        if (weight.Overlaps(MemoryMarshal.Cast<TIndex, float>(indices)))
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
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was changed.</returns>
    internal static unsafe nint Renorm<TIndex>(ref float weight, long rows, int dimension, ref readonly TIndex indices, nint count, double maxNorm, double normType, VectorWidth width, int threads = EmbeddingThreads.UseCount)
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
            width = KernelDispatch.FitWidth(width, dimension);
            threads = EmbeddingThreads.For(2L * sizeof(float) * dimension * count, count, threads);
            if (threads == 1)
            {
                RenormRows(width, ref weight, dimension, distinct, maxNorm, normType);
            }
            else
            {
                fixed (float* table = &weight)
                fixed (long* first = sorted)
                {
                    var work = new RenormWork { Weight = table, Sorted = first, Count = count, Dimension = dimension, MaxNorm = maxNorm, NormType = normType, Width = width };
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

    private static void RenormRows(VectorWidth width, ref float weight, int dimension, ReadOnlySpan<long> sorted, double maxNorm, double normType)
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                RenormRows<Elementwise512>(ref weight, dimension, sorted, maxNorm, normType);
                break;
            case VectorWidth.Vector256:
                RenormRows<Elementwise256>(ref weight, dimension, sorted, maxNorm, normType);
                break;
            case VectorWidth.Vector128:
                RenormRows<Elementwise128>(ref weight, dimension, sorted, maxNorm, normType);
                break;
            default:
                RenormRows<ElementwiseScalar>(ref weight, dimension, sorted, maxNorm, normType);
                break;
        }
    }

    /// <summary>
    /// One piece of a parallel renorm: a contiguous range of the sorted indices, less the leading copies
    /// of the row before the range (the piece holding that row's first copy rescales it).
    /// </summary>
    private unsafe struct RenormWork : IParallelWork
    {
        public float* Weight;
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

    private static void RenormRows<TWidth>(ref float weight, int dimension, ReadOnlySpan<long> sorted, double maxNorm, double normType)
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
            ref float row = ref Unsafe.Add(ref weight, (nint)k * dimension);
            double norm = RowNorm(ref row, dimension, normType);
            if (norm > maxNorm)
            {
                float scale = (float)(maxNorm / (norm + RenormEpsilon));
                ScaleRow<TWidth>(ref row, dimension, scale);
            }
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

    /// <summary>
    /// <c>row[c] *= scale</c>: whole vectors, then the scalar member for the last columns. Not an
    /// overlapping last vector: the overlapped columns would be scaled twice.
    /// </summary>
    private static void ScaleRow<TWidth>(ref float row, int dimension, float scale)
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension, column = 0;
        for (; column + lanes <= end; column += lanes)
        {
            TWidth.Scale(ref row, column, scale);
        }

        for (; column < end; column++)
        {
            ElementwiseScalar.Scale(ref row, column, scale);
        }
    }
}
