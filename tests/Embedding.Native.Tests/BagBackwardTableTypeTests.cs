using System;
using System.Collections.Generic;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The EmbeddingBag backward of float64 and float16 tables against a scalar reference written from
/// docs/table-types.md ("EmbeddingBag backward"): dense sum/mean in position order with the scale built in
/// double and converted once (float64 fused, float16 two roundings), max <c>rd(acc + g)</c>, sparse values
/// with each factor a rounded product, and the per-sample-weights dot (float16 in a half accumulator).
/// Every width and one or two threads give the same bits.
/// </summary>
public sealed class BagBackwardTableTypeTests
{
    private const int Rows = 9;

    public static IEnumerable<object[]> Cases()
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (int dim in new[] { 1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33, 64, 300 })
            {
                foreach (int threads in new[] { 1, 2 })
                {
                    yield return [width, dim, threads];
                }
            }
        }
    }

    // Bags: [0,3), [3,3) empty, [3,7), [7,9) all padding (row 4), [9,12).
    private static readonly long[] Indices = [1, 2, 1, 0, 4, 1, 8, 4, 4, 2, 2, 7];
    private static readonly long[] Offsets = [0, 3, 3, 7, 9];
    private const long Padding = 4;

    private static double[] Values(int count, int seed)
    {
        var random = new Random(seed);
        var values = new double[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = Math.Round((random.NextDouble() * 4 - 2) * 1000) / 997.0;
        }

        return values;
    }

    private static T[] Of<T>(double[] values)
    {
        var result = new T[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            result[i] = typeof(T) == typeof(Half) ? (T)(object)(Half)(float)values[i] : (T)(object)values[i];
        }

        return result;
    }

    private static double D<T>(T v) => v is Half h ? (double)(float)h : (double)(object)v!;

    private static T Rd<T>(double v) => typeof(T) == typeof(Half) ? (T)(object)(Half)(float)v : (T)(object)v;

    // One rounding of a float32 value to half (the exact float result of half operands).
    private static T RdF<T>(float v) => typeof(T) == typeof(Half) ? (T)(object)(Half)v : throw new InvalidOperationException();

    private static (int Start, int End)[] Bounds()
    {
        var bounds = new (int, int)[Offsets.Length];
        for (int b = 0; b < Offsets.Length; b++)
        {
            bounds[b] = ((int)Offsets[b], b + 1 < Offsets.Length ? (int)Offsets[b + 1] : Indices.Length);
        }

        return bounds;
    }

    private static int Members(int s, int e, long padding)
    {
        int n = 0;
        for (int i = s; i < e; i++)
        {
            n += Indices[i] == padding ? 0 : 1;
        }

        return n;
    }

    private static T[] ReferenceDense<T>(T[] grad, int dim, EmbeddingBagMode mode, T[]? psw, long padding, bool freq, long[]? maxIndices)
    {
        var output = new T[Rows * dim];
        Array.Fill(output, Rd<T>(0.0));
        var bounds = Bounds();
        if (mode == EmbeddingBagMode.Max)
        {
            for (int b = 0; b < bounds.Length; b++)
            {
                if (Members(bounds[b].Start, bounds[b].End, padding) == 0)
                {
                    continue;
                }

                for (int d = 0; d < dim; d++)
                {
                    long row = maxIndices![b * dim + d];
                    output[row * dim + d] = Add(output[row * dim + d], grad[b * dim + d]);
                }
            }

            return output;
        }

        var counts = new int[Rows];
        foreach (long k in Indices)
        {
            counts[k]++;
        }

        for (int b = 0; b < bounds.Length; b++)
        {
            int members = Members(bounds[b].Start, bounds[b].End, padding);
            for (int i = bounds[b].Start; i < bounds[b].End; i++)
            {
                long k = Indices[i];
                if (k == padding)
                {
                    continue;
                }

                double s = psw is null ? 1.0 : D(psw[i]);
                if (freq)
                {
                    s /= counts[k];
                }

                if (mode == EmbeddingBagMode.Mean && members != 0)
                {
                    s /= members;
                }

                T a = typeof(T) == typeof(Half) ? (T)(object)(Half)(float)s : (T)(object)s;
                for (int d = 0; d < dim; d++)
                {
                    ref T acc = ref output[k * dim + d];
                    T g = grad[b * dim + d];
                    acc = typeof(T) == typeof(double)
                        ? (T)(object)TorchProducts.MultiplyAdd(D(g), D(a), D(acc))
                        : Add(acc, RdF<T>((float)D(a) * (float)D(g)));
                }
            }
        }

        return output;
    }

    private static T Add<T>(T a, T b) => typeof(T) == typeof(Half) ? RdF<T>((float)D(a) + (float)D(b)) : (T)(object)(D(a) + D(b));

    private static T Mul<T>(T a, T b) => typeof(T) == typeof(Half) ? RdF<T>((float)D(a) * (float)D(b)) : (T)(object)(D(a) * D(b));

    private static (List<long> Rows, List<T> Values) ReferenceSparse<T>(T[] grad, int dim, EmbeddingBagMode mode, T[]? psw, long padding, bool freq)
    {
        var rows = new List<long>();
        var values = new List<T>();
        var bounds = Bounds();
        var counts = new int[Rows];
        foreach (long k in Indices)
        {
            counts[k]++;
        }

        for (int b = 0; b < bounds.Length; b++)
        {
            int members = Math.Max(Members(bounds[b].Start, bounds[b].End, padding), 1);
            T recip = typeof(T) == typeof(Half) ? RdF<T>(1f / members) : (T)(object)(1.0 / members);
            for (int i = bounds[b].Start; i < bounds[b].End; i++)
            {
                if (Indices[i] == padding)
                {
                    continue;
                }

                rows.Add(Indices[i]);
                for (int d = 0; d < dim; d++)
                {
                    T v = grad[b * dim + d];
                    if (mode == EmbeddingBagMode.Mean)
                    {
                        v = Mul(v, recip);
                    }

                    if (psw is not null)
                    {
                        v = Mul(v, psw[i]);
                    }

                    if (freq)
                    {
                        v = Mul(v, Rd<T>(1.0 / counts[Indices[i]]));
                    }

                    values.Add(v);
                }
            }
        }

        return (rows, values);
    }

    private static T[] ReferencePsw<T>(T[] grad, T[] weight, int dim, long padding)
    {
        var output = new T[Indices.Length];
        Array.Fill(output, Rd<T>(0.0));
        var bounds = Bounds();
        for (int b = 0; b < bounds.Length; b++)
        {
            for (int i = bounds[b].Start; i < bounds[b].End; i++)
            {
                if (Indices[i] == padding)
                {
                    continue;
                }

                T acc = Rd<T>(0.0);
                for (int d = 0; d < dim; d++)
                {
                    acc = Add(acc, Mul(grad[b * dim + d], weight[Indices[i] * dim + d]));
                }

                output[i] = acc;
            }
        }

        return output;
    }

    private static void Same<T>(IReadOnlyList<T> expected, IReadOnlyList<T> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            if (!EqualityComparer<T>.Default.Equals(expected[i], actual[i]) && !(double.IsNaN(D(expected[i])) && double.IsNaN(D(actual[i]))))
            {
                Assert.Fail($"{what}: element {i}: expected {expected[i]}, got {actual[i]}");
            }
        }
    }

    private static void Dense<T>(VectorWidth width, int dim, int threads)
        where T : unmanaged
    {
        T[] grad = Of<T>(Values(Offsets.Length * dim, dim));
        T[] weight = Of<T>(Values(Rows * dim, dim + 1));
        T[] psw = Of<T>(Values(Indices.Length, dim + 2));
        foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, Padding })
        {
            foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
            {
                foreach (bool freq in new[] { false, true })
                {
                    foreach (bool weighted in new[] { false, true })
                    {
                        if ((freq && mode == EmbeddingBagMode.Max) || (weighted && mode != EmbeddingBagMode.Sum))
                        {
                            continue;
                        }

                        long[]? maxIndices = null;
                        if (mode == EmbeddingBagMode.Max)
                        {
                            maxIndices = new long[Offsets.Length * dim];
                            var forward = new T[Offsets.Length * dim];
                            EmbeddingPrimitives.EmbeddingBagAtWidth<T, long, long>(Indices, Offsets, weight, dim, mode, forward, false, default, padding, maxIndices, width, 1);
                        }

                        T[] expected = ReferenceDense(grad, dim, mode, weighted ? psw : null, padding, freq, maxIndices);
                        T[] actual = new T[Rows * dim];
                        Array.Fill(actual, Rd<T>(123.0));
                        EmbeddingPrimitives.EmbeddingBagBackwardAtWidth<T, long, long>(
                            grad, Indices, Offsets, dim, mode, actual, false, weighted ? psw : default, padding, maxIndices, freq ? EmbeddingGradOptions.ScaleGradByFrequency : EmbeddingGradOptions.None, width, threads);
                        Same(expected, actual, $"{typeof(T).Name} dense {mode} padding {padding} freq {freq} weighted {weighted}");
                    }
                }
            }
        }
    }

    private static void Sparse<T>(VectorWidth width, int dim, int threads)
        where T : unmanaged
    {
        T[] grad = Of<T>(Values(Offsets.Length * dim, dim + 3));
        T[] psw = Of<T>(Values(Indices.Length, dim + 4));
        foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, Padding })
        {
            foreach ((EmbeddingBagMode mode, bool weighted) in new[] { (EmbeddingBagMode.Sum, false), (EmbeddingBagMode.Sum, true), (EmbeddingBagMode.Mean, false) })
            {
                foreach (bool freq in new[] { false, true })
                {
                    var (rows, values) = ReferenceSparse(grad, dim, mode, weighted ? psw : null, padding, freq);
                    var actualRows = new long[Indices.Length];
                    var actualValues = new T[Indices.Length * dim];
                    int nnz = EmbeddingPrimitives.EmbeddingBagSparseBackwardAtWidth<T, long, long>(
                        grad, Indices, Offsets, dim, Rows, mode, actualRows, actualValues, false, weighted ? psw : default, padding,
                        freq ? EmbeddingGradOptions.ScaleGradByFrequency : EmbeddingGradOptions.None, width, threads);
                    Assert.Equal(rows.Count, nnz);
                    Assert.Equal(rows, actualRows[..nnz]);
                    Same(values, actualValues[..(nnz * dim)], $"{typeof(T).Name} sparse {mode} padding {padding} weighted {weighted} freq {freq}");
                }
            }
        }
    }

    private static void PerSampleWeights<T>(int dim)
        where T : unmanaged
    {
        T[] grad = Of<T>(Values(Offsets.Length * dim, dim + 5));
        T[] weight = Of<T>(Values(Rows * dim, dim + 6));
        foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, Padding })
        {
            T[] expected = ReferencePsw(grad, weight, dim, padding);
            T[] actual = new T[Indices.Length];
            Array.Fill(actual, Rd<T>(7.0));
            EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackwardOf<T, long, long>(grad, weight, Indices, Offsets, dim, EmbeddingBagMode.Sum, actual, false, padding);
            Same(expected, actual, $"{typeof(T).Name} psw padding {padding}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void DenseFloat64(VectorWidth width, int dim, int threads) => Dense<double>(width, dim, threads);

    [Theory]
    [MemberData(nameof(Cases))]
    public void DenseFloat16(VectorWidth width, int dim, int threads) => Dense<Half>(width, dim, threads);

    [Theory]
    [MemberData(nameof(Cases))]
    public void SparseFloat64(VectorWidth width, int dim, int threads) => Sparse<double>(width, dim, threads);

    [Theory]
    [MemberData(nameof(Cases))]
    public void SparseFloat16(VectorWidth width, int dim, int threads) => Sparse<Half>(width, dim, threads);

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(17)]
    [InlineData(300)]
    public void PerSampleWeightsFloat64(int dim) => PerSampleWeights<double>(dim);

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(17)]
    [InlineData(300)]
    public void PerSampleWeightsFloat16(int dim) => PerSampleWeights<Half>(dim);

    [Fact]
    public void PublicOverloadsMatchTheWidthCore()
    {
        const int dim = 5;
        double[] grad = Values(Offsets.Length * dim, 1);
        var viaPublic = new double[Rows * dim];
        var viaCore = new double[Rows * dim];
        EmbeddingPrimitives.EmbeddingBagBackward<long, long>(grad, Indices, Offsets, dim, EmbeddingBagMode.Mean, viaPublic, paddingIndex: Padding);
        EmbeddingPrimitives.EmbeddingBagBackwardAtWidth<double, long, long>(grad, Indices, Offsets, dim, EmbeddingBagMode.Mean, viaCore, false, default, Padding, default, EmbeddingGradOptions.None, VectorWidth.Scalar);
        Assert.Equal(viaCore, viaPublic);

        Half[] halfGrad = Of<Half>(grad);
        var rows = new long[Indices.Length];
        var values = new Half[Indices.Length * dim];
        int nnz = EmbeddingPrimitives.EmbeddingBagSparseBackward<long, long>(halfGrad, Indices, Offsets, dim, Rows, EmbeddingBagMode.Sum, rows, values, paddingIndex: Padding);
        Assert.Equal(9, nnz);
    }
}
