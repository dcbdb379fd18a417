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
            if ((EmbDtype)weightDtype != EmbDtype.Float32)
            {
                throw new EmbException(EmbStatus.UnsupportedDtype, $"weight must be EMB_DTYPE_FLOAT32 (1), not dtype {weightDtype}");
            }

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

            AbiChecks.Disjoint(output, outputElements * sizeof(float), weight, weightElements * sizeof(float), "out", "weight");
            AbiChecks.Disjoint(output, outputElements * sizeof(float), indices, numIndices * indexSize, "out", "indices");

            ref float table = ref Unsafe.AsRef<float>(weight);
            ref float destination = ref Unsafe.AsRef<float>(output);
            nint bad = indexSize == sizeof(int)
                ? EmbeddingPrimitives.Gather(in table, numEmbeddings, (int)embeddingDim, in Unsafe.AsRef<int>(indices), (nint)numIndices, ref destination, KernelDispatch.BestWidth)
                : EmbeddingPrimitives.Gather(in table, numEmbeddings, (int)embeddingDim, in Unsafe.AsRef<long>(indices), (nint)numIndices, ref destination, KernelDispatch.BestWidth);
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

    /// <summary>Maps any exception to a status and message; nothing may cross the C boundary.</summary>
    private static int Fail(Exception exception) => exception switch
    {
        EmbException failure => LastError.Set(failure.Status, failure.Message),
        OutOfMemoryException => LastError.Set(EmbStatus.Internal, "out of memory"),
        _ => LastError.Set(EmbStatus.Internal, $"internal error ({exception.GetType().Name}): {exception.Message}"),
    };
}
