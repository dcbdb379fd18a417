using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for the EmbeddingBag backward. Shims only: check, build the bags, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_bag_backward")]
    public static int EmbeddingBagBackward(
        void* gradOutput, int gradDtype, long numEmbeddings, long embeddingDim,
        EmbBags* bags, int mode, long* maxIndices, int flags,
        void* gradWeight, long gradWeightCapacity)
    {
        try
        {
            EmbeddingType table = BagBackwardTableType(gradDtype);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(gradWeightCapacity, "grad_weight_capacity");
            AbiChecks.Flags(flags, FlagScaleGradByFreq | FlagAccumulate, "EMB_SCALE_GRAD_BY_FREQ | EMB_ACCUMULATE");
            ref readonly EmbBags layout = ref EmbBags.From(bags);
            int indexSize = layout.Validate(numEmbeddings);
            EmbeddingBagMode bagMode = layout.Mode(mode);
            var options = (EmbeddingGradOptions)flags;
            if (EmbeddingPrimitives.BagBackwardModeError(bagMode, layout.IsWeighted, options, sparse: false) is { } modeError)
            {
                throw new EmbException(EmbStatus.InvalidArgument, modeError);
            }

            if ((flags & FlagScaleGradByFreq) != 0)
            {
                AbiChecks.Scratch(numEmbeddings, layout.NumIndices);
            }

            long weightElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "grad_weight");
            AbiChecks.Pointer(gradWeight, weightElements, "grad_weight");
            if (gradWeightCapacity < weightElements)
            {
                // Formatted only on failure: a successful call allocates nothing.
                AbiChecks.Capacity(gradWeightCapacity, weightElements, "grad_weight", $"{numEmbeddings} rows × {embeddingDim} columns");
            }
            return (table, indexSize == sizeof(int)) switch
            {
                (EmbeddingType.Float64, true) => BagBackward<double, int>(in layout, gradOutput, numEmbeddings, dimension, bagMode, maxIndices, options, gradWeight, weightElements),
                (EmbeddingType.Float64, false) => BagBackward<double, long>(in layout, gradOutput, numEmbeddings, dimension, bagMode, maxIndices, options, gradWeight, weightElements),
                (EmbeddingType.Float16, true) => BagBackward<Half, int>(in layout, gradOutput, numEmbeddings, dimension, bagMode, maxIndices, options, gradWeight, weightElements),
                (EmbeddingType.Float16, false) => BagBackward<Half, long>(in layout, gradOutput, numEmbeddings, dimension, bagMode, maxIndices, options, gradWeight, weightElements),
                (_, true) => BagBackward<float, int>(in layout, gradOutput, numEmbeddings, dimension, bagMode, maxIndices, options, gradWeight, weightElements),
                _ => BagBackward<float, long>(in layout, gradOutput, numEmbeddings, dimension, bagMode, maxIndices, options, gradWeight, weightElements),
            };
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_bag_backward_sparse")]
    public static int EmbeddingBagBackwardSparse(
        void* gradOutput, int gradDtype, long numEmbeddings, long embeddingDim,
        EmbBags* bags, int mode, int flags,
        long* outRows, void* outValues, long capacity, long* nnz)
    {
        try
        {
            EmbeddingType table = BagBackwardTableType(gradDtype);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(capacity, "capacity");
            AbiChecks.Flags(flags, FlagScaleGradByFreq, "EMB_SCALE_GRAD_BY_FREQ (EMB_ACCUMULATE is for the dense gradient)");
            ref readonly EmbBags layout = ref EmbBags.From(bags);
            int indexSize = layout.Validate(numEmbeddings);
            EmbeddingBagMode bagMode = layout.Mode(mode);
            var options = (EmbeddingGradOptions)flags;
            if (EmbeddingPrimitives.BagBackwardModeError(bagMode, layout.IsWeighted, options, sparse: true) is { } modeError)
            {
                throw new EmbException(EmbStatus.InvalidArgument, modeError);
            }

            if ((flags & FlagScaleGradByFreq) != 0)
            {
                AbiChecks.Scratch(numEmbeddings, layout.NumIndices);
            }

            long valueElements = AbiChecks.Elements(capacity, embeddingDim, "out_values");
            AbiChecks.Pointer(outRows, capacity, "out_rows");
            AbiChecks.Pointer(outValues, valueElements, "out_values");
            AbiChecks.Pointer(nnz, 1, "nnz");
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), outValues, valueElements * TableElements.Size(table), "out_rows", "out_values");
            layout.CheckDisjoint(outRows, capacity * sizeof(long), "out_rows", indexSize, TableElements.Size(table));
            layout.CheckDisjoint(outValues, valueElements * TableElements.Size(table), "out_values", indexSize, TableElements.Size(table));
            // nnz is written last: inside another argument it would overwrite an input or an entry just written.
            AbiChecks.Disjoint(nnz, sizeof(long), outRows, capacity * sizeof(long), "nnz", "out_rows");
            AbiChecks.Disjoint(nnz, sizeof(long), outValues, valueElements * TableElements.Size(table), "nnz", "out_values");
            layout.CheckDisjoint(nnz, sizeof(long), "nnz", indexSize, TableElements.Size(table));
            return (table, indexSize == sizeof(int)) switch
            {
                (EmbeddingType.Float64, true) => BagBackwardSparse<double, int>(in layout, gradOutput, numEmbeddings, dimension, bagMode, options, outRows, outValues, capacity, valueElements, nnz),
                (EmbeddingType.Float64, false) => BagBackwardSparse<double, long>(in layout, gradOutput, numEmbeddings, dimension, bagMode, options, outRows, outValues, capacity, valueElements, nnz),
                (EmbeddingType.Float16, true) => BagBackwardSparse<Half, int>(in layout, gradOutput, numEmbeddings, dimension, bagMode, options, outRows, outValues, capacity, valueElements, nnz),
                (EmbeddingType.Float16, false) => BagBackwardSparse<Half, long>(in layout, gradOutput, numEmbeddings, dimension, bagMode, options, outRows, outValues, capacity, valueElements, nnz),
                (_, true) => BagBackwardSparse<float, int>(in layout, gradOutput, numEmbeddings, dimension, bagMode, options, outRows, outValues, capacity, valueElements, nnz),
                _ => BagBackwardSparse<float, long>(in layout, gradOutput, numEmbeddings, dimension, bagMode, options, outRows, outValues, capacity, valueElements, nnz),
            };
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_bag_per_sample_weights_backward")]
    public static int EmbeddingBagPerSampleWeightsBackward(
        void* gradOutput, int gradDtype, void* weight, long numEmbeddings,
        long embeddingDim, EmbBags* bags, int mode,
        void* gradPerSampleWeights, long capacity)
    {
        try
        {
            EmbeddingType table = BagBackwardTableType(gradDtype);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(capacity, "capacity");
            ref readonly EmbBags layout = ref EmbBags.From(bags);
            int indexSize = layout.Validate(numEmbeddings);
            if (layout.Mode(mode) != EmbeddingBagMode.Sum)
            {
                throw new EmbException(EmbStatus.NotSupported, EmbeddingPrimitives.PerSampleWeightsBackwardModeError);
            }

            long weightElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "weight");
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(gradPerSampleWeights, layout.NumIndices, "grad_per_sample_weights");
            if (capacity < layout.NumIndices)
            {
                AbiChecks.Capacity(capacity, layout.NumIndices, "grad_per_sample_weights", $"{layout.NumIndices} positions");
            }
            long outBytes = layout.NumIndices * TableElements.Size(table);
            AbiChecks.Disjoint(gradPerSampleWeights, outBytes, weight, weightElements * TableElements.Size(table), "grad_per_sample_weights", "weight");
            layout.CheckDisjoint(gradPerSampleWeights, outBytes, "grad_per_sample_weights", indexSize, TableElements.Size(table));
            return (table, indexSize == sizeof(int)) switch
            {
                (EmbeddingType.Float64, true) => BagPerSampleWeightsBackward<double, int>(in layout, gradOutput, weight, numEmbeddings, dimension, gradPerSampleWeights, outBytes),
                (EmbeddingType.Float64, false) => BagPerSampleWeightsBackward<double, long>(in layout, gradOutput, weight, numEmbeddings, dimension, gradPerSampleWeights, outBytes),
                (EmbeddingType.Float16, true) => BagPerSampleWeightsBackward<Half, int>(in layout, gradOutput, weight, numEmbeddings, dimension, gradPerSampleWeights, outBytes),
                (EmbeddingType.Float16, false) => BagPerSampleWeightsBackward<Half, long>(in layout, gradOutput, weight, numEmbeddings, dimension, gradPerSampleWeights, outBytes),
                (_, true) => BagPerSampleWeightsBackward<float, int>(in layout, gradOutput, weight, numEmbeddings, dimension, gradPerSampleWeights, outBytes),
                _ => BagPerSampleWeightsBackward<float, long>(in layout, gradOutput, weight, numEmbeddings, dimension, gradPerSampleWeights, outBytes),
            };
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    /// <summary>The dense bag backward once the scalar arguments are checked: builds the bags, checks the bag-sized buffers, runs the core.</summary>
    private static int BagBackward<TElement, TIndex>(
        scoped in EmbBags layout, void* gradOutput, long numEmbeddings, int dimension, EmbeddingBagMode mode,
        long* maxIndices, EmbeddingGradOptions options, void* gradWeight, long weightElements)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        using PooledBags<TIndex> pooled = layout.CreateBags<TIndex, TElement>();
        Bags<TIndex> bags = pooled.Bags;
        long gradElements = AbiChecks.Elements(bags.Count, dimension, "grad_output");
        bool max = mode == EmbeddingBagMode.Max;
        AbiChecks.Pointer(gradOutput, gradElements, "grad_output");
        AbiChecks.Disjoint(gradWeight, weightElements * sizeof(TElement), gradOutput, gradElements * sizeof(TElement), "grad_weight", "grad_output");
        if (max)
        {
            AbiChecks.Pointer(maxIndices, gradElements, "max_indices");
            AbiChecks.Disjoint(gradWeight, weightElements * sizeof(TElement), maxIndices, gradElements * sizeof(long), "grad_weight", "max_indices");
        }

        layout.CheckDisjoint(gradWeight, weightElements * sizeof(TElement), "grad_weight", sizeof(TIndex), sizeof(TElement));
        ref long maxStart = ref max ? ref *maxIndices : ref Unsafe.NullRef<long>();
        nint bad = BagBackwardDriver.Dense(
            in Unsafe.AsRef<TElement>(gradOutput), in bags, dimension, numEmbeddings, mode, in maxStart, options, ref Unsafe.AsRef<TElement>(gradWeight), KernelDispatch.BestWidth, out bool badMaxIndex);
        if (bad < 0)
        {
            return (int)EmbStatus.Ok;
        }

        return badMaxIndex
            ? LastError.Set(EmbStatus.IndexOutOfRange, "max_indices: " + EmbeddingErrors.IndexOutOfRange(bad, maxIndices[bad], numEmbeddings))
            : BagBackwardBadIndex(bags, bad, numEmbeddings);
    }

    /// <summary>The sparse bag backward once the scalar arguments are checked.</summary>
    private static int BagBackwardSparse<TElement, TIndex>(
        scoped in EmbBags layout, void* gradOutput, long numEmbeddings, int dimension, EmbeddingBagMode mode,
        EmbeddingGradOptions options, long* outRows, void* outValues, long capacity, long valueElements, long* nnz)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        using PooledBags<TIndex> pooled = layout.CreateBags<TIndex, TElement>();
        Bags<TIndex> bags = pooled.Bags;
        long gradElements = AbiChecks.Elements(bags.Count, dimension, "grad_output");
        AbiChecks.Pointer(gradOutput, gradElements, "grad_output");
        AbiChecks.Disjoint(outRows, capacity * sizeof(long), gradOutput, gradElements * sizeof(TElement), "out_rows", "grad_output");
        AbiChecks.Disjoint(outValues, valueElements * sizeof(TElement), gradOutput, gradElements * sizeof(TElement), "out_values", "grad_output");
        AbiChecks.Disjoint(nnz, sizeof(long), gradOutput, gradElements * sizeof(TElement), "nnz", "grad_output");
        nint bad = BagBackwardDriver.Sparse(
            in Unsafe.AsRef<TElement>(gradOutput), in bags, dimension, numEmbeddings, mode, (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0,
            ref *outRows, ref Unsafe.AsRef<TElement>(outValues), (nint)capacity, KernelDispatch.BestWidth, out nint entries);
        if (bad >= 0)
        {
            return BagBackwardBadIndex(bags, bad, numEmbeddings);
        }

        if (capacity < entries)
        {
            AbiChecks.Capacity(capacity, entries, "out_rows/out_values", $"{entries} non-padding positions in bags");
        }
        *nnz = entries;
        return (int)EmbStatus.Ok;
    }

    /// <summary>The per-sample-weights gradient once the scalar arguments are checked.</summary>
    private static int BagPerSampleWeightsBackward<TElement, TIndex>(
        scoped in EmbBags layout, void* gradOutput, void* weight, long numEmbeddings, int dimension, void* gradPerSampleWeights, long outBytes)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        using PooledBags<TIndex> pooled = layout.CreateBags<TIndex, TElement>();
        Bags<TIndex> bags = pooled.Bags;
        long gradElements = AbiChecks.Elements(bags.Count, dimension, "grad_output");
        AbiChecks.Pointer(gradOutput, gradElements, "grad_output");
        AbiChecks.Disjoint(gradPerSampleWeights, outBytes, gradOutput, gradElements * sizeof(TElement), "grad_per_sample_weights", "grad_output");
        nint bad = BagBackwardDriver.PerSampleWeights(
            in Unsafe.AsRef<TElement>(gradOutput), in Unsafe.AsRef<TElement>(weight), in bags, dimension, numEmbeddings, ref Unsafe.AsRef<TElement>(gradPerSampleWeights));
        return bad >= 0 ? BagBackwardBadIndex(bags, bad, numEmbeddings) : (int)EmbStatus.Ok;
    }

    /// <summary>Reports the first out-of-range bag index with its position, value and the valid range.</summary>
    private static int BagBackwardBadIndex<TIndex>(Bags<TIndex> bags, nint position, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        LastError.SetIndex(position, long.CreateTruncating(bags.Indices[(int)position]), rows);

    /// <summary>
    /// The table type of a bag backward (the gradients, the weight and the per-sample weights all have it):
    /// float32, float64 or float16; bfloat16 is refused as torch 1.13 refuses its bag.
    /// </summary>
    private static EmbeddingType BagBackwardTableType(int gradDtype)
    {
        EmbeddingType table = AbiChecks.TableType(gradDtype, "grad_dtype");
        if (EmbeddingPrimitives.BagTableTypeError(table) is { } typeError)
        {
            throw new EmbException(EmbStatus.UnsupportedDtype, typeError);
        }

        return table;
    }
}
