using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// The validated cores of the EmbeddingBag backward, shared by the span API (<c>EmbeddingPrimitives.BagBackward.cs</c>)
/// and the C ABI, for every table type: check the indices, zero what the operation defines as zero,
/// decide the thread count, then run <see cref="GenericBagBackward"/> on the calling thread or split the
/// call into pieces (<see cref="BagBackwardWork{TElement, TIndex}"/>, <see cref="BagSparseWork{TElement, TIndex}"/>,
/// <see cref="BagPerSampleWeightsWork{TElement, TIndex}"/>) that each own their outputs.
/// </summary>
/// <remarks>
/// Shapes, the mode and its options, the padding row and the buffers (lengths, overlaps) are the caller's
/// checks. Each core reports a bad index by its position and then has written nothing.
/// </remarks>
internal static class BagBackwardDriver
{
    /// <summary>
    /// The validated dense core shared by the span API and the C ABI, for every table type: checks every
    /// index and (max mode) every max index of a non-empty bag, then zeroes (unless accumulating) and
    /// scatters. The caller has checked shapes, the mode and its options, the padding row and the buffers;
    /// with frequency scaling <paramref name="rows"/> must not exceed <see cref="EmbeddingPrimitives.MaxScratchRows"/>.
    /// </summary>
    /// <remarks>
    /// Sum and mean add each row's contributions in torch's order (<see cref="BagBackwardOrder"/>, sorted first,
    /// in parallel parts on large calls), max in bag order. Large calls split the table into ranges of destination rows
    /// (<see cref="BagBackwardWork{TElement, TIndex}"/>): each row is written by one thread, which applies its
    /// contributions in that order with the arithmetic of <see cref="GenericBagBackward"/>, so every thread
    /// count gives the bits of one thread.
    /// </remarks>
    /// <returns>-1 on success; otherwise the position of the first bad index (<paramref name="badMaxIndex"/> false) or max index (true), and nothing was written.</returns>
    public static unsafe nint Dense<TElement, TIndex>(ref readonly TElement gradOutput, scoped in Bags<TIndex> bags, int dimension, long rows, EmbeddingBagMode mode, ref readonly long maxIndices, EmbeddingGradOptions options, ref TElement gradWeight, VectorWidth width, out bool badMaxIndex, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        badMaxIndex = false;
        nint bad = BagsBuilder.FindFirstBadIndex(in bags, rows);
        if (bad >= 0)
        {
            return bad;
        }

        if (mode == EmbeddingBagMode.Max)
        {
            bad = FindFirstBadMaxIndex(in bags, in maxIndices, dimension, rows);
            if (bad >= 0)
            {
                badMaxIndex = true;
                return bad;
            }
        }

        bool clear = (options & EmbeddingGradOptions.Accumulate) == 0;
        bool scatter = bags.Count != 0 && dimension != 0;
        long scattered = !scatter ? 0 : mode == EmbeddingBagMode.Max ? 3L * bags.Count : 3L * bags.Indices.Length + bags.Count;
        threads = EmbeddingThreads.For(sizeof(TElement) * (long)dimension * (scattered + (clear ? rows : 0)), rows, threads);
        if (threads == 1 && clear)
        {
            EmbeddingPrimitives.Clear(ref gradWeight, rows * dimension);
        }

        if (threads == 1 && !scatter)
        {
            return -1;
        }

        ref TElement gradient = ref Unsafe.AsRef(in gradOutput);
        if (threads == 1 && mode == EmbeddingBagMode.Max)
        {
            GenericBagBackward.Max(ref gradient, dimension, bags, ref Unsafe.AsRef(in maxIndices), ref gradWeight);
            return -1;
        }

        bool sumMean = scatter && mode != EmbeddingBagMode.Max;
        using FrequencyCounts counts = sumMean && (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0 && !bags.Indices.IsEmpty
            ? FrequencyCounts.Of(ref MemoryMarshal.GetReference(bags.Indices), bags.Indices.Length, rows)
            : FrequencyCounts.None;
        using BagBackwardOrder order = sumMean ? BagBackwardOrder.Of(bags, rows, mode == EmbeddingBagMode.Mean, threads) : default;
        ref int countsStart = ref counts.Start;
        width = dimension == 0 ? VectorWidth.Scalar : KernelDispatch.FitWidth(width, dimension, GenericBagBackward.LaneBytes<TElement>());
        if (threads == 1)
        {
            GenericBagBackward.SumMean(width, ref gradient, dimension, bags, order.Keys, order.Shift, order.BagOf, order.Members, ref countsStart, ref gradWeight);
            return -1;
        }

        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        fixed (TElement* source = &gradient)
        fixed (TIndex* first = &MemoryMarshal.GetReference(bags.Indices))
        fixed (long* bounds = &MemoryMarshal.GetReference(bags.Starts))
        fixed (TElement* sampleWeights = &MemoryMarshal.GetReference(weights))
        fixed (long* argMax = &Unsafe.AsRef(in maxIndices))
        fixed (int* frequency = &countsStart)
        fixed (ulong* sorted = &MemoryMarshal.GetReference(order.Keys))
        fixed (int* bagOf = &MemoryMarshal.GetReference(order.BagOf))
        fixed (int* members = &MemoryMarshal.GetReference(order.Members))
        fixed (TElement* destination = &gradWeight)
        {
            var work = new BagBackwardWork<TElement, TIndex>
            {
                GradOutput = source, Indices = first, IndexCount = bags.Indices.Length, Starts = bounds, Count = scatter ? bags.Count : 0,
                PerSampleWeights = sampleWeights, WeightCount = weights.Length, PaddingIndex = bags.PaddingIndex, Mode = mode, MaxIndices = argMax,
                Counts = frequency, SortedKeys = sorted, Shift = order.Shift, BagOf = bagOf, Members = members, MemberCount = order.Members.Length,
                GradWeight = destination, Rows = rows, Dimension = dimension, Clear = clear, Width = width,
            };
            WorkerPool.Run(ref work, threads, threads);
        }

        return -1;
    }

    /// <summary>
    /// The validated sparse core for every table type: checks every index and counts the entries
    /// (non-padding positions in a bag); writes them only when <paramref name="nnz"/> fits
    /// <paramref name="capacity"/> (the caller reports the shortfall). The mode is sum or mean, checked by the caller.
    /// Large calls split the bags into contiguous ranges (<see cref="BagSparseWork{TElement, TIndex}"/>), each
    /// writing its own entries with the arithmetic of one thread.
    /// </summary>
    /// <returns>-1 when every index is valid (then compare <paramref name="nnz"/> with the capacity); otherwise the position of the first bad index. On any failure nothing was written.</returns>
    public static unsafe nint Sparse<TElement, TIndex>(ref readonly TElement gradOutput, scoped in Bags<TIndex> bags, int dimension, long rows, EmbeddingBagMode mode, bool scaleByFrequency, ref long outRows, ref TElement outValues, nint capacity, VectorWidth width, out nint nnz, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        nnz = 0;
        nint bad = BagsBuilder.FindFirstBadIndex(in bags, rows);
        if (bad >= 0)
        {
            return bad;
        }

        for (int b = 0; b < bags.Count; b++)
        {
            nnz += GenericBagBackward.Members(bags, b);
        }

        if (nnz > capacity || nnz == 0)
        {
            return -1;
        }

        using FrequencyCounts counts = scaleByFrequency ? FrequencyCounts.Of(ref MemoryMarshal.GetReference(bags.Indices), bags.Indices.Length, rows) : FrequencyCounts.None;
        ref int countsStart = ref counts.Start;
        width = dimension == 0 ? VectorWidth.Scalar : KernelDispatch.FitWidth(width, dimension, GenericBagBackward.LaneBytes<TElement>());
        threads = EmbeddingThreads.For(2L * sizeof(TElement) * dimension * nnz, bags.Count, threads);
        if (threads == 1)
        {
            GenericBagBackward.Sparse(width, ref Unsafe.AsRef(in gradOutput), dimension, bags, mode == EmbeddingBagMode.Mean, ref countsStart, ref outRows, ref outValues);
            return -1;
        }

        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        fixed (TElement* source = &Unsafe.AsRef(in gradOutput))
        fixed (TIndex* first = &MemoryMarshal.GetReference(bags.Indices))
        fixed (long* bounds = &MemoryMarshal.GetReference(bags.Starts))
        fixed (TElement* sampleWeights = &MemoryMarshal.GetReference(weights))
        fixed (int* frequency = &countsStart)
        fixed (long* entryRows = &outRows)
        fixed (TElement* entryValues = &outValues)
        {
            var work = new BagSparseWork<TElement, TIndex>
            {
                GradOutput = source, Indices = first, IndexCount = bags.Indices.Length, Starts = bounds, Count = bags.Count,
                PerSampleWeights = sampleWeights, WeightCount = weights.Length, PaddingIndex = bags.PaddingIndex,
                Mean = mode == EmbeddingBagMode.Mean, Counts = frequency, Rows = entryRows, Values = entryValues, Dimension = dimension, Width = width,
            };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, bags.Count), threads);
        }

        return -1;
    }

    /// <summary>
    /// The validated per-sample-weights core for every table type: checks every index, zeroes the output,
    /// then writes the dot of each non-padding position. Large calls split the bags into contiguous ranges
    /// (<see cref="BagPerSampleWeightsWork{TElement, TIndex}"/>); each position's dot is computed by one thread,
    /// in column order, so every thread count gives the same bits. The caller has checked the mode (sum),
    /// the shapes and the buffers.
    /// </summary>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was written.</returns>
    public static unsafe nint PerSampleWeights<TElement, TIndex>(ref readonly TElement gradOutput, ref readonly TElement weight, scoped in Bags<TIndex> bags, int dimension, long rows, ref TElement gradPerSampleWeights, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        nint bad = BagsBuilder.FindFirstBadIndex(in bags, rows);
        if (bad >= 0)
        {
            return bad;
        }

        if (bags.Indices.IsEmpty)
        {
            return -1;
        }

        // +0.0 at padding positions and at positions in no bag; the kernel writes the others.
        MemoryMarshal.CreateSpan(ref gradPerSampleWeights, bags.Indices.Length).Clear();
        threads = EmbeddingThreads.For(2L * sizeof(TElement) * dimension * bags.Indices.Length, bags.Count, threads);
        if (threads == 1)
        {
            GenericBagBackward.PerSampleWeights(ref Unsafe.AsRef(in gradOutput), ref Unsafe.AsRef(in weight), dimension, bags, ref gradPerSampleWeights);
            return -1;
        }

        fixed (TElement* source = &Unsafe.AsRef(in gradOutput))
        fixed (TElement* table = &Unsafe.AsRef(in weight))
        fixed (TIndex* first = &MemoryMarshal.GetReference(bags.Indices))
        fixed (long* bounds = &MemoryMarshal.GetReference(bags.Starts))
        fixed (TElement* destination = &gradPerSampleWeights)
        {
            var work = new BagPerSampleWeightsWork<TElement, TIndex>
            {
                GradOutput = source, Weight = table, Indices = first, IndexCount = bags.Indices.Length, Starts = bounds, Count = bags.Count,
                PaddingIndex = bags.PaddingIndex, GradPerSampleWeights = destination, Dimension = dimension,
            };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, bags.Count), threads);
        }

        return -1;
    }

    /// <summary>
    /// The first entry of <paramref name="maxIndices"/> (a <c>bags × dimension</c> array) that belongs to a bag
    /// with a non-padding position and is not a row of the table; entries of other bags are ignored.
    /// </summary>
    public static nint FindFirstBadMaxIndex<TIndex>(scoped in Bags<TIndex> bags, ref readonly long maxIndices, int dimension, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        for (int b = 0; b < bags.Count; b++)
        {
            if (dimension == 0 || GenericBagBackward.Members(bags, b) == 0)
            {
                continue;
            }

            nint first = (nint)b * dimension;
            nint bad = IndexRange.FindFirstOutOfRange(ref Unsafe.Add(ref Unsafe.AsRef(in maxIndices), first), dimension, rows);
            if (bad >= 0)
            {
                return first + bad;
            }
        }

        return -1;
    }
}
