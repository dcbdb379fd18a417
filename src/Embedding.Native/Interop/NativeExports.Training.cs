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
        double maxNorm, double normType)
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
                EmbeddingType.Float64 => Renorm<double>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType),
                EmbeddingType.Float16 => Renorm<Half>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType),
                EmbeddingType.BFloat16 => Renorm<BFloat16>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType),
                _ => Renorm<float>(weight, numEmbeddings, dimension, indices, indexSize, numIndices, maxNorm, normType),
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
    private static nint Renorm<TElement>(void* weight, long rows, int dimension, void* indices, int indexSize, long count, double maxNorm, double normType)
        where TElement : unmanaged
    {
        ref TElement table = ref Unsafe.AsRef<TElement>(weight);
        return indexSize == sizeof(int)
            ? EmbeddingPrimitives.Renorm(ref table, rows, dimension, in Unsafe.AsRef<int>(indices), (nint)count, maxNorm, normType, KernelDispatch.BestWidth)
            : EmbeddingPrimitives.Renorm(ref table, rows, dimension, in Unsafe.AsRef<long>(indices), (nint)count, maxNorm, normType, KernelDispatch.BestWidth);
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_sgd_step")]
    public static int SgdStep(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim,
        long* rows, void* values, long numRows,
        double lr, double weightDecay)
    {
        try
        {
            long weightElements = CheckTable(weightDtype, numEmbeddings, embeddingDim);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            AbiChecks.Pointer(weight, weightElements, "weight");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements);
            CheckHyperParameters(OptimizerChecks.Sgd(lr, weightDecay));

            nint bad = EmbeddingPrimitives.SgdCore(
                ref Unsafe.AsRef<float>(weight), numEmbeddings, (int)embeddingDim,
                in Unsafe.AsRef<long>(rows), (nint)numRows, in Unsafe.AsRef<float>(values), lr, weightDecay, KernelDispatch.BestWidth);
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
            long weightElements = CheckTable(weightDtype, numEmbeddings, embeddingDim);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(stateSum, weightElements, "state_sum");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements);
            CheckWritten(stateSum, weightElements, "state_sum", rows, values, numRows, valueElements);
            AbiChecks.Disjoint(weight, weightElements * sizeof(float), stateSum, weightElements * sizeof(float), "weight", "state_sum");
            CheckHyperParameters(OptimizerChecks.Adagrad(lr, lrDecay, eps, step));

            nint bad = EmbeddingPrimitives.AdagradCore(
                ref Unsafe.AsRef<float>(weight), ref Unsafe.AsRef<float>(stateSum), numEmbeddings, (int)embeddingDim,
                in Unsafe.AsRef<long>(rows), (nint)numRows, in Unsafe.AsRef<float>(values), lr, lrDecay, eps, step, KernelDispatch.BestWidth);
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
            long weightElements = CheckTable(weightDtype, numEmbeddings, embeddingDim);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(momentum, numEmbeddings, "momentum");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements);
            CheckWritten(momentum, numEmbeddings, "momentum", rows, values, numRows, valueElements);
            AbiChecks.Disjoint(weight, weightElements * sizeof(float), momentum, numEmbeddings * sizeof(float), "weight", "momentum");
            CheckHyperParameters(OptimizerChecks.RowwiseAdagrad(lr, eps));

            nint bad = EmbeddingPrimitives.RowwiseAdagradCore(
                ref Unsafe.AsRef<float>(weight), ref Unsafe.AsRef<float>(momentum), numEmbeddings, (int)embeddingDim,
                in Unsafe.AsRef<long>(rows), (nint)numRows, in Unsafe.AsRef<float>(values), lr, eps, KernelDispatch.BestWidth);
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
            long weightElements = CheckTable(weightDtype, numEmbeddings, embeddingDim);
            long valueElements = CheckGradient(rows, values, numRows, embeddingDim);
            long bytes = weightElements * sizeof(float);
            AbiChecks.Pointer(weight, weightElements, "weight");
            AbiChecks.Pointer(expAvg, weightElements, "exp_avg");
            AbiChecks.Pointer(expAvgSq, weightElements, "exp_avg_sq");
            CheckWritten(weight, weightElements, "weight", rows, values, numRows, valueElements);
            CheckWritten(expAvg, weightElements, "exp_avg", rows, values, numRows, valueElements);
            CheckWritten(expAvgSq, weightElements, "exp_avg_sq", rows, values, numRows, valueElements);
            AbiChecks.Disjoint(weight, bytes, expAvg, bytes, "weight", "exp_avg");
            AbiChecks.Disjoint(weight, bytes, expAvgSq, bytes, "weight", "exp_avg_sq");
            AbiChecks.Disjoint(expAvg, bytes, expAvgSq, bytes, "exp_avg", "exp_avg_sq");
            CheckHyperParameters(OptimizerChecks.SparseAdam(lr, beta1, beta2, eps, step));

            nint bad = EmbeddingPrimitives.SparseAdamCore(
                ref Unsafe.AsRef<float>(weight), ref Unsafe.AsRef<float>(expAvg), ref Unsafe.AsRef<float>(expAvgSq), numEmbeddings, (int)embeddingDim,
                in Unsafe.AsRef<long>(rows), (nint)numRows, in Unsafe.AsRef<float>(values), lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);
            return RowResult(bad, rows, numEmbeddings);
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    /// <summary>Checks a float32 table's dtype and sizes; returns its element count.</summary>
    private static long CheckTable(int weightDtype, long numEmbeddings, long embeddingDim)
    {
        if ((EmbDtype)weightDtype != EmbDtype.Float32)
        {
            throw new EmbException(EmbStatus.UnsupportedDtype, $"weight must be EMB_DTYPE_FLOAT32 (1), not dtype {weightDtype}");
        }

        AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
        AbiChecks.NonNegative(embeddingDim, "embedding_dim");
        if (embeddingDim > int.MaxValue)
        {
            throw new EmbException(EmbStatus.SizeOverflow, $"embedding_dim {embeddingDim} exceeds the largest supported row of {int.MaxValue} elements");
        }

        return AbiChecks.Elements(numEmbeddings, embeddingDim, "weight");
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

    /// <summary>A buffer the step writes must not overlap the gradient it reads.</summary>
    private static void CheckWritten(void* written, long elements, string name, long* rows, void* values, long numRows, long valueElements)
    {
        AbiChecks.Disjoint(written, elements * sizeof(float), rows, numRows * sizeof(long), name, "rows");
        AbiChecks.Disjoint(written, elements * sizeof(float), values, valueElements * sizeof(float), name, "values");
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
