using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for the embedding forward. Shims only: check, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_padding_idx_normalize")]
    public static int PaddingIdxNormalize(long paddingIndex, long numEmbeddings, long* normalized)
    {
        try
        {
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            AbiChecks.Pointer(normalized, 1, "normalized");
            if (!EmbeddingPrimitives.TryNormalizePaddingIndex(paddingIndex, numEmbeddings, out long row))
            {
                return LastError.Set(EmbStatus.IndexOutOfRange, EmbeddingErrors.PaddingIndex(paddingIndex, numEmbeddings));
            }

            *normalized = row;
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding")]
    public static int Embedding(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        void* indices, int indexDtype, long numIndices,
        void* output, long outputCapacity)
    {
        try
        {
            EmbeddingType table = AbiChecks.TableType(weightDtype, "weight_dtype");
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            AbiChecks.NonNegative(embeddingDim, "embedding_dim");
            AbiChecks.NonNegative(numIndices, "num_indices");
            AbiChecks.NonNegative(outputCapacity, "out_capacity");
            if (embeddingDim > int.MaxValue)
            {
                throw new EmbException(EmbStatus.SizeOverflow, $"embedding_dim {embeddingDim} exceeds the largest supported row of {int.MaxValue} elements");
            }

            int indexSize = AbiChecks.IndexSize(indexDtype, "index_dtype");
            long weightElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "weight");
            long outputElements = AbiChecks.Elements(numIndices, embeddingDim, "out");
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(indices, numIndices, "indices");
            AbiChecks.Pointer(output, outputElements, "out");
            if (outputCapacity < outputElements)
            {
                throw new EmbException(EmbStatus.BufferTooSmall, $"out holds {outputCapacity} elements; {numIndices} indices × {embeddingDim} columns need {outputElements}");
            }

            int elementSize = TableElements.Size(table);
            AbiChecks.Disjoint(output, outputElements * elementSize, weight, weightElements * elementSize, "out", "weight");
            AbiChecks.Disjoint(output, outputElements * elementSize, indices, numIndices * indexSize, "out", "indices");

            nint bad = elementSize switch
            {
                sizeof(ushort) => Gather<ushort>(table, weight, numEmbeddings, embeddingDim, indices, indexSize, numIndices, output),
                sizeof(double) => Gather<double>(table, weight, numEmbeddings, embeddingDim, indices, indexSize, numIndices, output),
                _ => Gather<float>(table, weight, numEmbeddings, embeddingDim, indices, indexSize, numIndices, output),
            };
            if (bad >= 0)
            {
                long value = indexSize == sizeof(int) ? ((int*)indices)[bad] : ((long*)indices)[bad];
                return LastError.SetIndex(bad, value, numEmbeddings);
            }

            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    /// <summary>The gather over elements of <typeparamref name="TElement"/>'s size, for either index type.</summary>
    private static nint Gather<TElement>(EmbeddingType table, void* weight, long numEmbeddings, long embeddingDim, void* indices, int indexSize, long numIndices, void* output)
        where TElement : unmanaged
    {
        ref TElement source = ref Unsafe.AsRef<TElement>(weight);
        ref TElement destination = ref Unsafe.AsRef<TElement>(output);
        return indexSize == sizeof(int)
            ? EmbeddingPrimitives.Gather(table, in source, numEmbeddings, (int)embeddingDim, in Unsafe.AsRef<int>(indices), (nint)numIndices, ref destination, KernelDispatch.BestWidth)
            : EmbeddingPrimitives.Gather(table, in source, numEmbeddings, (int)embeddingDim, in Unsafe.AsRef<long>(indices), (nint)numIndices, ref destination, KernelDispatch.BestWidth);
    }

    /// <summary>Maps any exception to a status and message; nothing may cross the C boundary.</summary>
    private static int Fail(Exception exception) => exception switch
    {
        EmbException failure => LastError.Set(failure.Status, failure.Message),
        OutOfMemoryException => LastError.Set(EmbStatus.Internal, "out of memory"),
        _ => LastError.Set(EmbStatus.Internal, $"internal error ({exception.GetType().Name}): {exception.Message}"),
    };
}
