using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for the embedding backward. Shims only: check, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    private const int FlagScaleGradByFreq = (int)EmbeddingGradOptions.ScaleGradByFrequency;
    private const int FlagAccumulate = (int)EmbeddingGradOptions.Accumulate;

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_backward")]
    public static int EmbeddingBackward(
        void* gradOutput, int gradDtype, long numIndices, long embeddingDim,
        void* indices, int indexDtype, long numEmbeddings, long paddingIndex,
        int flags, void* gradWeight, long gradWeightCapacity)
    {
        try
        {
            EmbeddingType table = AbiChecks.TableType(gradDtype, "grad_dtype");
            AbiChecks.NonNegative(numIndices, "num_indices");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            AbiChecks.NonNegative(gradWeightCapacity, "grad_weight_capacity");
            AbiChecks.Flags(flags, FlagScaleGradByFreq | FlagAccumulate, "EMB_SCALE_GRAD_BY_FREQ | EMB_ACCUMULATE");
            AbiChecks.PaddingRow(paddingIndex, numEmbeddings);
            if ((flags & FlagScaleGradByFreq) != 0)
            {
                AbiChecks.Scratch(numEmbeddings, numIndices);
            }

            int indexSize = AbiChecks.IndexSize(indexDtype, "index_dtype");
            long gradElements = AbiChecks.Elements(numIndices, embeddingDim, "grad_output");
            long weightElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "grad_weight");
            AbiChecks.Pointer(gradOutput, gradElements, "grad_output");
            AbiChecks.Pointer(indices, numIndices, "indices");
            AbiChecks.Pointer(gradWeight, weightElements, "grad_weight");
            AbiChecks.Capacity(gradWeightCapacity, weightElements, "grad_weight", $"{numEmbeddings} rows × {embeddingDim} columns");
            int elementSize = TableElements.Size(table);
            AbiChecks.Disjoint(gradWeight, weightElements * elementSize, gradOutput, gradElements * elementSize, "grad_weight", "grad_output");
            AbiChecks.Disjoint(gradWeight, weightElements * elementSize, indices, numIndices * indexSize, "grad_weight", "indices");

            var options = (EmbeddingGradOptions)flags;
            nint bad = table switch
            {
                EmbeddingType.Float64 => DenseBackward<double>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, options, gradWeight),
                EmbeddingType.Float16 => DenseBackward<Half>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, options, gradWeight),
                EmbeddingType.BFloat16 => DenseBackward<BFloat16>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, options, gradWeight),
                _ => DenseBackward<float>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, options, gradWeight),
            };
            return bad >= 0 ? BackwardBadIndex(indices, indexSize, bad, numEmbeddings) : (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_backward_sparse")]
    public static int EmbeddingBackwardSparse(
        void* gradOutput, int gradDtype, long numIndices, long embeddingDim,
        void* indices, int indexDtype, long numEmbeddings, long paddingIndex,
        int flags, long* outRows, void* outValues, long capacity, long* nnz)
    {
        try
        {
            EmbeddingType table = AbiChecks.TableType(gradDtype, "grad_dtype");
            AbiChecks.NonNegative(numIndices, "num_indices");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            AbiChecks.NonNegative(capacity, "capacity");
            AbiChecks.Flags(flags, FlagScaleGradByFreq, "EMB_SCALE_GRAD_BY_FREQ (EMB_ACCUMULATE is for the dense gradient)");
            AbiChecks.PaddingRow(paddingIndex, numEmbeddings);
            if ((flags & FlagScaleGradByFreq) != 0)
            {
                AbiChecks.Scratch(numEmbeddings, numIndices);
            }

            int indexSize = AbiChecks.IndexSize(indexDtype, "index_dtype");
            long gradElements = AbiChecks.Elements(numIndices, embeddingDim, "grad_output");
            long valueElements = AbiChecks.Elements(capacity, embeddingDim, "out_values");
            AbiChecks.Pointer(gradOutput, gradElements, "grad_output");
            AbiChecks.Pointer(indices, numIndices, "indices");
            AbiChecks.Pointer(outRows, capacity, "out_rows");
            AbiChecks.Pointer(outValues, valueElements, "out_values");
            AbiChecks.Pointer(nnz, 1, "nnz");
            int elementSize = TableElements.Size(table);
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), gradOutput, gradElements * elementSize, "out_rows", "grad_output");
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), indices, numIndices * indexSize, "out_rows", "indices");
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), outValues, valueElements * elementSize, "out_rows", "out_values");
            AbiChecks.Disjoint(outValues, valueElements * elementSize, gradOutput, gradElements * elementSize, "out_values", "grad_output");
            AbiChecks.Disjoint(outValues, valueElements * elementSize, indices, numIndices * indexSize, "out_values", "indices");
            // nnz is written last: inside another argument it would overwrite an input or an entry just written.
            AbiChecks.Disjoint(nnz, sizeof(long), gradOutput, gradElements * elementSize, "nnz", "grad_output");
            AbiChecks.Disjoint(nnz, sizeof(long), indices, numIndices * indexSize, "nnz", "indices");
            AbiChecks.Disjoint(nnz, sizeof(long), outRows, capacity * sizeof(long), "nnz", "out_rows");
            AbiChecks.Disjoint(nnz, sizeof(long), outValues, valueElements * elementSize, "nnz", "out_values");

            bool scale = (flags & FlagScaleGradByFreq) != 0;
            nint entries;
            nint bad = table switch
            {
                EmbeddingType.Float64 => SparseBackward<double>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, scale, outRows, outValues, capacity, out entries),
                EmbeddingType.Float16 => SparseBackward<Half>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, scale, outRows, outValues, capacity, out entries),
                EmbeddingType.BFloat16 => SparseBackward<BFloat16>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, scale, outRows, outValues, capacity, out entries),
                _ => SparseBackward<float>(gradOutput, indices, indexSize, numIndices, dimension, numEmbeddings, paddingIndex, scale, outRows, outValues, capacity, out entries),
            };
            if (bad >= 0)
            {
                return BackwardBadIndex(indices, indexSize, bad, numEmbeddings);
            }

            AbiChecks.Capacity(capacity, entries, "out_rows/out_values", $"{entries} non-padding positions");
            *nnz = entries;
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_sparse_coalesce")]
    public static int SparseCoalesce(
        long* rows, void* values, int valuesDtype, long nnz,
        long embeddingDim, long numEmbeddings,
        long* outRows, void* outValues, long capacity, long* numRows)
    {
        try
        {
            EmbeddingType table = AbiChecks.TableType(valuesDtype, "values_dtype");
            AbiChecks.NonNegative(nnz, "nnz");
            int dimension = AbiChecks.Dimension(embeddingDim);
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            AbiChecks.NonNegative(capacity, "capacity");
            AbiChecks.Scratch(numEmbeddings, nnz);

            long valueElements = AbiChecks.Elements(nnz, embeddingDim, "values");
            long outElements = AbiChecks.Elements(capacity, embeddingDim, "out_values");
            AbiChecks.Pointer(rows, nnz, "rows");
            AbiChecks.Pointer(values, valueElements, "values");
            AbiChecks.Pointer(outRows, capacity, "out_rows");
            AbiChecks.Pointer(outValues, outElements, "out_values");
            AbiChecks.Pointer(numRows, 1, "num_rows");
            int elementSize = TableElements.Size(table);
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), rows, nnz * sizeof(long), "out_rows", "rows");
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), values, valueElements * elementSize, "out_rows", "values");
            AbiChecks.Disjoint(outRows, capacity * sizeof(long), outValues, outElements * elementSize, "out_rows", "out_values");
            AbiChecks.Disjoint(outValues, outElements * elementSize, rows, nnz * sizeof(long), "out_values", "rows");
            AbiChecks.Disjoint(outValues, outElements * elementSize, values, valueElements * elementSize, "out_values", "values");
            // num_rows is written last: inside another argument it would overwrite an input or a row just written.
            AbiChecks.Disjoint(numRows, sizeof(long), rows, nnz * sizeof(long), "num_rows", "rows");
            AbiChecks.Disjoint(numRows, sizeof(long), values, valueElements * elementSize, "num_rows", "values");
            AbiChecks.Disjoint(numRows, sizeof(long), outRows, capacity * sizeof(long), "num_rows", "out_rows");
            AbiChecks.Disjoint(numRows, sizeof(long), outValues, outElements * elementSize, "num_rows", "out_values");

            nint unique;
            nint bad = table switch
            {
                EmbeddingType.Float64 => Coalesce<double>(rows, values, nnz, dimension, numEmbeddings, outRows, outValues, capacity, out unique),
                EmbeddingType.Float16 => Coalesce<Half>(rows, values, nnz, dimension, numEmbeddings, outRows, outValues, capacity, out unique),
                EmbeddingType.BFloat16 => Coalesce<BFloat16>(rows, values, nnz, dimension, numEmbeddings, outRows, outValues, capacity, out unique),
                _ => Coalesce<float>(rows, values, nnz, dimension, numEmbeddings, outRows, outValues, capacity, out unique),
            };
            if (bad >= 0)
            {
                return LastError.SetIndex(bad, rows[bad], numEmbeddings, "rows: ");
            }

            AbiChecks.Capacity(capacity, unique, "out_rows/out_values", $"{unique} distinct rows");
            *numRows = unique;
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    /// <summary>The dense backward over a gradient of <typeparamref name="TElement"/>, for either index type.</summary>
    private static nint DenseBackward<TElement>(void* gradOutput, void* indices, int indexSize, long numIndices, int dimension, long numEmbeddings, long paddingIndex, EmbeddingGradOptions options, void* gradWeight)
        where TElement : unmanaged
    {
        ref TElement gradient = ref Unsafe.AsRef<TElement>(gradOutput);
        ref TElement destination = ref Unsafe.AsRef<TElement>(gradWeight);
        return indexSize == sizeof(int)
            ? EmbeddingPrimitives.EmbeddingBackward(in gradient, in Unsafe.AsRef<int>(indices), (nint)numIndices, dimension, numEmbeddings, paddingIndex, options, ref destination, KernelDispatch.BestWidth)
            : EmbeddingPrimitives.EmbeddingBackward(in gradient, in Unsafe.AsRef<long>(indices), (nint)numIndices, dimension, numEmbeddings, paddingIndex, options, ref destination, KernelDispatch.BestWidth);
    }

    /// <summary>The sparse backward over a gradient of <typeparamref name="TElement"/>, for either index type.</summary>
    private static nint SparseBackward<TElement>(void* gradOutput, void* indices, int indexSize, long numIndices, int dimension, long numEmbeddings, long paddingIndex, bool scale, long* outRows, void* outValues, long capacity, out nint entries)
        where TElement : unmanaged
    {
        ref TElement gradient = ref Unsafe.AsRef<TElement>(gradOutput);
        ref TElement values = ref Unsafe.AsRef<TElement>(outValues);
        return indexSize == sizeof(int)
            ? EmbeddingPrimitives.EmbeddingSparseBackward(in gradient, in Unsafe.AsRef<int>(indices), (nint)numIndices, dimension, numEmbeddings, paddingIndex, scale, ref *outRows, ref values, (nint)capacity, out entries)
            : EmbeddingPrimitives.EmbeddingSparseBackward(in gradient, in Unsafe.AsRef<long>(indices), (nint)numIndices, dimension, numEmbeddings, paddingIndex, scale, ref *outRows, ref values, (nint)capacity, out entries);
    }

    /// <summary>The coalesce over values of <typeparamref name="TElement"/>.</summary>
    private static nint Coalesce<TElement>(long* rows, void* values, long nnz, int dimension, long numEmbeddings, long* outRows, void* outValues, long capacity, out nint unique)
        where TElement : unmanaged =>
        EmbeddingPrimitives.SparseCoalesce(
            in *rows, in Unsafe.AsRef<TElement>(values), (nint)nnz, dimension, numEmbeddings,
            ref *outRows, ref Unsafe.AsRef<TElement>(outValues), (nint)capacity, out unique, KernelDispatch.BestWidth);

    /// <summary>Reports the first out-of-range index with its position, value and the valid range.</summary>
    private static int BackwardBadIndex(void* indices, int indexSize, nint position, long rows)
    {
        long value = indexSize == sizeof(int) ? ((int*)indices)[position] : ((long*)indices)[position];
        return LastError.SetIndex(position, value, rows);
    }
}
