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
            // Inside the indices, offsets or weights, num_bags would overwrite the caller's const bags.
            layout.CheckDisjoint(numBags, sizeof(long), "num_bags", indexSize);
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
            AbiChecks.Float32(weightDtype, "weight_dtype");
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(outputCapacity, "out_capacity");
            AbiChecks.NonNegative(maxIndicesCapacity, "max_indices_capacity");
            ref readonly EmbBags layout = ref EmbBags.From(bags);
            int indexSize = layout.Validate(numEmbeddings);
            EmbeddingBagMode bagMode = layout.Mode(mode);
            return indexSize == sizeof(int)
                ? EmbeddingBag<int>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity)
                : EmbeddingBag<long>(weight, numEmbeddings, dimension, in layout, bagMode, output, outputCapacity, maxIndices, maxIndicesCapacity);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    private static int EmbeddingBag<TIndex>(void* weight, long numEmbeddings, int dimension, ref readonly EmbBags layout, EmbeddingBagMode mode, void* output, long outputCapacity, long* maxIndices, long maxIndicesCapacity)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        using PooledBags<TIndex> pooled = layout.CreateBags<TIndex>();
        Bags<TIndex> bags = pooled.Bags;
        long weightElements = AbiChecks.Elements(numEmbeddings, dimension, "weight");
        long outputElements = AbiChecks.Elements(bags.Count, dimension, "out");
        AbiChecks.Pointer(weight, weightElements, "weight");
        AbiChecks.Pointer(output, outputElements, "out");
        AbiChecks.Capacity(outputCapacity, outputElements, "out", $"{bags.Count} bags × {dimension} columns");
        AbiChecks.Disjoint(output, outputElements * sizeof(float), weight, weightElements * sizeof(float), "out", "weight");
        layout.CheckDisjoint(output, outputElements * sizeof(float), "out", sizeof(TIndex));
        // max_indices NULL in max mode: the values only (no arg-max is tracked).
        bool max = mode == EmbeddingBagMode.Max && maxIndices != null;
        if (max)
        {
            AbiChecks.Pointer(maxIndices, outputElements, "max_indices");
            AbiChecks.Capacity(maxIndicesCapacity, outputElements, "max_indices", $"{bags.Count} bags × {dimension} columns");
            AbiChecks.Disjoint(maxIndices, outputElements * sizeof(long), weight, weightElements * sizeof(float), "max_indices", "weight");
            AbiChecks.Disjoint(maxIndices, outputElements * sizeof(long), output, outputElements * sizeof(float), "max_indices", "out");
            layout.CheckDisjoint(maxIndices, outputElements * sizeof(long), "max_indices", sizeof(TIndex));
        }

        nint bad = EmbeddingPrimitives.EmbeddingBag(
            in Unsafe.AsRef<float>(weight), numEmbeddings, dimension, bags, mode,
            ref Unsafe.AsRef<float>(output), ref max ? ref *maxIndices : ref Unsafe.NullRef<long>(), KernelDispatch.BestWidth);
        if (bad >= 0)
        {
            return LastError.SetIndex(bad, long.CreateTruncating(bags.Indices[(int)bad]), numEmbeddings);
        }

        return (int)EmbStatus.Ok;
    }
}
