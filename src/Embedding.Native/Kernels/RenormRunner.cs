using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// Runs a renorm over validated inputs: sorts a copy of the indices, then visits each distinct row
/// once, in ascending order, and rescales it when its norm (<see cref="RowNorms{TElement, TSum, TArithmetic}"/>)
/// exceeds max_norm. Large calls split the sorted rows into contiguous ranges over threads, a row
/// belonging to the range that holds its first copy, so every row is computed by one thread exactly
/// as on one thread.
/// </summary>
internal static class RenormRunner
{
    /// <summary>The epsilon torch adds to the norm before dividing: <c>max_norm / (norm + 1e-7)</c>.</summary>
    public const double Epsilon = 1e-7;

    /// <summary>
    /// Renormalises the rows <paramref name="indices"/> name. Every index must already name a row of
    /// <paramref name="weight"/>, and <paramref name="count"/> be positive and at most <see cref="Array.MaxLength"/>;
    /// <paramref name="threads"/> is <see cref="EmbeddingThreads.UseCount"/> or a count. With <paramref name="stridedRows"/>
    /// the table is a contiguous copy of one whose rows torch sees with a column stride, and the float32
    /// and bfloat16 2-norms are torch's scalar ones (<see cref="StridedRowsRenorm{TElement, TSum, TBase}"/>).
    /// </summary>
    /// <typeparam name="TElement"><see cref="float"/>, <see cref="double"/>, <see cref="Half"/> or <see cref="BFloat16"/>.</typeparam>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    public static void Run<TElement, TIndex>(ref TElement weight, int dimension, ref TIndex indices, nint count, double maxNorm, double normType, VectorWidth width, int threads, bool stridedRows = false)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        // Sort a copy, never the caller's buffer; rented, so a warm pool makes this allocation-free.
        long[] sorted = ArrayPool<long>.Shared.Rent((int)count);
        try
        {
            Span<long> rows = sorted.AsSpan(0, (int)count);
            for (int i = 0; i < rows.Length; i++)
            {
                rows[i] = long.CreateTruncating(Unsafe.Add(ref indices, i));
            }

            rows.Sort();
            var call = new Call
            {
                Count = count,
                Dimension = dimension,
                MaxNorm = maxNorm,
                NormType = normType,
                Width = KernelDispatch.FitWidth(width, dimension, Unsafe.SizeOf<TElement>()),
                Threads = EmbeddingThreads.For(2L * Unsafe.SizeOf<TElement>() * dimension * count, count, threads),
            };
            if (typeof(TElement) == typeof(float) && stridedRows)
            {
                Run<float, float, StridedRowsRenorm<float, float, Float32Renorm>>(ref Unsafe.As<TElement, float>(ref weight), sorted, call);
            }
            else if (typeof(TElement) == typeof(float))
            {
                Run<float, float, Float32Renorm>(ref Unsafe.As<TElement, float>(ref weight), sorted, call);
            }
            else if (typeof(TElement) == typeof(double) && TorchProducts.AreFused)
            {
                Run<double, double, Float64Renorm<FusedProducts>>(ref Unsafe.As<TElement, double>(ref weight), sorted, call);
            }
            else if (typeof(TElement) == typeof(double))
            {
                Run<double, double, Float64Renorm<RoundedProducts>>(ref Unsafe.As<TElement, double>(ref weight), sorted, call);
            }
            else if (typeof(TElement) == typeof(Half))
            {
                Run<Half, float, Float16Renorm>(ref Unsafe.As<TElement, Half>(ref weight), sorted, call);
            }
            else if (stridedRows)
            {
                Run<BFloat16, float, StridedRowsRenorm<BFloat16, float, BFloat16Renorm>>(ref Unsafe.As<TElement, BFloat16>(ref weight), sorted, call);
            }
            else
            {
                Run<BFloat16, float, BFloat16Renorm>(ref Unsafe.As<TElement, BFloat16>(ref weight), sorted, call);
            }
        }
        finally
        {
            ArrayPool<long>.Shared.Return(sorted);
        }
    }

    /// <summary>The arguments every piece of one call shares.</summary>
    private struct Call
    {
        public nint Count;
        public int Dimension;
        public double MaxNorm;
        public double NormType;
        public VectorWidth Width;
        public int Threads;
    }

    private static unsafe void Run<TElement, TSum, TArithmetic>(ref TElement weight, long[] sorted, Call call)
        where TElement : unmanaged
        where TSum : unmanaged, IFloatingPointIeee754<TSum>
        where TArithmetic : IRenormArithmetic<TElement, TSum>
    {
        if (call.Threads == 1)
        {
            Rows<TElement, TSum, TArithmetic>(ref weight, sorted.AsSpan(0, (int)call.Count), call);
            return;
        }

        fixed (TElement* table = &weight)
        fixed (long* first = sorted)
        {
            var work = new RenormWork<TElement, TSum, TArithmetic> { Weight = table, Sorted = first, Call = call };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(call.Threads, call.Count), call.Threads);
        }
    }

    /// <summary>
    /// One piece of a parallel renorm: a contiguous range of the sorted indices, less the leading copies
    /// of the row before the range (the piece holding that row's first copy rescales it).
    /// </summary>
    private unsafe struct RenormWork<TElement, TSum, TArithmetic> : IParallelWork
        where TElement : unmanaged
        where TSum : unmanaged, IFloatingPointIeee754<TSum>
        where TArithmetic : IRenormArithmetic<TElement, TSum>
    {
        public TElement* Weight;
        public long* Sorted;
        public Call Call;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Call.Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Call.Count, part + 1, parts);
            while (start > 0 && start < end && Sorted[start] == Sorted[start - 1])
            {
                start++;
            }

            if (end > start)
            {
                Rows<TElement, TSum, TArithmetic>(ref *Weight, new ReadOnlySpan<long>(Sorted + start, (int)(end - start)), Call);
            }
        }
    }

    /// <summary>The rows of one sorted range, at the call's vector width.</summary>
    private static void Rows<TElement, TSum, TArithmetic>(ref TElement weight, ReadOnlySpan<long> sorted, in Call call)
        where TElement : unmanaged
        where TSum : unmanaged, IFloatingPointIeee754<TSum>
        where TArithmetic : IRenormArithmetic<TElement, TSum>
    {
        switch (call.Width)
        {
            case VectorWidth.Vector512:
                Rows<TElement, TSum, TArithmetic, Elementwise512>(ref weight, call.Dimension, sorted, call.MaxNorm, call.NormType);
                break;
            case VectorWidth.Vector256:
                Rows<TElement, TSum, TArithmetic, Elementwise256>(ref weight, call.Dimension, sorted, call.MaxNorm, call.NormType);
                break;
            case VectorWidth.Vector128:
                Rows<TElement, TSum, TArithmetic, Elementwise128>(ref weight, call.Dimension, sorted, call.MaxNorm, call.NormType);
                break;
            default:
                Rows<TElement, TSum, TArithmetic, ElementwiseScalar>(ref weight, call.Dimension, sorted, call.MaxNorm, call.NormType);
                break;
        }
    }

    /// <summary>
    /// For each distinct row of <paramref name="sorted"/>: <c>n = ‖row‖ₚ</c>; if <c>n &gt; maxNorm</c> (strict, in
    /// double; a NaN norm never is), <c>row = rd(row · rd(maxNorm / (n + 1e-7)))</c>.
    /// </summary>
    private static void Rows<TElement, TSum, TArithmetic, TWidth>(ref TElement weight, int dimension, ReadOnlySpan<long> sorted, double maxNorm, double normType)
        where TElement : unmanaged
        where TSum : unmanaged, IFloatingPointIeee754<TSum>
        where TArithmetic : IRenormArithmetic<TElement, TSum>
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
            double norm = RowNorms<TElement, TSum, TArithmetic>.Of(ref row, dimension, normType);
            if (norm > maxNorm)
            {
                TArithmetic.Scale<TWidth>(ref row, dimension, maxNorm / (norm + Epsilon));
            }
        }
    }
}
