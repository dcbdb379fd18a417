using System;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for quantized tables: lookups and bags. Shims only: check, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_quantized_embedding_bag")]
    public static int QuantizedEmbeddingBag(
        void* packed, int bitWidth, long numEmbeddings, long embeddingDim,
        EmbBags* bags, int mode, int* compressedIndicesMapping, long mappingSize,
        float* output, long outputCapacity)
    {
        try
        {
            QuantizedRowLayout layout = QuantizedLayout(bitWidth, embeddingDim);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            ReadOnlySpan<int> mapping = QuantizedMapping(compressedIndicesMapping, mappingSize);
            AbiChecks.NonNegative(outputCapacity, "out_capacity");
            ref readonly EmbBags layoutOfBags = ref EmbBags.From(bags);
            // With a mapping the indices (and so padding_idx) index the mapping, not the packed rows.
            int indexSize = layoutOfBags.Validate(mapping.IsEmpty ? numEmbeddings : mapping.Length);
            EmbeddingBagMode bagMode = layoutOfBags.Mode(mode);
            if (bagMode == EmbeddingBagMode.Max)
            {
                throw new EmbException(EmbStatus.NotSupported, EmbeddingPrimitives.QuantizedMaxUnsupported);
            }

            return indexSize == sizeof(int)
                ? QuantizedEmbeddingBag<int>(packed, numEmbeddings, layout, in layoutOfBags, false, bagMode == EmbeddingBagMode.Mean, compressedIndicesMapping, mapping, output, outputCapacity)
                : QuantizedEmbeddingBag<long>(packed, numEmbeddings, layout, in layoutOfBags, false, bagMode == EmbeddingBagMode.Mean, compressedIndicesMapping, mapping, output, outputCapacity);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_quantized_embedding")]
    public static int QuantizedEmbedding(
        void* packed, int bitWidth, long numEmbeddings, long embeddingDim,
        void* indices, int indexDtype, long numIndices,
        int* compressedIndicesMapping, long mappingSize,
        float* output, long outputCapacity)
    {
        try
        {
            QuantizedRowLayout layout = QuantizedLayout(bitWidth, embeddingDim);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            ReadOnlySpan<int> mapping = QuantizedMapping(compressedIndicesMapping, mappingSize);
            AbiChecks.NonNegative(numIndices, "num_indices");
            AbiChecks.NonNegative(outputCapacity, "out_capacity");
            int indexSize = AbiChecks.IndexSize(indexDtype, "index_dtype");
            if (numIndices > int.MaxValue)
            {
                throw new EmbException(EmbStatus.NotSupported, Text($"num_indices {numIndices} exceeds {int.MaxValue}, the most one call takes; split the lookup over several calls"));
            }

            AbiChecks.Pointer(indices, numIndices, "indices");
            var lookup = new EmbBags { Indices = indices, NumIndices = numIndices, IndexDtype = indexDtype, BagSize = 1, PaddingIdx = EmbeddingPrimitives.NoPadding };
            return indexSize == sizeof(int)
                ? QuantizedEmbeddingBag<int>(packed, numEmbeddings, layout, in lookup, true, false, compressedIndicesMapping, mapping, output, outputCapacity)
                : QuantizedEmbeddingBag<long>(packed, numEmbeddings, layout, in lookup, true, false, compressedIndicesMapping, mapping, output, outputCapacity);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    /// <summary>The checks that need the index type and the bag layout, then the core; a lookup (<paramref name="lookup"/>) is bags of one position (<c>bag_size</c> 1).</summary>
    private static int QuantizedEmbeddingBag<TIndex>(void* packed, long numEmbeddings, QuantizedRowLayout layout, ref readonly EmbBags layoutOfBags, bool lookup, bool mean, int* mappingPointer, ReadOnlySpan<int> mapping, float* output, long outputCapacity)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        using PooledBags<TIndex> pooled = layoutOfBags.CreateBags<TIndex>();
        Bags<TIndex> bags = pooled.Bags;
        long packedBytes = AbiChecks.Elements(numEmbeddings, layout.RowBytes, "packed");
        long outputElements = AbiChecks.Elements(bags.Count, layout.Dimension, "out");
        AbiChecks.Pointer(packed, packedBytes, "packed");
        AbiChecks.Pointer(output, outputElements, "out");
        AbiChecks.Capacity(outputCapacity, outputElements, "out", $"{bags.Count} {(lookup ? "indices" : "bags")} × {layout.Dimension} columns");
        long outputBytes = outputElements * sizeof(float);
        AbiChecks.Disjoint(output, outputBytes, packed, packedBytes, "out", "packed");
        AbiChecks.Disjoint(output, outputBytes, mappingPointer, (long)mapping.Length * sizeof(int), "out", "compressed_indices_mapping");
        if (lookup)
        {
            AbiChecks.Disjoint(output, outputBytes, layoutOfBags.Indices, layoutOfBags.NumIndices * sizeof(TIndex), "out", "indices");
        }
        else
        {
            layoutOfBags.CheckDisjoint(output, outputBytes, "out", sizeof(TIndex), sizeof(float));
        }

        QuantizedLookupFailure failure = EmbeddingPrimitives.QuantizedEmbeddingBag(
            in Unsafe.AsRef<byte>(packed), numEmbeddings, layout, bags, mean, mapping, ref Unsafe.AsRef<float>(output), KernelDispatch.BestWidth);
        if (failure.IsFailure)
        {
            long value = long.CreateTruncating(bags.Indices[(int)failure.Position]);
            if (failure.MappingEntry)
            {
                return LastError.Set(EmbStatus.IndexOutOfRange, EmbeddingPrimitives.QuantizedMappingEntryOutOfRange(failure.Position, value, mapping[(int)value], numEmbeddings));
            }

            return LastError.SetIndex(failure.Position, value, EmbeddingPrimitives.QuantizedIndexOutOfRange(failure.Position, value, numEmbeddings, mapping.Length));
        }

        return (int)EmbStatus.Ok;
    }

    /// <summary>The row layout of <c>bit_width</c> and <c>embedding_dim</c>.</summary>
    private static QuantizedRowLayout QuantizedLayout(int bitWidth, long embeddingDim)
    {
        if (bitWidth is not (2 or 4 or 8))
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"bit_width is {bitWidth}; quantized tables have 2-, 4- or 8-bit codes"));
        }

        if (embeddingDim <= 0)
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"embedding_dim is {embeddingDim}; a quantized row holds at least one column"));
        }

        int dimension = AbiChecks.Dimension(embeddingDim);
        return new QuantizedRowLayout((QuantizedBits)bitWidth, dimension);
    }

    /// <summary>The pruning map: empty when <c>mapping_size</c> is 0 (the pointer may then be NULL).</summary>
    private static ReadOnlySpan<int> QuantizedMapping(int* mapping, long mappingSize)
    {
        AbiChecks.NonNegative(mappingSize, "mapping_size");
        AbiChecks.Pointer(mapping, mappingSize, "compressed_indices_mapping");
        if (mappingSize > int.MaxValue)
        {
            throw new EmbException(EmbStatus.NotSupported, Text($"mapping_size {mappingSize} exceeds {int.MaxValue}, the largest compressed_indices_mapping supported (torch's is an int32 tensor counted in an int)"));
        }

        return new ReadOnlySpan<int>(mapping, (int)mappingSize);
    }

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
