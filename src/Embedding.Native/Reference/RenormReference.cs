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

    /// <summary>The p-norm in double: for p = 1 and 2 in eight partial sums (the library's order), otherwise columns in order.</summary>
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
        if (p is 1 or 2)
        {
            // The library's order for p = 1 and 2: column c into partial sum c mod 8, then the eight
            // combined as ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)).
            double[] partial = new double[8];
            for (int c = 0; c < row.Length; c++)
            {
                partial[c % 8] += p == 1 ? Math.Abs((double)row[c]) : (double)row[c] * row[c];
            }

            sum = ((partial[0] + partial[4]) + (partial[2] + partial[6])) + ((partial[1] + partial[5]) + (partial[3] + partial[7]));
        }
        else
        {
            foreach (float x in row)
            {
                sum += p == 0 ? (x != 0 ? 1 : 0) : Math.Pow(Math.Abs((double)x), p);
            }
        }

        return p switch
        {
            0 or 1 => sum,
            2 => Math.Sqrt(sum),
            _ => Math.Pow(sum, 1.0 / p),
        };
    }
}
