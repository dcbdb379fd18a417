using System;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for the EmbeddingBag backward: the pseudocode of
/// <see cref="EmbeddingPrimitives.EmbeddingBagBackward{TIndex, TOffset}(ReadOnlySpan{float}, ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, ReadOnlySpan{long}, EmbeddingGradOptions)"/>
/// and its sparse and per-sample-weights siblings as plain loops over a validated
/// <see cref="Bags{TIndex}"/> (the dense sum/mean in torch's order, <see cref="TorchSortReference"/>), with the kernels' arithmetic (a multiply-add rounded as <see cref="TorchProducts"/>, with a
/// scale built in double, float products, a sequential float dot), no vectors and no unsafe code.
/// </summary>
internal static class BagBackwardReference
{
    /// <summary>Dense gradient of the table; <paramref name="gradWeight"/> is overwritten unless <see cref="EmbeddingGradOptions.Accumulate"/>.</summary>
    public static void EmbeddingBagBackward<TIndex>(ReadOnlySpan<float> gradOutput, Bags<TIndex> bags, int embeddingDim, EmbeddingBagMode mode, ReadOnlySpan<long> maxIndices, EmbeddingGradOptions options, Span<float> gradWeight)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int d = embeddingDim;
        if ((options & EmbeddingGradOptions.Accumulate) == 0)
        {
            gradWeight.Clear();
        }

        int[] counts = Counts(bags.Indices, gradWeight.Length / d);
        if (mode == EmbeddingBagMode.Max)
        {
            for (int b = 0; b < bags.Count; b++)
            {
                if (Members(bags, b) == 0)
                {
                    continue;
                }

                for (int column = 0; column < d; column++)
                {
                    long row = maxIndices[b * d + column];
                    gradWeight[(int)(row * d) + column] += gradOutput[b * d + column];
                }
            }

            return;
        }

        // Sum and mean: every position, padding included, in the order of torch's unstable sort of the indices.
        var values = new long[bags.Indices.Length];
        var bagOf = new int[values.Length];
        Array.Fill(bagOf, -1);
        for (int b = 0; b < bags.Count; b++)
        {
            for (int i = (int)bags.Starts[b]; i < bags.Starts[b + 1]; i++)
            {
                bagOf[i] = b;
            }
        }

        for (int i = 0; i < values.Length; i++)
        {
            values[i] = long.CreateTruncating(bags.Indices[i]);
        }

        foreach (int i in TorchSortReference.Order(values))
        {
            int k = (int)values[i], b = bagOf[i];
            if (k == bags.PaddingIndex || b < 0)
            {
                continue;
            }

            double s = bags.IsWeighted ? bags.PerSampleWeights[i] : 1.0;
            if ((options & EmbeddingGradOptions.ScaleGradByFrequency) != 0)
            {
                s /= counts[k];
            }

            if (mode == EmbeddingBagMode.Mean)
            {
                s /= Members(bags, b);
            }

            for (int column = 0; column < d; column++)
            {
                ref float acc = ref gradWeight[k * d + column];
                acc = TorchProducts.MultiplyAdd(gradOutput[b * d + column], (float)s, acc);
            }
        }
    }

    /// <summary>Sparse gradient (sum and mean), uncoalesced, one entry per non-padding position. Returns the entry count.</summary>
    public static int EmbeddingBagSparseBackward<TIndex>(ReadOnlySpan<float> gradOutput, Bags<TIndex> bags, int embeddingDim, long numEmbeddings, EmbeddingBagMode mode, EmbeddingGradOptions options, Span<long> rows, Span<float> values)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int d = embeddingDim;
        int[] counts = Counts(bags.Indices, numEmbeddings);
        int n = 0;
        for (int b = 0; b < bags.Count; b++)
        {
            float inverse = 1f / (float)Members(bags, b);
            for (int i = (int)bags.Starts[b]; i < bags.Starts[b + 1]; i++)
            {
                int k = int.CreateTruncating(bags.Indices[i]);
                if (k == bags.PaddingIndex)
                {
                    continue;
                }

                rows[n] = k;
                for (int column = 0; column < d; column++)
                {
                    float v = gradOutput[b * d + column];
                    if (mode == EmbeddingBagMode.Mean)
                    {
                        v *= inverse;
                    }

                    if (bags.IsWeighted)
                    {
                        v *= bags.PerSampleWeights[i];
                    }

                    if ((options & EmbeddingGradOptions.ScaleGradByFrequency) != 0)
                    {
                        v *= (float)(1.0 / counts[k]);
                    }

                    values[n * d + column] = v;
                }

                n++;
            }
        }

        return n;
    }

    /// <summary>Gradient with respect to the per-sample weights: a sequential float dot per position, products rounded; 0 at padding.</summary>
    public static void EmbeddingBagPerSampleWeightsBackward<TIndex>(ReadOnlySpan<float> gradOutput, ReadOnlySpan<float> weight, Bags<TIndex> bags, int embeddingDim, Span<float> gradPerSampleWeights)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int d = embeddingDim;
        gradPerSampleWeights.Clear();
        for (int b = 0; b < bags.Count; b++)
        {
            for (int i = (int)bags.Starts[b]; i < bags.Starts[b + 1]; i++)
            {
                int k = int.CreateTruncating(bags.Indices[i]);
                if (k == bags.PaddingIndex)
                {
                    continue;
                }

                float dot = 0f;
                for (int column = 0; column < d; column++)
                {
                    float product = gradOutput[b * d + column] * weight[k * d + column];
                    dot += product;
                }

                gradPerSampleWeights[i] = dot;
            }
        }
    }

    private static int Members<TIndex>(Bags<TIndex> bags, int b)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int members = 0;
        for (int i = (int)bags.Starts[b]; i < bags.Starts[b + 1]; i++)
        {
            members += long.CreateTruncating(bags.Indices[i]) == bags.PaddingIndex ? 0 : 1;
        }

        return members;
    }

    private static int[] Counts<TIndex>(ReadOnlySpan<TIndex> indices, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int[] counts = new int[rows];
        foreach (TIndex index in indices)
        {
            counts[int.CreateTruncating(index)]++;
        }

        return counts;
    }
}
