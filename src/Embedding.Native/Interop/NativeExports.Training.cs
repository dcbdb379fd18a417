using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for renormalisation and the fused sparse optimizer steps. Shims only: check, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_renorm")]
    public static int EmbeddingRenorm(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        void* indices, int indexDtype, long numIndices,
        double maxNorm, double normType) =>
        EmbeddingRenorm(weight, weightDtype, numEmbeddings, embeddingDim, indices, indexDtype, numIndices, maxNorm, normType, stridedRows: false);

    [UnmanagedCallersOnly(EntryPoint = "emb_embedding_renorm_strided_rows")]
    public static int EmbeddingRenormStridedRows(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        void* indices, int indexDtype, long numIndices,
        double maxNorm, double normType) =>
        EmbeddingRenorm(weight, weightDtype, numEmbeddings, embeddingDim, indices, indexDtype, numIndices, maxNorm, normType, stridedRows: true);

    /// <summary>Both renorm exports: the same checks and core; <paramref name="stridedRows"/> picks torch's norms of strided rows.</summary>
    private static int EmbeddingRenorm(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        void* indices, int indexDtype, long numIndices,
        double maxNorm, double normType, bool stridedRows)
    {
        try
        {
            // torch 1.13 renormalises all four table types.
            EmbeddingType table = AbiChecks.TableType(weightDtype, "weight_dtype");
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            int dimension = AbiChecks.Dimension(embeddingDim);
            long weightElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "weight");
            AbiChecks.NonNegative(numIndices, "num_indices");
            int indexSize = AbiChecks.IndexSize(indexDtype, "index_dtype");
            if (numIndices > Array.MaxLength)
            {
                // The distinct rows are found by sorting a pooled copy of the indices.
                throw new EmbException(EmbStatus.SizeOverflow, $"num_indices {numIndices} exceeds the largest supported count of {Array.MaxLength}");
            }

            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(indices, numIndices, "indices");
            AbiChecks.Disjoint(weight, weightElements * TableElements.Size(table), indices, numIndices * indexSize, "weight", "indices");

            nint bad = table switch
            {
                EmbeddingType.Float64 => Renorm<double>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType, stridedRows),
                EmbeddingType.Float16 => Renorm<Half>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType, stridedRows),
                EmbeddingType.BFloat16 => Renorm<BFloat16>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType, stridedRows),
                _ => Renorm<float>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType, stridedRows),
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

    /// <summary>The renorm core for one table element type and either index type.</summary>
    private static nint Renorm<TElement>(void* weight, long rows, int dimension, void* indices, int indexSize, long count, double maxNorm, double normType, bool stridedRows)
        where TElement : unmanaged
    {
        ref TElement table = ref Unsafe.AsRef<TElement>(weight);
        return indexSize == sizeof(int)
            ? EmbeddingPrimitives.Renorm(ref table, rows, dimension, in Unsafe.AsRef<int>(indices), (nint)count, maxNorm, normType, KernelDispatch.BestWidth, stridedRows: stridedRows)
            : EmbeddingPrimitives.Renorm(ref table, rows, dimension, in Unsafe.AsRef<long>(indices), (nint)count, maxNorm, normType, KernelDispatch.BestWidth, stridedRows: stridedRows);
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_sgd_step")]
    public static int SgdStep(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        long* rows, void* values, long numRows,
        double lr, double weightDecay)
    {
        try
        {
            EmbeddingType table = CheckTable(weightDtype, numEmbeddings, embeddingDim, out long weightElements);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            int size = TableElements.Size(table);
            AbiChecks.Pointer(weight, weightElements, "weight");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements, size);
            CheckHyperParameters(OptimizerChecks.Sgd(lr, weightDecay));

            nint bad = table switch
            {
                EmbeddingType.Float64 => Sgd<double>(weight, numEmbeddings, embeddingDim, rows, values, numRows, lr, weightDecay),
                EmbeddingType.Float16 => Sgd<Half>(weight, numEmbeddings, embeddingDim, rows, values, numRows, lr, weightDecay),
                EmbeddingType.BFloat16 => Sgd<BFloat16>(weight, numEmbeddings, embeddingDim, rows, values, numRows, lr, weightDecay),
                _ => Sgd<float>(weight, numEmbeddings, embeddingDim, rows, values, numRows, lr, weightDecay),
            };
            return RowResult(bad, rows, numEmbeddings);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_adagrad_step")]
    public static int AdagradStep(
        void* weight, void* stateSum, int weightDtype, long numEmbeddings, long embeddingDim,
        long* rows, void* values, long numRows,
        double lr, double lrDecay, double eps, long step)
    {
        try
        {
            EmbeddingType table = CheckTable(weightDtype, numEmbeddings, embeddingDim, out long weightElements);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            int size = TableElements.Size(table);
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(stateSum, weightElements, "state_sum");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements, size);
            CheckWritten(stateSum, weightElements, "state_sum", rows, values, numRows, valueElements, size);
            AbiChecks.Disjoint(weight, weightElements * size, stateSum, weightElements * size, "weight", "state_sum");
            CheckHyperParameters(OptimizerChecks.Adagrad(lr, lrDecay, eps, step));

            nint bad = table switch
            {
                EmbeddingType.Float64 => Adagrad<double>(weight, stateSum, numEmbeddings, embeddingDim, rows, values, numRows, lr, lrDecay, eps, step),
                EmbeddingType.Float16 => Adagrad<Half>(weight, stateSum, numEmbeddings, embeddingDim, rows, values, numRows, lr, lrDecay, eps, step),
                EmbeddingType.BFloat16 => Adagrad<BFloat16>(weight, stateSum, numEmbeddings, embeddingDim, rows, values, numRows, lr, lrDecay, eps, step),
                _ => Adagrad<float>(weight, stateSum, numEmbeddings, embeddingDim, rows, values, numRows, lr, lrDecay, eps, step),
            };
            return RowResult(bad, rows, numEmbeddings);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_rowwise_adagrad_step")]
    public static int RowwiseAdagradStep(
        void* weight, void* momentum, int weightDtype, long numEmbeddings, long embeddingDim,
        long* rows, void* values, long numRows,
        double lr, double eps)
    {
        try
        {
            EmbeddingType table = CheckTable(weightDtype, numEmbeddings, embeddingDim, out long weightElements);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            int size = TableElements.Size(table);
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(momentum, numEmbeddings, "momentum");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements, size);
            CheckWritten(momentum, numEmbeddings, "momentum", rows, values, numRows, valueElements, size);
            AbiChecks.Disjoint(weight, weightElements * size, momentum, numEmbeddings * size, "weight", "momentum");
            CheckHyperParameters(OptimizerChecks.RowwiseAdagrad(lr, eps));

            nint bad = table switch
            {
                EmbeddingType.Float64 => RowwiseAdagrad<double>(weight, momentum, numEmbeddings, embeddingDim, rows, values, numRows, lr, eps),
                EmbeddingType.Float16 => RowwiseAdagrad<Half>(weight, momentum, numEmbeddings, embeddingDim, rows, values, numRows, lr, eps),
                EmbeddingType.BFloat16 => RowwiseAdagrad<BFloat16>(weight, momentum, numEmbeddings, embeddingDim, rows, values, numRows, lr, eps),
                _ => RowwiseAdagrad<float>(weight, momentum, numEmbeddings, embeddingDim, rows, values, numRows, lr, eps),
            };
            return RowResult(bad, rows, numEmbeddings);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_sparse_adam_step")]
    public static int SparseAdamStep(
        void* weight, void* expAvg, void* expAvgSq, int weightDtype,
        long numEmbeddings, long embeddingDim,
        long* rows, void* values, long numRows,
        double lr, double beta1, double beta2, double eps, long step)
    {
        try
        {
            EmbeddingType table = CheckTable(weightDtype, numEmbeddings, embeddingDim, out long weightElements);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            int size = TableElements.Size(table);
            long bytes = weightElements * size;
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(expAvg, weightElements, "exp_avg");
            AbiChecks.Pointer(expAvgSq, weightElements, "exp_avg_sq");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements, size);
            CheckWritten(expAvg, weightElements, "exp_avg", rows, values, numRows, valueElements, size);
            CheckWritten(expAvgSq, weightElements, "exp_avg_sq", rows, values, numRows, valueElements, size);
            AbiChecks.Disjoint(weight, bytes, expAvg, bytes, "weight", "exp_avg");
            AbiChecks.Disjoint(weight, bytes, expAvgSq, bytes, "weight", "exp_avg_sq");
            AbiChecks.Disjoint(expAvg, bytes, expAvgSq, bytes, "exp_avg", "exp_avg_sq");
            CheckHyperParameters(OptimizerChecks.SparseAdam(lr, beta1, beta2, eps, step));

            nint bad = table switch
            {
                EmbeddingType.Float64 => SparseAdam<double>(weight, expAvg, expAvgSq, numEmbeddings, embeddingDim, rows, values, numRows, lr, beta1, beta2, eps, step),
                EmbeddingType.Float16 => SparseAdam<Half>(weight, expAvg, expAvgSq, numEmbeddings, embeddingDim, rows, values, numRows, lr, beta1, beta2, eps, step),
                EmbeddingType.BFloat16 => SparseAdam<BFloat16>(weight, expAvg, expAvgSq, numEmbeddings, embeddingDim, rows, values, numRows, lr, beta1, beta2, eps, step),
                _ => SparseAdam<float>(weight, expAvg, expAvgSq, numEmbeddings, embeddingDim, rows, values, numRows, lr, beta1, beta2, eps, step),
            };
            return RowResult(bad, rows, numEmbeddings);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    // ---- The optimizer cores for one element type (weight, values and state share it) ----------

    private static nint Sgd<T>(void* weight, long numEmbeddings, long dimension, long* rows, void* values, long count, double lr, double weightDecay)
        where T : unmanaged =>
        EmbeddingPrimitives.SgdCore(
            ref Unsafe.AsRef<T>(weight), numEmbeddings, (int)dimension,
            in Unsafe.AsRef<long>(rows), (nint)count, in Unsafe.AsRef<T>(values), lr, weightDecay, KernelDispatch.BestWidth);

    private static nint Adagrad<T>(void* weight, void* stateSum, long numEmbeddings, long dimension, long* rows, void* values, long count,
        double lr, double lrDecay, double eps, long step)
        where T : unmanaged =>
        EmbeddingPrimitives.AdagradCore(
            ref Unsafe.AsRef<T>(weight), ref Unsafe.AsRef<T>(stateSum), numEmbeddings, (int)dimension,
            in Unsafe.AsRef<long>(rows), (nint)count, in Unsafe.AsRef<T>(values), lr, lrDecay, eps, step, KernelDispatch.BestWidth);

    private static nint RowwiseAdagrad<T>(void* weight, void* momentum, long numEmbeddings, long dimension, long* rows, void* values, long count, double lr, double eps)
        where T : unmanaged =>
        EmbeddingPrimitives.RowwiseAdagradCore(
            ref Unsafe.AsRef<T>(weight), ref Unsafe.AsRef<T>(momentum), numEmbeddings, (int)dimension,
            in Unsafe.AsRef<long>(rows), (nint)count, in Unsafe.AsRef<T>(values), lr, eps, KernelDispatch.BestWidth);

    private static nint SparseAdam<T>(void* weight, void* expAvg, void* expAvgSq, long numEmbeddings, long dimension, long* rows, void* values, long count,
        double lr, double beta1, double beta2, double eps, long step)
        where T : unmanaged =>
        EmbeddingPrimitives.SparseAdamCore(
            ref Unsafe.AsRef<T>(weight), ref Unsafe.AsRef<T>(expAvg), ref Unsafe.AsRef<T>(expAvgSq), numEmbeddings, (int)dimension,
            in Unsafe.AsRef<long>(rows), (nint)count, in Unsafe.AsRef<T>(values), lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);

    /// <summary>
    /// Checks an optimizer table's dtype (any of the four table types: weight, values and state share
    /// it) and sizes; returns its type, and its element count in <paramref name="elements"/>.
    /// </summary>
    private static EmbeddingType CheckTable(int weightDtype, long numEmbeddings, long embeddingDim, out long elements)
    {
        EmbeddingType table = AbiChecks.TableType(weightDtype, "weight_dtype");
        AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
        AbiChecks.Dimension(embeddingDim);
        elements = AbiChecks.Elements(numEmbeddings, embeddingDim, "weight");
        return table;
    }

    /// <summary>Checks a sparse gradient's count and pointers; returns the element count of its values.</summary>
    private static long CheckGradient(long* rows, void* values, long numRows, long embeddingDim)
    {
        AbiChecks.NonNegative(numRows, "num_rows");
        long valueElements = AbiChecks.Elements(numRows, embeddingDim, "values");
        AbiChecks.Pointer(rows, numRows, "rows");
        AbiChecks.Pointer(values, valueElements, "values");
        return valueElements;
    }

    /// <summary>A buffer the step writes must not overlap the gradient it reads; <paramref name="size"/> is the element size in bytes.</summary>
    private static void CheckWritten(void* written, long elements, string name, long* rows, void* values, long numRows, long valueElements, int size)
    {
        AbiChecks.Disjoint(written, elements * size, rows, numRows * sizeof(long), name, "rows");
        AbiChecks.Disjoint(written, elements * size, values, valueElements * size, name, "values");
    }

    private static void CheckHyperParameters(OptimizerChecks.Error? error)
    {
        if (error is { } e)
        {
            throw new EmbException(EmbStatus.InvalidArgument, e.Message);
        }
    }

    /// <summary>Maps a core's bad-row position to a status: out of range, or not strictly ascending.</summary>
    private static int RowResult(nint bad, long* rows, long numEmbeddings)
    {
        if (bad < 0)
        {
            return (int)EmbStatus.Ok;
        }

        long value = rows[bad];
        return (ulong)value >= (ulong)numEmbeddings
            ? LastError.SetIndex(bad, value, numEmbeddings)
            : LastError.Set(EmbStatus.InvalidArgument, OptimizerChecks.NotAscending(bad, value, rows[bad - 1]));
    }
}
