using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for the bag forward. Shims only: check, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_bag_count")]
    public static int EmbeddingBagCount(EmbBags* bags, long* numBags)
    {
        try
        {
            ref readonly EmbBags layout = ref EmbBags.From(bags);
            AbiChecks.Pointer(numBags, 1, "num_bags");
            int indexSize = layout.Validate();
            // Inside the indices, offsets or weights, num_bags would overwrite the caller's const bags. The
            // weights' type is not known here (the count does not read them): they are measured as
            // float32, as before other table types existed (header: emb_embedding_bag_count).
            layout.CheckDisjoint(numBags, sizeof(long), "num_bags", indexSize, sizeof(float));
            *numBags = layout.CountBags();
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_bag")]
    public static int EmbeddingBag(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        EmbBags* bags, int mode,
        void* output, long outputCapacity, long* maxIndices, long maxIndicesCapacity)
    {
        try
        {
            EmbeddingType table = AbiChecks.TableType(weightDtype, "weight_dtype");
            if (EmbeddingPrimitives.BagTableTypeError(table) is { } typeError)
            {
                throw new EmbException(EmbStatus.UnsupportedDtype, typeError);
            }

            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(outputCapacity, "out_capacity");
            AbiChecks.NonNegative(maxIndicesCapacity, "max_indices_capacity");
            ref readonly EmbBags layout = ref EmbBags.From(bags);
            int indexSize = layout.Validate(numEmbeddings);
            EmbeddingBagMode bagMode = layout.Mode(mode);
            return (table, indexSize) switch
            {
                (EmbeddingType.Float64, sizeof(int)) => EmbeddingBag<double, int>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity),
                (EmbeddingType.Float64, _) => EmbeddingBag<double, long>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity),
                (EmbeddingType.Float16, sizeof(int)) => EmbeddingBag<Half, int>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity),
                (EmbeddingType.Float16, _) => EmbeddingBag<Half, long>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity),
                (_, sizeof(int)) => EmbeddingBag<float, int>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity),
                _ => EmbeddingBag<float, long>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity),
            };
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    private static int EmbeddingBag<TElement, TIndex>(void* weight, long numEmbeddings, int dimension, ref readonly EmbBags layout, EmbeddingBagMode mode, void* output, long outputCapacity, long* maxIndices, long maxIndicesCapacity)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        // per_sample_weights are read in the table's dtype: torch refuses any other.
        using PooledBags<TIndex> pooled = layout.CreateBags<TIndex, TElement>();
        Bags<TIndex> bags = pooled.Bags;
        long weightElements = AbiChecks.Elements(numEmbeddings, dimension, "weight");
        long outputElements = AbiChecks.Elements(bags.Count, dimension, "out");
        AbiChecks.Pointer(weight, weightElements, "weight");
        AbiChecks.Pointer(output, outputElements, "out");
        AbiChecks.Capacity(outputCapacity, outputElements, "out", $"{bags.Count} bags × {dimension} columns");
        AbiChecks.Disjoint(output, outputElements * sizeof(TElement), weight, weightElements * sizeof(TElement), "out", "weight");
        layout.CheckDisjoint(output, outputElements * sizeof(TElement), "out", sizeof(TIndex), sizeof(TElement));
        // max_indices NULL in max mode: the values only (no arg-max is tracked).
        bool max = mode == EmbeddingBagMode.Max && maxIndices != null;
        if (max)
        {
            AbiChecks.Pointer(maxIndices, outputElements, "max_indices");
            AbiChecks.Capacity(maxIndicesCapacity, outputElements, "max_indices", $"{bags.Count} bags × {dimension} columns");
            AbiChecks.Disjoint(maxIndices, outputElements * sizeof(long), weight, weightElements * sizeof(TElement), "max_indices", "weight");
            AbiChecks.Disjoint(maxIndices, outputElements * sizeof(long), output, outputElements * sizeof(TElement), "max_indices", "out");
            layout.CheckDisjoint(maxIndices, outputElements * sizeof(long), "max_indices", sizeof(TIndex), sizeof(TElement));
        }

        nint bad = EmbeddingPrimitives.EmbeddingBag(
            in Unsafe.AsRef<TElement>(weight), numEmbeddings, dimension, bags, mode,
            ref Unsafe.AsRef<TElement>(output), ref max ? ref *maxIndices : ref Unsafe.NullRef<long>(), KernelDispatch.BestWidth);
        if (bad >= 0)
        {
            return LastError.SetIndex(bad, long.CreateTruncating(bags.Indices[(int)bad]), numEmbeddings);
        }

        return (int)EmbStatus.Ok;
    }
}
