using System;
using System.Collections.Generic;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for <see cref="EmbeddingPrimitives.EmbeddingRenorm(Span{float}, int, ReadOnlySpan{int}, double, double)"/>:
/// the pseudocode of its XML docs as plain loops, with no vectors and no unsafe code.
/// </summary>
internal static class RenormReference
{
    /// <summary>Renormalises in place. Returns -1, or the position of the first bad index with nothing changed.</summary>
    public static int EmbeddingRenorm<TIndex>(Span<float> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex>
    {
        long rows = weight.Length / embeddingDim;
        var distinct = new SortedSet<long>();
        for (int i = 0; i < indices.Length; i++)
        {
            long index = long.CreateTruncating(indices[i]);
            if (index < 0 || index >= rows)
            {
                return i;
            }

            distinct.Add(index);
        }

        foreach (long k in distinct)
        {
            Span<float> row = weight.Slice((int)(k * embeddingDim), embeddingDim);
            double norm = Norm(row, normType);
            if (norm > maxNorm)
            {
                float scale = (float)(maxNorm / (norm + 1e-7));
                for (int c = 0; c < row.Length; c++)
                {
                    row[c] = row[c] * scale;
                }
            }
        }

        return -1;
    }

    /// <summary>The p-norm in double, columns in order.</summary>
    public static double Norm(ReadOnlySpan<float> row, double p)
    {
        if (double.IsPositiveInfinity(p))
        {
            double max = 0;
            foreach (float x in row)
            {
                max = Math.Max(max, Math.Abs((double)x));
            }

            return max;
        }

        if (double.IsNegativeInfinity(p))
        {
            double min = double.PositiveInfinity;
            foreach (float x in row)
            {
                min = Math.Min(min, Math.Abs((double)x));
            }

            return min;
        }

        double sum = 0;
        foreach (float x in row)
        {
            sum += p switch
            {
                0 => x != 0 ? 1 : 0,
                1 => Math.Abs((double)x),
                2 => (double)x * x,
                _ => Math.Pow(Math.Abs((double)x), p),
            };
        }

        return p switch
        {
            0 or 1 => sum,
            2 => Math.Sqrt(sum),
            _ => Math.Pow(sum, 1.0 / p),
        };
    }
}
