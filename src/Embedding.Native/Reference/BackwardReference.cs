using System;
using System.Collections.Generic;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for the embedding backward: the pseudocode of
/// <see cref="EmbeddingPrimitives.EmbeddingBackward(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float}, long, EmbeddingGradOptions)"/>
/// and its sparse siblings written as plain loops, with the kernels' arithmetic (a float add, or
/// <c>g·(float)(1.0 / count) + acc</c> rounded as torch's kernels in this process round it, <see cref="TorchProducts"/>),
/// no vectors and no unsafe code.
/// Inputs are assumed valid apart from the indices, which it checks like the kernels do.
/// </summary>
internal static class BackwardReference
{
    /// <summary>Dense gradient. Returns -1, or the position of the first bad index with nothing written.</summary>
    public static int EmbeddingBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, Span<float> gradWeight, long paddingIndex, EmbeddingGradOptions options)
        where TIndex : IBinaryInteger<TIndex>
    {
        long rows = gradWeight.Length / embeddingDim;
        int bad = FirstOutOfRange(indices, rows);
        if (bad >= 0)
        {
            return bad;
        }

        if ((options & EmbeddingGradOptions.Accumulate) == 0)
        {
            gradWeight.Clear();
        }

        int[] counts = Counts(indices, rows);
        for (int i = 0; i < indices.Length; i++)
        {
            int k = int.CreateTruncating(indices[i]);
            if (k == paddingIndex)
            {
                continue;
            }

            float scale = (float)(1.0 / counts[k]);
            for (int column = 0; column < embeddingDim; column++)
            {
                float g = gradOutput[i * embeddingDim + column];
                ref float acc = ref gradWeight[k * embeddingDim + column];
                acc = (options & EmbeddingGradOptions.ScaleGradByFrequency) == 0 ? acc + g : TorchProducts.MultiplyAdd(g, scale, acc);
            }
        }

        return -1;
    }

    /// <summary>Sparse gradient, uncoalesced. Returns -1 (and the entry count), or the first bad position.</summary>
    public static int EmbeddingSparseBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<TIndex> indices, int embeddingDim, long numEmbeddings, Span<long> rows, Span<float> values, long paddingIndex, EmbeddingGradOptions options, out int nnz)
        where TIndex : IBinaryInteger<TIndex>
    {
        nnz = 0;
        int bad = FirstOutOfRange(indices, numEmbeddings);
        if (bad >= 0)
        {
            return bad;
        }

        int[] counts = Counts(indices, numEmbeddings);
        for (int i = 0; i < indices.Length; i++)
        {
            long k = long.CreateTruncating(indices[i]);
            if (k == paddingIndex)
            {
                continue;
            }

            rows[nnz] = k;
            float scale = (float)(1.0 / counts[k]);
            for (int column = 0; column < embeddingDim; column++)
            {
                float g = gradOutput[i * embeddingDim + column];
                values[nnz * embeddingDim + column] = (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0 ? g * scale : g;
            }

            nnz++;
        }

        return -1;
    }

    /// <summary>Coalesce: unique rows ascending, each the sum of its values in entry order from +0.0. Returns the unique count.</summary>
    public static int SparseCoalesce(ReadOnlySpan<long> rows, ReadOnlySpan<float> values, int embeddingDim, Span<long> uniqueRows, Span<float> summedValues)
    {
        var sums = new SortedDictionary<long, float[]>();
        for (int e = 0; e < rows.Length; e++)
        {
            if (!sums.TryGetValue(rows[e], out float[]? sum))
            {
                sum = new float[embeddingDim];
                sums.Add(rows[e], sum);
            }

            for (int column = 0; column < embeddingDim; column++)
            {
                sum[column] = sum[column] + values[e * embeddingDim + column];
            }
        }

        int n = 0;
        foreach ((long row, float[] sum) in sums)
        {
            uniqueRows[n] = row;
            sum.CopyTo(summedValues[(n * embeddingDim)..]);
            n++;
        }

        return n;
    }

    private static int FirstOutOfRange<TIndex>(ReadOnlySpan<TIndex> indices, long rows)
        where TIndex : IBinaryInteger<TIndex>
    {
        for (int i = 0; i < indices.Length; i++)
        {
            long index = long.CreateTruncating(indices[i]);
            if (index < 0 || index >= rows)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Occurrences of each row in the whole call, padding positions included (as torch counts them).</summary>
    private static int[] Counts<TIndex>(ReadOnlySpan<TIndex> indices, long rows)
        where TIndex : IBinaryInteger<TIndex>
    {
        int[] counts = new int[rows];
        foreach (TIndex index in indices)
        {
            counts[int.CreateTruncating(index)]++;
        }

        return counts;
    }
}
