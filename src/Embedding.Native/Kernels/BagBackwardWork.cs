using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// One piece of a parallel dense bag backward: destination rows <c>[lo, hi)</c>. Zeroes them (unless
/// accumulating), then applies the updates whose row is in the range, with the arithmetic and the order of
/// <see cref="GenericBagBackward"/>, so each row accumulates exactly as on one thread: sum/mean the run of
/// the sorted entries (<see cref="BagBackwardOrder"/>) that holds the range's rows, max every bag in order.
/// </summary>
internal unsafe struct BagBackwardWork<TElement, TIndex> : IParallelWork
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    public TElement* GradOutput;
    public TIndex* Indices;
    public int IndexCount;
    public long* Starts;
    public int Count;
    public TElement* PerSampleWeights;
    public int WeightCount;
    public long PaddingIndex;
    public EmbeddingBagMode Mode;
    public long* MaxIndices;
    public int* Counts;
    public ulong* SortedKeys;
    public int Shift;
    public int* BagOf;
    public int* Members;
    public int MemberCount;
    public TElement* GradWeight;
    public long Rows;
    public int Dimension;
    public bool Clear;
    public VectorWidth Width;

    public readonly void Execute(int part, int parts)
    {
        long lo = EmbeddingThreads.Boundary(Rows, part, parts), hi = EmbeddingThreads.Boundary(Rows, part + 1, parts);
        if (Clear)
        {
            EmbeddingPrimitives.Clear(ref GradWeight[lo * Dimension], (hi - lo) * Dimension);
        }

        if (Count == 0)
        {
            return;
        }

        if (Mode == EmbeddingBagMode.Max)
        {
            MaxRows(lo, hi);
            return;
        }

        SumMeanRows(lo, hi);
    }

    /// <summary>The bags this work reads.</summary>
    private readonly Bags<TIndex> Bags =>
        Bags<TIndex>.Create(new ReadOnlySpan<TIndex>(Indices, IndexCount), new ReadOnlySpan<long>(Starts, Count + 1), new ReadOnlySpan<TElement>(PerSampleWeights, WeightCount), PaddingIndex);

    private readonly void MaxRows(long lo, long hi)
    {
        Bags<TIndex> bags = Bags;
        ulong span = (ulong)(hi - lo);
        for (int b = 0; b < Count; b++)
        {
            if (GenericBagBackward.Members(bags, b) == 0)
            {
                continue;
            }

            nint first = (nint)b * Dimension;
            for (nint d = 0; d < Dimension; d++)
            {
                long row = MaxIndices[first + d];
                if ((ulong)(row - lo) < span)
                {
                    ref TElement target = ref GradWeight[(nint)row * Dimension + d];
                    target = GenericBagBackward.AddOne(target, GradOutput[first + d]);
                }
            }
        }
    }

    private readonly void SumMeanRows(long lo, long hi)
    {
        // The keys are sorted by row: this range's rows are one run of them.
        var keys = new ReadOnlySpan<ulong>(SortedKeys, IndexCount);
        int first = BagBackwardOrder.FirstOfRow(keys, Shift, lo), end = BagBackwardOrder.FirstOfRow(keys, Shift, hi);
        ref int counts = ref Counts == null ? ref Unsafe.NullRef<int>() : ref *Counts;
        GenericBagBackward.SumMean(
            Width, ref *GradOutput, Dimension, Bags, keys[first..end], Shift, new ReadOnlySpan<int>(BagOf, IndexCount), new ReadOnlySpan<int>(Members, MemberCount), ref counts, ref *GradWeight);
    }
}

/// <summary>
/// One piece of a parallel sparse bag backward: a contiguous range of bags, run by the one-thread
/// kernel over a layout that starts at the piece's first bag (positions stay absolute); its first
/// entry follows the non-padding positions of the bags before it.
/// </summary>
internal unsafe struct BagSparseWork<TElement, TIndex> : IParallelWork
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    public TElement* GradOutput;
    public TIndex* Indices;
    public int IndexCount;
    public long* Starts;
    public int Count;
    public TElement* PerSampleWeights;
    public int WeightCount;
    public long PaddingIndex;
    public bool Mean;
    public int* Counts;
    public ulong* SortedKeys;
    public int Shift;
    public int* BagOf;
    public int* Members;
    public int MemberCount;
    public long* Rows;
    public TElement* Values;
    public int Dimension;
    public VectorWidth Width;

    public readonly void Execute(int part, int parts)
    {
        int first = EmbeddingPrimitives.BagBoundary(Starts, Count, part, parts), end = EmbeddingPrimitives.BagBoundary(Starts, Count, part + 1, parts);
        if (end <= first)
        {
            return;
        }

        nint entry = (nint)(Starts[first] - Starts[0]);
        if (PaddingIndex != EmbeddingPrimitives.NoPadding)
        {
            for (long i = Starts[0]; i < Starts[first]; i++)
            {
                entry -= long.CreateTruncating(Indices[i]) == PaddingIndex ? 1 : 0;
            }
        }

        var bags = Bags<TIndex>.Create(
            new ReadOnlySpan<TIndex>(Indices, IndexCount), new ReadOnlySpan<long>(Starts + first, end - first + 1),
            new ReadOnlySpan<TElement>(PerSampleWeights, WeightCount), PaddingIndex);
        ref int counts = ref Counts == null ? ref Unsafe.NullRef<int>() : ref *Counts;
        GenericBagBackward.Sparse(Width, ref GradOutput[(nint)first * Dimension], Dimension, bags, Mean, ref counts, ref Rows[entry], ref Values[entry * Dimension]);
    }
}

/// <summary>
/// One piece of a parallel per-sample-weights gradient: a contiguous range of bags, run by the
/// one-thread kernel over a layout that starts at the piece's first bag (positions stay absolute,
/// so each position's dot lands where one thread would write it).
/// </summary>
internal unsafe struct BagPerSampleWeightsWork<TElement, TIndex> : IParallelWork
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    public TElement* GradOutput;
    public TElement* Weight;
    public TIndex* Indices;
    public int IndexCount;
    public long* Starts;
    public int Count;
    public long PaddingIndex;
    public TElement* GradPerSampleWeights;
    public int Dimension;

    public readonly void Execute(int part, int parts)
    {
        int first = EmbeddingPrimitives.BagBoundary(Starts, Count, part, parts), end = EmbeddingPrimitives.BagBoundary(Starts, Count, part + 1, parts);
        if (end <= first)
        {
            return;
        }

        var bags = Bags<TIndex>.Create(
            new ReadOnlySpan<TIndex>(Indices, IndexCount), new ReadOnlySpan<long>(Starts + first, end - first + 1),
            ReadOnlySpan<TElement>.Empty, PaddingIndex);
        GenericBagBackward.PerSampleWeights(ref GradOutput[(nint)first * Dimension], ref *Weight, Dimension, bags, ref *GradPerSampleWeights);
    }
}
