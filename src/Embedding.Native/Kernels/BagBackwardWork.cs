using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// One piece of a parallel dense bag backward: destination rows <c>[lo, hi)</c>. Zeroes them (unless
/// accumulating), then walks every bag and position in order and applies only the updates whose row
/// is in the range, with the arithmetic of <see cref="GenericBagBackward"/>, so each row accumulates in
/// position (max: bag) order exactly as on one thread.
/// </summary>
internal unsafe struct BagBackwardWork<TElement, TIndex> : IParallelWork
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    /// <summary>Positions compacted per round: two 4 KiB lists on the worker's stack.</summary>
    private const int ChunkPositions = 1024;

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

        switch (Width)
        {
            case VectorWidth.Vector512:
                SumMeanRows<Width512>(lo, hi);
                break;
            case VectorWidth.Vector256:
                SumMeanRows<Width256>(lo, hi);
                break;
            case VectorWidth.Vector128:
                SumMeanRows<Width128>(lo, hi);
                break;
            default:
                SumMeanRows<WidthScalar>(lo, hi);
                break;
        }
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

    private readonly void SumMeanRows<TWidth>(long lo, long hi)
        where TWidth : IVectorWidth
    {
        int* positions = stackalloc int[ChunkPositions];
        int* owners = stackalloc int[ChunkPositions];
        int kept = 0;
        for (int b = 0; b < Count; b++)
        {
            for (long i = Starts[b]; i < Starts[b + 1]; i++)
            {
                // Compact to the positions whose row is in [lo, hi), in position order.
                long row = long.CreateTruncating(Indices[i]);
                positions[kept] = (int)i;
                owners[kept] = b;
                kept += EmbeddingThreads.Owns(row, lo, hi);
                if (kept == ChunkPositions)
                {
                    Apply<TWidth>(positions, owners, kept);
                    kept = 0;
                }
            }
        }

        Apply<TWidth>(positions, owners, kept);
    }

    /// <summary>Adds the gradient of bag <c>owners[k]</c> into the row of position <c>positions[k]</c>, k in order.</summary>
    private readonly void Apply<TWidth>(int* positions, int* owners, int count)
        where TWidth : IVectorWidth
    {
        Bags<TIndex> bags = Bags;
        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        ref int counts = ref Counts == null ? ref Unsafe.NullRef<int>() : ref *Counts;
        int dimension = Dimension;
        bool mean = Mode == EmbeddingBagMode.Mean;
        bool scaled = Counts != null || mean || WeightCount != 0;
        int distance = KernelHints.DistanceForRowBytes(dimension * sizeof(TElement));
        int membersOf = -1, members = 0;
        for (int k = 0; k < count; k++)
        {
            // Prefetch along this piece's own rows: a hint, so no value changes.
            long ahead = long.CreateTruncating(Indices[positions[Math.Min(k + distance, count - 1)]]);
            KernelHints.PrefetchRow(ref GradWeight[(nint)ahead * dimension], dimension);
            int i = positions[k], b = owners[k];
            long row = long.CreateTruncating(Indices[i]);
            if (row == PaddingIndex)
            {
                continue;
            }

            if (mean && membersOf != b)
            {
                members = GenericBagBackward.Members(bags, b);
                membersOf = b;
            }

            GenericBagBackward.Accumulate<TElement, TWidth>(
                ref GradOutput[(nint)b * dimension], ref GradWeight[(nint)row * dimension], dimension, scaled, weights, i, ref counts, (nint)row, members);
        }
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
