using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The bag forward for any dimension without a specialised kernel, written once over the
/// <see cref="IBagVector{TVector}"/> width operators and the <see cref="IBagReducer"/> / <see cref="BagMax"/>
/// reductions. Per bag and per vector of columns, one accumulator lives in a register while the bag's
/// rows stream past in position order; the last vector ends at the row end and overlaps the one
/// before it when the dimension is not a multiple of the width. The overlapped columns are computed
/// again from the same rows in the same order, so they are stored with the same bits.
/// </summary>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <typeparam name="TMode">The reduction: <see cref="BagSum"/>, <see cref="BagMean"/>, <see cref="BagMax"/> or <see cref="BagWeightedSum"/>.</typeparam>
internal static class GenericBag<TIndex, TMode>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TMode : IBagMode
{
    /// <summary>The kernel for <paramref name="width"/>, over that width's bag operators.</summary>
    public static BagKernel<TIndex> At(VectorWidth width) =>
        WidthLadder.Select<BagKernel<TIndex>>(width, Run<Vector512<float>, BagVector512>, Run<Vector256<float>, BagVector256>, Run<Vector128<float>, BagVector128>, Run<float, BagScalar>);

    private static void Run<TVector, TOps>(ref readonly float weight, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly float perSampleWeights, ref float destination, ref long maxIndices)
        where TOps : IBagVector<TVector>
    {
        ref float table = ref Unsafe.AsRef(in weight);
        ref TIndex index = ref Unsafe.AsRef(in indices);
        ref long bounds = ref Unsafe.AsRef(in starts);
        ref float sampleWeights = ref Unsafe.AsRef(in perSampleWeights);
        if (typeof(TMode) == typeof(BagMax))
        {
            Max<TVector, TOps>(ref table, dimension, ref index, ref bounds, numBags, paddingIndex, ref destination, ref maxIndices);
        }
        else if (typeof(TMode) == typeof(BagMean))
        {
            Reduce<TVector, TOps, BagMean>(ref table, dimension, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
        else if (typeof(TMode) == typeof(BagSum))
        {
            Reduce<TVector, TOps, BagSum>(ref table, dimension, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
        else if (paddingIndex < 0)
        {
            // torch 1.13 takes its fused path without padding and its two-rounding path with it.
            Reduce<TVector, TOps, BagWeightedSumFused>(ref table, dimension, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
        else
        {
            Reduce<TVector, TOps, BagWeightedSumRounded>(ref table, dimension, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
    }

    private static void Reduce<TVector, TOps, TReducer>(ref float weight, int dimension, ref TIndex indices, ref long starts, nint numBags, long paddingIndex, ref float perSampleWeights, ref float destination)
        where TOps : IBagVector<TVector>
        where TReducer : IBagReducer
    {
        nuint lanes = (nuint)TOps.Lanes;
        nuint lastVector = (nuint)dimension - lanes;
        nint total = (nint)Unsafe.Add(ref starts, numBags);
        for (nint bag = 0; bag < numBags; bag++)
        {
            nint start = (nint)Unsafe.Add(ref starts, bag), end = (nint)Unsafe.Add(ref starts, bag + 1);
            ref float target = ref Unsafe.Add(ref destination, bag * dimension);
            for (nuint column = 0; ; column += lanes)
            {
                // The last vector ends at the row end (overlapping the previous one when the row has a tail).
                if (column > lastVector)
                {
                    column = lastVector;
                }

                TVector accumulator = TReducer.Identity<TVector, TOps>();
                int count = 0;
                for (nint i = start; i < end; i++)
                {
                    // Whole rows ahead, on the first pass only; later passes find the bag's rows in L1/L2.
                    if (column == 0)
                    {
                        KernelHints.PrefetchRow(ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, KernelHints.Ahead(i, total, dimension))) * dimension), dimension);
                    }

                    nint row = nint.CreateTruncating(Unsafe.Add(ref indices, i));
                    if (row == paddingIndex)
                    {
                        continue;
                    }

                    TVector scale = TReducer.IsWeighted ? TOps.Broadcast(Unsafe.Add(ref perSampleWeights, i)) : default!;
                    accumulator = TReducer.Accumulate<TVector, TOps>(accumulator, TOps.Load(ref Unsafe.Add(ref weight, row * dimension), column), scale);
                    count++;
                }

                TOps.Store(TReducer.Finish<TVector, TOps>(accumulator, count), ref target, column);
                if (column == lastVector)
                {
                    break;
                }
            }
        }
    }

    private static void Max<TVector, TOps>(ref float weight, int dimension, ref TIndex indices, ref long starts, nint numBags, long paddingIndex, ref float destination, ref long maxIndices)
        where TOps : IBagVector<TVector>
    {
        nuint lanes = (nuint)TOps.Lanes;
        nuint lastVector = (nuint)dimension - lanes;
        nint total = (nint)Unsafe.Add(ref starts, numBags);

        // No arg-max asked for: the same values; the positions are still carried along (this is the generic path).
        bool tracked = !Unsafe.IsNullRef(ref maxIndices);
        for (nint bag = 0; bag < numBags; bag++)
        {
            nint start = (nint)Unsafe.Add(ref starts, bag), end = (nint)Unsafe.Add(ref starts, bag + 1);
            ref float target = ref Unsafe.Add(ref destination, bag * dimension);
            ref long argMax = ref tracked ? ref Unsafe.Add(ref maxIndices, bag * dimension) : ref Unsafe.NullRef<long>();
            nint first = BagRows.FirstIncluded(ref indices, start, end, paddingIndex);
            if (first == end)
            {
                BagRows.Empty(ref target, ref argMax, dimension);
                continue;
            }

            for (nuint column = 0; ; column += lanes)
            {
                if (column > lastVector)
                {
                    column = lastVector;
                }

                // Start from the first included row: a NaN there sticks, a -inf there is kept.
                TVector accumulator = TOps.Load(ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, first)) * dimension), column);
                TVector positions = BagMax.Position<TVector, TOps>(first);
                for (nint i = first + 1; i < end; i++)
                {
                    // Whole rows ahead, on the first pass only; later passes find the bag's rows in L1/L2.
                    if (column == 0)
                    {
                        KernelHints.PrefetchRow(ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, KernelHints.Ahead(i, total, dimension))) * dimension), dimension);
                    }

                    nint row = nint.CreateTruncating(Unsafe.Add(ref indices, i));
                    if (row == paddingIndex)
                    {
                        continue;
                    }

                    TVector value = TOps.Load(ref Unsafe.Add(ref weight, row * dimension), column);
                    TVector replaces = BagMax.Replaces<TVector, TOps>(accumulator, value);
                    accumulator = TOps.Select(replaces, value, accumulator);
                    positions = TOps.Select(replaces, BagMax.Position<TVector, TOps>(i), positions);
                }

                TOps.Store(accumulator, ref target, column);
                if (tracked)
                {
                    TOps.StorePositions(positions, ref argMax, column);
                }

                if (column == lastVector)
                {
                    break;
                }
            }

            if (tracked)
            {
                BagRows.PositionsToRows(ref argMax, ref indices, dimension);
            }
        }
    }
}

/// <summary>Per-bag helpers shared by the generic driver (generated kernels emit their own copies).</summary>
internal static class BagRows
{
    /// <summary>The first position in <c>[start, end)</c> whose row is not the padding row, or <paramref name="end"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint FirstIncluded<TIndex>(ref TIndex indices, nint start, nint end, long paddingIndex)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        nint i = start;
        while (i < end && long.CreateTruncating(Unsafe.Add(ref indices, i)) == paddingIndex)
        {
            i++;
        }

        return i;
    }

    /// <summary>An empty or all-padding bag in max mode: +0.0, and arg-max row -1 unless <paramref name="argMax"/> is a null reference (values only).</summary>
    public static void Empty(ref float target, ref long argMax, int dimension)
    {
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref target, dimension).Clear();
        if (!Unsafe.IsNullRef(ref argMax))
        {
            System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref argMax, dimension).Fill(-1);
        }
    }

    /// <summary>Replaces the winning position of each column by the row it names.</summary>
    public static void PositionsToRows<TIndex>(ref long argMax, ref TIndex indices, int dimension)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        for (nint column = 0; column < dimension; column++)
        {
            ref long slot = ref Unsafe.Add(ref argMax, column);
            slot = long.CreateTruncating(Unsafe.Add(ref indices, (nint)slot));
        }
    }
}
