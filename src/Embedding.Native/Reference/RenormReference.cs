using System;
using System.Collections.Generic;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for every overload of
/// <see cref="EmbeddingPrimitives.EmbeddingRenorm(Span{float}, int, ReadOnlySpan{int}, double, double)"/>:
/// the pseudocode of their XML docs (torch 1.13's arithmetic for every table type, docs/table-types.md
/// "Renorm") as plain loops, with no vectors and no unsafe code.
/// </summary>
internal static class RenormReference
{
    /// <summary>Renormalises in place. Returns -1, or the position of the first bad index with nothing changed.</summary>
    public static int EmbeddingRenorm<TIndex>(Span<float> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex> =>
        Renorm(weight, embeddingDim, indices, maxNorm, normType, Norm, static (row, quotient) =>
        {
            float scale = (float)quotient;
            for (int c = 0; c < row.Length; c++)
            {
                row[c] *= scale;
            }
        });

    /// <inheritdoc cref="EmbeddingRenorm{TIndex}(Span{float}, int, ReadOnlySpan{TIndex}, double, double)"/>
    public static int EmbeddingRenorm<TIndex>(Span<double> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex> =>
        Renorm(weight, embeddingDim, indices, maxNorm, normType, Norm, static (row, quotient) =>
        {
            for (int c = 0; c < row.Length; c++)
            {
                row[c] *= quotient;
            }
        });

    /// <inheritdoc cref="EmbeddingRenorm{TIndex}(Span{float}, int, ReadOnlySpan{TIndex}, double, double)"/>
    public static int EmbeddingRenorm<TIndex>(Span<Half> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex> =>
        Renorm(weight, embeddingDim, indices, maxNorm, normType, Norm, static (row, quotient) =>
        {
            // double -> float -> half, as torch's Scalar conversion; the float product is exact.
            float scale = (float)(Half)(float)quotient;
            for (int c = 0; c < row.Length; c++)
            {
                row[c] = (Half)((float)row[c] * scale);
            }
        });

    /// <inheritdoc cref="EmbeddingRenorm{TIndex}(Span{float}, int, ReadOnlySpan{TIndex}, double, double)"/>
    public static int EmbeddingRenorm<TIndex>(Span<BFloat16> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType)
        where TIndex : IBinaryInteger<TIndex> =>
        Renorm(weight, embeddingDim, indices, maxNorm, normType, Norm, static (row, quotient) =>
        {
            float scale = (float)(BFloat16)(float)quotient;
            for (int c = 0; c < row.Length; c++)
            {
                row[c] = (BFloat16)((float)row[c] * scale);
            }
        });

    /// <summary>float32 <c>row.norm(p)</c> with the kernels torch runs in this process (<see cref="TorchCpuCapabilities.Current"/>).</summary>
    public static double Norm(ReadOnlySpan<float> row, double p) => Norm(row, p, TorchCpuCapabilities.Current);

    /// <summary>
    /// float32 <c>row.norm(p)</c> with <paramref name="capability"/>'s kernels: p as a float; one float
    /// accumulator, columns in order, for p = 0, 1 and the general p (powf terms, then powf(sum, 1/p)
    /// with 1/p in float); p = 2: L float lanes (8, or 16 for AVX-512) over the whole blocks of L
    /// columns, the lanes added left to right, the rest added on in order, then a float square root.
    /// With FMA every product of p = 2 is fused except, when L/2 or more columns are left after the
    /// blocks, the first L/2 of them (rounded, then added); without FMA none is.
    /// </summary>
    public static double Norm(ReadOnlySpan<float> row, double p, TorchCpuCapability capability)
    {
        p = (float)p; // torch 1.13 hands its norm a float, and that value picks the norm
        if (double.IsInfinity(p))
        {
            return Extreme(row, x => Math.Abs((double)x), p);
        }

        if (p == 2)
        {
            bool fused = TorchCpuCapabilities.Fuses(capability);
            int laneCount = capability == TorchCpuCapability.Avx512 ? 16 : 8;
            float[] lanes = new float[laneCount];
            int whole = row.Length / laneCount * laneCount;
            for (int c = 0; c < whole; c++)
            {
                float x = row[c];
                lanes[c % laneCount] = fused ? MathF.FusedMultiplyAdd(x, x, lanes[c % laneCount]) : lanes[c % laneCount] + x * x;
            }

            float sum = lanes[0];
            for (int j = 1; j < laneCount; j++)
            {
                sum += lanes[j];
            }

            int rounded = !fused ? row.Length - whole : row.Length - whole >= laneCount / 2 ? laneCount / 2 : 0;
            for (int c = whole; c < row.Length; c++)
            {
                float x = row[c];
                if (c - whole < rounded)
                {
                    float square = x * x;
                    sum += square;
                }
                else
                {
                    sum = MathF.FusedMultiplyAdd(x, x, sum);
                }
            }

            return MathF.Sqrt(sum);
        }

        float q = (float)p;
        float acc = 0;
        foreach (float x in row)
        {
            acc = p switch
            {
                0 => acc + (x != 0 ? 1 : 0),
                1 => acc + Math.Abs(x),
                _ => acc + MathF.Pow(Math.Abs(x), q),
            };
        }

        return p is 0 or 1 ? acc : MathF.Pow(acc, 1 / q);
    }

    /// <summary>float64 <c>row.norm(p)</c>: p as a float; one double accumulator, columns in order; p = 2 through fma (rounded products with torch's default kernels).</summary>
    public static double Norm(ReadOnlySpan<double> row, double p)
    {
        p = (float)p; // torch 1.13 hands its norm a float, and that value picks the norm
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
                2 => TorchCpuCapabilities.Fuses(TorchCpuCapabilities.Current) ? Math.FusedMultiplyAdd(x, x, acc) : acc + x * x,
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

    /// <summary>float16 <c>row.norm(p)</c>: p as a float; a half accumulator, each step in float and rounded to half.</summary>
    public static double Norm(ReadOnlySpan<Half> row, double p)
    {
        p = (float)p; // torch 1.13 hands its norm a float, and that value picks the norm
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
    /// bfloat16 <c>row.norm(p)</c>: p as a float; a bfloat16 accumulator, each step in float and rounded (the powf
    /// term rounded too); p = 2 is torch's float kernel: eight fma lanes over whole blocks of 16
    /// columns, the lanes added left to right, the rest fma'd on in order.
    /// </summary>
    public static double Norm(ReadOnlySpan<BFloat16> row, double p)
    {
        p = (float)p; // torch 1.13 hands its norm a float, and that value picks the norm
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

    /// <summary>A row's norm as one table type computes it.</summary>
    private delegate double RowNorm<T>(ReadOnlySpan<T> row, double p);

    /// <summary>A row's rescale, <c>row = rd(row · rd(quotient))</c>, as one table type rounds it.</summary>
    private delegate void RowRescale<T>(Span<T> row, double quotient);

    /// <summary>
    /// Every index checked first; then each distinct row, ascending: <c>n = norm(row, p)</c>, and if
    /// <c>n &gt; maxNorm</c>, <c>rescale(row, maxNorm / (n + 1e-7))</c>.
    /// </summary>
    private static int Renorm<T, TIndex>(Span<T> weight, int embeddingDim, ReadOnlySpan<TIndex> indices, double maxNorm, double normType, RowNorm<T> norm, RowRescale<T> rescale)
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
            Span<T> row = weight.Slice((int)(k * embeddingDim), embeddingDim);
            double n = norm(row, normType);
            if (n > maxNorm)
            {
                rescale(row, maxNorm / (n + 1e-7));
            }
        }

        return -1;
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
}
