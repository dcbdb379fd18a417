using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The bag forward for any table type and any dimension without a specialised kernel, written once over
/// the <see cref="IBagVector{TVector, TElement}"/> width operators and the <see cref="IBagReducer"/> /
/// <see cref="BagMax"/> reductions. Per bag and per vector of columns, one accumulator lives in a register
/// while the bag's rows stream past in position order; the last vector ends at the row end and overlaps
/// the one before it when the dimension is not a multiple of the width. The overlapped columns are
/// computed again from the same rows in the same order, so they are stored with the same bits.
/// </summary>
/// <remarks>
/// float32 and float64 accumulate in their own type. float16 accumulates in float32 and rounds to half
/// once per bag at the store (the mean rounds the sum first, then divides in float32 and rounds again),
/// as torch 1.13 does; its max compares the widened values and copies the winning row's half, bits and all.
/// </remarks>
/// <typeparam name="TElement"><see cref="float"/>, <see cref="double"/> or <see cref="Half"/>.</typeparam>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <typeparam name="TMode">The reduction: <see cref="BagSum"/>, <see cref="BagMean"/>, <see cref="BagMax"/> or <see cref="BagWeightedSum"/>.</typeparam>
internal static class GenericBag<TElement, TIndex, TMode>
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TMode : IBagMode
{
    /// <summary>Bytes per accumulator lane: what decides whether a width's vector fits in a row (see <c>KernelDispatch.FitWidth</c>).</summary>
    public static int LaneBytes => typeof(TElement) == typeof(double) ? sizeof(double) : sizeof(float);

    /// <summary>The kernel for <paramref name="width"/>, over that width's bag operators for <typeparamref name="TElement"/>.</summary>
    public static BagKernel<TElement, TIndex> At(VectorWidth width)
    {
        if (typeof(TElement) == typeof(float))
        {
            return (BagKernel<TElement, TIndex>)(Delegate)WidthLadder.Select<BagKernel<float, TIndex>>(
                width, Run<Vector512<float>, float, BagVector512<float>>, Run<Vector256<float>, float, BagVector256<float>>, Run<Vector128<float>, float, BagVector128<float>>, Run<float, float, BagScalar<float>>);
        }

        if (typeof(TElement) == typeof(double))
        {
            return (BagKernel<TElement, TIndex>)(Delegate)WidthLadder.Select<BagKernel<double, TIndex>>(
                width, Run<Vector512<double>, double, BagVector512<double>>, Run<Vector256<double>, double, BagVector256<double>>, Run<Vector128<double>, double, BagVector128<double>>, Run<double, double, BagScalar<double>>);
        }

        if (typeof(TElement) == typeof(Half))
        {
            return (BagKernel<TElement, TIndex>)(Delegate)WidthLadder.Select<BagKernel<Half, TIndex>>(
                width, Run<Vector512<float>, Half, BagHalf512>, Run<Vector256<float>, Half, BagHalf256>, Run<Vector128<float>, Half, BagHalf128>, Run<float, Half, BagHalfScalar>);
        }

        throw new NotSupportedException($"No bag kernel for {typeof(TElement).Name} tables (torch 1.13 takes float64, float32 and float16).");
    }

    private static void Run<TVector, T, TOps>(ref readonly T weight, long rows, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly T perSampleWeights, ref T destination, ref long maxIndices)
        where T : unmanaged
        where TOps : IBagVector<TVector, T>
    {
        ref T table = ref Unsafe.AsRef(in weight);
        ref TIndex index = ref Unsafe.AsRef(in indices);
        ref long bounds = ref Unsafe.AsRef(in starts);
        ref T sampleWeights = ref Unsafe.AsRef(in perSampleWeights);
        bool wholeRows = KernelHints.PrefetchesWholeRows(rows, dimension * Unsafe.SizeOf<T>());
        if (typeof(TMode) == typeof(BagMax))
        {
            Max<TVector, T, TOps>(ref table, dimension, wholeRows, ref index, ref bounds, numBags, paddingIndex, ref destination, ref maxIndices);
        }
        else if (typeof(TMode) == typeof(BagMean))
        {
            Reduce<TVector, T, TOps, BagMean>(ref table, dimension, wholeRows, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
        else if (typeof(TMode) == typeof(BagSum))
        {
            Reduce<TVector, T, TOps, BagSum>(ref table, dimension, wholeRows, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
        else if (typeof(T) == typeof(float) && paddingIndex < 0 && TorchProducts.LookupsAreFused)
        {
            // torch 1.13 takes its fused path for float32 without padding on a CPU with AVX2 and FMA, and its
            // two-rounding path with padding or without them; float64 always rounds twice, and float16's float32
            // product of two halves is exact.
            Reduce<TVector, T, TOps, BagWeightedSumFused>(ref table, dimension, wholeRows, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
        else
        {
            Reduce<TVector, T, TOps, BagWeightedSumRounded>(ref table, dimension, wholeRows, ref index, ref bounds, numBags, paddingIndex, ref sampleWeights, ref destination);
        }
    }

    private static void Reduce<TVector, T, TOps, TReducer>(ref T weight, int dimension, bool wholeRows, ref TIndex indices, ref long starts, nint numBags, long paddingIndex, ref T perSampleWeights, ref T destination)
        where T : unmanaged
        where TOps : IBagVector<TVector, T>
        where TReducer : IBagReducer
    {
        nuint lanes = (nuint)TOps.Lanes;
        nuint lastVector = (nuint)dimension - lanes;
        nint total = (nint)Unsafe.Add(ref starts, numBags);
        for (nint bag = 0; bag < numBags; bag++)
        {
            nint start = (nint)Unsafe.Add(ref starts, bag), end = (nint)Unsafe.Add(ref starts, bag + 1);
            ref T target = ref Unsafe.Add(ref destination, bag * dimension);
            for (nuint column = 0; ; column += lanes)
            {
                // The last vector ends at the row end (overlapping the previous one when the row has a tail).
                if (column > lastVector)
                {
                    column = lastVector;
                }

                TVector accumulator = TReducer.Identity<TVector, T, TOps>();
                int count = 0;
                for (nint i = start; i < end; i++)
                {
                    // This pass's columns of the row KernelHints.BagPrefetchDistance positions ahead: later passes read other lines than the first.
                    if (KernelHints.IssuesPrefetches)
                    {
                        KernelHints.PrefetchColumns(in KernelRows.Of(in weight, KernelRows.Index(in indices, KernelHints.BagAhead(i, total)), dimension), column, (int)lanes, wholeRows);
                    }

                    nint row = KernelRows.Index(in indices, i);
                    if (row == paddingIndex)
                    {
                        continue;
                    }

                    TVector scale = TReducer.IsWeighted ? TOps.Broadcast(Unsafe.Add(ref perSampleWeights, i)) : default!;
                    accumulator = TReducer.Accumulate<TVector, T, TOps>(accumulator, TOps.Load(ref KernelRows.Of(in weight, row, dimension), column), scale);
                    count++;
                }

                TOps.Store(TReducer.Finish<TVector, T, TOps>(accumulator, count), ref target, column);
                if (column == lastVector)
                {
                    break;
                }
            }
        }
    }

    private static void Max<TVector, T, TOps>(ref T weight, int dimension, bool wholeRows, ref TIndex indices, ref long starts, nint numBags, long paddingIndex, ref T destination, ref long maxIndices)
        where T : unmanaged
        where TOps : IBagVector<TVector, T>
    {
        nuint lanes = (nuint)TOps.Lanes;
        nuint lastVector = (nuint)dimension - lanes;
        nint total = (nint)Unsafe.Add(ref starts, numBags);

        // No arg-max asked for: the same values; the positions are still carried along (this is the generic path).
        bool tracked = !Unsafe.IsNullRef(ref maxIndices);

        // A wider accumulator than the element (float16): the winning positions pick the stored row's bits
        // (NaN payloads included) rather than rounding the accumulator back; they go to scratch when not tracked.
        bool copyRows = typeof(T) == typeof(Half);
        Span<long> scratch = stackalloc long[copyRows && !tracked ? Vector512<float>.Count : 0];
        for (nint bag = 0; bag < numBags; bag++)
        {
            nint start = (nint)Unsafe.Add(ref starts, bag), end = (nint)Unsafe.Add(ref starts, bag + 1);
            ref T target = ref Unsafe.Add(ref destination, bag * dimension);
            ref long argMax = ref tracked ? ref Unsafe.Add(ref maxIndices, bag * dimension) : ref Unsafe.NullRef<long>();
            nint first = BagRows.FirstIncluded(in indices, start, end, paddingIndex);
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
                TVector accumulator = TOps.Load(ref KernelRows.Of(in weight, KernelRows.Index(in indices, first), dimension), column);
                TVector positions = TOps.Position(first);
                for (nint i = first + 1; i < end; i++)
                {
                    // This pass's columns of the row KernelHints.BagPrefetchDistance positions ahead: later passes read other lines than the first.
                    if (KernelHints.IssuesPrefetches)
                    {
                        KernelHints.PrefetchColumns(in KernelRows.Of(in weight, KernelRows.Index(in indices, KernelHints.BagAhead(i, total)), dimension), column, (int)lanes, wholeRows);
                    }

                    nint row = KernelRows.Index(in indices, i);
                    if (row == paddingIndex)
                    {
                        continue;
                    }

                    TVector value = TOps.Load(ref KernelRows.Of(in weight, row, dimension), column);
                    TVector replaces = BagMax.Replaces<TVector, T, TOps>(accumulator, value);
                    accumulator = TOps.Select(replaces, value, accumulator);
                    positions = TOps.Select(replaces, TOps.Position(i), positions);
                }

                if (copyRows)
                {
                    ref long winners = ref tracked ? ref Unsafe.Add(ref argMax, column) : ref System.Runtime.InteropServices.MemoryMarshal.GetReference(scratch);
                    TOps.StorePositions(positions, ref winners, 0);
                    BagRows.CopyWinners(ref weight, dimension, ref indices, ref winners, (int)lanes, ref target, column);
                }
                else
                {
                    TOps.Store(accumulator, ref target, column);
                    if (tracked)
                    {
                        TOps.StorePositions(positions, ref argMax, column);
                    }
                }

                if (column == lastVector)
                {
                    break;
                }
            }

            if (tracked)
            {
                BagRows.PositionsToRows(ref argMax, in indices, dimension);
            }
        }
    }
}
