using System;
using System.Collections.Generic;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for the float64, float16 and bfloat16 overloads of
/// <see cref="EmbeddingPrimitives.EmbeddingRenorm(Span{double}, int, ReadOnlySpan{int}, double, double)"/>:
/// torch 1.13's norm and rescale for each type (docs/table-types.md, "Renorm") as plain loops, with no
/// vectors and no unsafe code.
/// </summary>
internal static class RenormTableTypesReference
{
    /// <summary>Renormalises in place. Returns -1, or the position of the first bad index with nothing changed.</summary>
    public static int EmbeddingRenorm<TIndex>(Span<double> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex>
    {
        int bad = DistinctRows(weight.Length / embeddingDim, indices, out SortedSet<long> distinct);
        foreach (long k in bad < 0 ? distinct : [])
        {
            Span<double> row = weight.Slice((int)(k * embeddingDim), embeddingDim);
            double norm = Norm(row, normType);
            if (norm > maxNorm)
            {
                double scale = maxNorm / (norm + 1e-7);
                for (int c = 0; c < row.Length; c++)
                {
                    row[c] *= scale;
                }
            }
        }

        return bad;
    }

    /// <inheritdoc cref="EmbeddingRenorm{TIndex}(Span{double}, int, ReadOnlySpan{TIndex}, double, double)"/>
    public static int EmbeddingRenorm<TIndex>(Span<Half> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex>
    {
        int bad = DistinctRows(weight.Length / embeddingDim, indices, out SortedSet<long> distinct);
        foreach (long k in bad < 0 ? distinct : [])
        {
            Span<Half> row = weight.Slice((int)(k * embeddingDim), embeddingDim);
            double norm = Norm(row, normType);
            if (norm > maxNorm)
            {
                // double -> float -> half, as torch's Scalar conversion; the float product is exact.
                float scale = (float)(Half)(float)(maxNorm / (norm + 1e-7));
                for (int c = 0; c < row.Length; c++)
                {
                    row[c] = (Half)((float)row[c] * scale);
                }
            }
        }

        return bad;
    }

    /// <inheritdoc cref="EmbeddingRenorm{TIndex}(Span{double}, int, ReadOnlySpan{TIndex}, double, double)"/>
    public static int EmbeddingRenorm<TIndex>(Span<BFloat16> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex>
    {
        int bad = DistinctRows(weight.Length / embeddingDim, indices, out SortedSet<long> distinct);
        foreach (long k in bad < 0 ? distinct : [])
        {
            Span<BFloat16> row = weight.Slice((int)(k * embeddingDim), embeddingDim);
            double norm = Norm(row, normType);
            if (norm > maxNorm)
            {
                float scale = (float)(BFloat16)(float)(maxNorm / (norm + 1e-7));
                for (int c = 0; c < row.Length; c++)
                {
                    row[c] = (BFloat16)((float)row[c] * scale);
                }
            }
        }

        return bad;
    }

    /// <summary>float64 <c>row.norm(p)</c>: one double accumulator, columns in order; p = 2 through fma.</summary>
    public static double Norm(ReadOnlySpan<double> row, double p)
    {
        if (double.IsInfinity(p))
        {
            return Extreme(row, x => Math.Abs(x), p);
        }

        double acc = 0;
        foreach (double x in row)
        {
            acc = p switch
            {
                0 => acc + (x != 0 ? 1 : 0),
                1 => acc + Math.Abs(x),
                2 => Math.FusedMultiplyAdd(x, x, acc),
                _ => acc + Math.Pow(Math.Abs(x), p),
            };
        }

        return p switch
        {
            0 or 1 => acc,
            2 => Math.Sqrt(acc),
            _ => Math.Pow(acc, 1.0 / p),
        };
    }

    /// <summary>float16 <c>row.norm(p)</c>: a half accumulator, each step in float and rounded to half.</summary>
    public static double Norm(ReadOnlySpan<Half> row, double p)
    {
        if (double.IsInfinity(p))
        {
            return Extreme(row, x => Math.Abs((double)x), p);
        }

        static float Rd(float x) => (float)(Half)x;
        float q = Rd((float)p);
        float acc = 0;
        foreach (Half h in row)
        {
            float x = Math.Abs((float)h);
            acc = p switch
            {
                0 => Rd(acc + (x != 0 ? 1 : 0)),
                1 => Rd(acc + x),
                2 => Rd(acc + Rd(x * x)),
                _ => Rd(acc + MathF.Pow(x, q)),
            };
        }

        return p switch
        {
            0 or 1 => acc,
            2 => Rd(MathF.Sqrt(acc)),
            _ => Rd(MathF.Pow(acc, Rd(1 / q))),
        };
    }

    /// <summary>
    /// bfloat16 <c>row.norm(p)</c>: a bfloat16 accumulator, each step in float and rounded (the powf
    /// term rounded too); p = 2 is torch's float kernel: eight fma lanes over whole blocks of 16
    /// columns, the lanes added left to right, the rest fma'd on in order.
    /// </summary>
    public static double Norm(ReadOnlySpan<BFloat16> row, double p)
    {
        if (double.IsInfinity(p))
        {
            return Extreme(row, x => Math.Abs((double)(float)x), p);
        }

        static float Rd(float x) => (float)(BFloat16)x;
        if (p == 2)
        {
            float[] lanes = new float[8];
            int whole = row.Length / 16 * 16;
            for (int c = 0; c < whole; c++)
            {
                float x = (float)row[c];
                lanes[c % 8] = MathF.FusedMultiplyAdd(x, x, lanes[c % 8]);
            }

            float sum = lanes[0];
            for (int j = 1; j < 8; j++)
            {
                sum += lanes[j];
            }

            for (int c = whole; c < row.Length; c++)
            {
                float x = (float)row[c];
                sum = MathF.FusedMultiplyAdd(x, x, sum);
            }

            return Rd(MathF.Sqrt(sum));
        }

        float q = Rd((float)p);
        float acc = 0;
        foreach (BFloat16 b in row)
        {
            float x = Math.Abs((float)b);
            acc = p switch
            {
                0 => Rd(acc + (x != 0 ? 1 : 0)),
                1 => Rd(acc + x),
                _ => Rd(acc + Rd(MathF.Pow(x, q))),
            };
        }

        return p is 0 or 1 ? acc : Rd(MathF.Pow(acc, Rd(1 / q)));
    }

    /// <summary>p = +inf: the largest |x|; p = -inf: the smallest (NaN wins either way).</summary>
    private static double Extreme<T>(ReadOnlySpan<T> row, Func<T, double> magnitude, double p)
    {
        double result = p > 0 ? 0 : double.PositiveInfinity;
        foreach (T x in row)
        {
            result = p > 0 ? Math.Max(result, magnitude(x)) : Math.Min(result, magnitude(x));
        }

        return result;
    }

    private static int DistinctRows<TIndex>(long rows, ReadOnlySpan<TIndex> indices, out SortedSet<long> distinct)
        where TIndex : IBinaryInteger<TIndex>
    {
        distinct = [];
        for (int i = 0; i < indices.Length; i++)
        {
            long index = long.CreateTruncating(indices[i]);
            if (index < 0 || index >= rows)
            {
                return i;
            }

            distinct.Add(index);
        }

        return -1;
    }
}
