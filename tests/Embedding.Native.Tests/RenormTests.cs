using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Renormalisation (max_norm) against the scalar reference, bit for bit, at every width, and on
/// torch 1.13's own worked examples from the spec (§1.6).
/// </summary>
public abstract class RenormTests<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    /// <summary>Every norm_type the spec lists, and one more fractional and negative p.</summary>
    public static readonly double[] NormTypes = [2, 1, 3, 0.5, double.PositiveInfinity, double.NegativeInfinity, 0, -1, -2.5, 1.5];

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Renorm_MatchesReferenceForEveryDimension(VectorWidth width)
    {
        foreach (int dim in TestData.Dims)
        {
            const int rows = 37;
            int count = 3 + dim % 29;
            float[] original = SignedTable(rows, dim, seed: dim);
            TIndex[] indices = TestData.Indices<TIndex>(count, rows, seed: dim + 1);
            TIndex[] indicesBefore = indices.ToArray();
            foreach (double p in NormTypes)
            {
                // A max_norm between the row norms, so some referenced rows are rescaled and some are not.
                double maxNorm = RenormReference.Norm(original.AsSpan(dim * (rows / 2), dim), p);
                float[] expected = original.ToArray();
                Assert.Equal(-1, RenormReference.EmbeddingRenorm<TIndex>(expected, dim, indices, maxNorm, p));

                float[] actual = original.ToArray();
                EmbeddingPrimitives.EmbeddingRenorm<TIndex>(actual, dim, indices, maxNorm, p, width);

                TestAssert.BitEqual(expected, actual, $"dim {dim}, p {p}, width {width}");
                Assert.Equal(indicesBefore, indices);
            }
        }
    }

    [Fact]
    public void RowNorm_MatchesReferenceForEveryDimension()
    {
        const int rows = 9;
        foreach (int dim in TestData.Dims)
        {
            float[] table = SignedTable(rows, dim, seed: dim + 100);
            for (int c = 0; c < dim; c++)
            {
                // Magnitudes 2^-40 … 2^40: the double sums are inexact, so their order shows.
                table[dim * 6 + c] = MathF.ScaleB(table[dim * 6 + c], (c * 7 % 5 - 2) * 20);
            }

            table[dim * 7 + dim / 2] = float.NaN;
            table[dim * 8 + dim / 3] = float.PositiveInfinity;
            foreach (double p in NormTypes)
            {
                for (int r = 0; r < rows; r++)
                {
                    double actual = RowNorms<float, float, Float32Renorm>.Of(ref table[r * dim], dim, p);
                    AssertSameNorm(RenormReference.Norm(table.AsSpan(r * dim, dim), p), actual, $"dim {dim}, p {p}, row {r}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Renorm_LeavesRowsNotReferencedUnchanged(VectorWidth width)
    {
        const int rows = 20, dim = 37;
        float[] original = SignedTable(rows, dim, seed: 5);
        float[] weight = original.ToArray();
        TIndex[] indices = [Index(7), Index(3), Index(7), Index(19)];
        EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, dim, indices, 1.0, 2.0, width);
        for (int r = 0; r < rows; r++)
        {
            bool referenced = r is 3 or 7 or 19;
            Assert.Equal(referenced, !weight.AsSpan(r * dim, dim).SequenceEqual(original.AsSpan(r * dim, dim)));
        }
    }

    public static TheoryData<double, float, float> SpecNormTable => new()
    {
        { 1, 0.4285714030265808f, -0.5714285373687744f },
        { 2, 0.6000000238418579f, -0.800000011920929f },
        { 3, 0.6669718027114868f, -0.8892956972122192f },
        { 0.5, 0.21539029479026794f, -0.2871870696544647f },
        { double.PositiveInfinity, 0.75f, -1.0f },
        { double.NegativeInfinity, 0.9999999403953552f, -1.3333332538604736f },
        { 0, 1.4999998807907104f, -1.9999998807907104f },
        { -1, 1.75f, -2.3333332538604736f },
    };

    [Theory]
    [MemberData(nameof(SpecNormTable))]
    public void Renorm_GivesTorchsResultForEveryNormTypeInTheSpec(double p, float first, float second)
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            float[] weight = [3, -4, 1, 2];
            EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 2, [Index(0), Index(1)], 1.0, p, width);
            TestAssert.BitEqual([first, second], weight.AsSpan(0, 2), $"p {p}, width {width}");

            // The second row [1, 2]: p=-1 (norm 0.667) and p=-inf (norm 1, not > 1) leave it alone; p=inf (norm 2) rescales it.
            float[] expectedSecond = p switch
            {
                double.PositiveInfinity => [0.4999999701976776f, 0.9999999403953552f],
                -1 or double.NegativeInfinity => [1, 2],
                _ => weight[2..],
            };
            TestAssert.BitEqual(expectedSecond, weight.AsSpan(2, 2), $"second row, p {p}, width {width}");
        }
    }

    [Theory]
    [InlineData(5.0, 3.0f, 4.0f)]
    [InlineData(0.0, 0.0f, 0.0f)]
    [InlineData(-1.0, -0.6000000238418579f, -0.800000011920929f)]
    public void Renorm_FollowsTorchForBoundaryAndDegenerateMaxNorm(double maxNorm, float first, float second)
    {
        float[] weight = [3, 4];
        EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 2, [Index(0)], maxNorm, 2.0, KernelDispatch.BestWidth);
        TestAssert.BitEqual([first, second], weight, $"max_norm {maxNorm}");
    }

    [Fact]
    public void Renorm_RescalesDuplicateRowsOnce()
    {
        float[] weight = [3, 4, 0, 0, 6, 8];
        EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 2, [Index(0), Index(0), Index(2)], 1.0, 2.0, KernelDispatch.BestWidth);
        TestAssert.BitEqual([0.6000000238418579f, 0.800000011920929f, 0, 0, 0.6000000238418579f, 0.800000011920929f], weight, "duplicates");
    }

    [Fact]
    public void Renorm_LeavesNaNRowsAndEmptyIndicesAlone()
    {
        float[] weight = [float.NaN, 4, 30, 40];
        EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 2, [Index(0)], 1.0, 2.0, KernelDispatch.BestWidth);
        EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 2, [], 1.0, 2.0, KernelDispatch.BestWidth);
        Assert.True(float.IsNaN(weight[0]));
        Assert.Equal([4f, 30f, 40f], weight[1..]);
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Renorm_ThrowsForOutOfRangeIndexAndChangesNothing(VectorWidth width)
    {
        const int rows = 10, dim = 19;
        float[] original = SignedTable(rows, dim, seed: 3);
        foreach (int badPosition in new[] { 0, 1, 8, 40 })
        {
            foreach (long badValue in new long[] { rows, -1, rows + 1000 })
            {
                TIndex[] indices = TestData.Indices<TIndex>(41, rows, seed: badPosition);
                indices[badPosition] = TIndex.CreateTruncating(badValue);
                float[] weight = original.ToArray();
                var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, dim, indices, 0.5, 2.0, width));
                Assert.Equal("indices", error.ParamName);
                Assert.Contains($"index {badValue} at position {badPosition}", error.Message);
                Assert.Equal(original, weight);
            }
        }
    }

    [Fact]
    public void Renorm_ThrowsForBadShapesAndOverlap()
    {
        float[] weight = [3, 4, 6, 8];
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 0, [Index(0)], 1, 2, VectorWidth.Scalar));
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingRenorm<TIndex>(weight, 3, [Index(0)], 1, 2, VectorWidth.Scalar)).ParamName);

        float[] buffer = new float[8];
        var overlap = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingRenorm<TIndex>(
            buffer, 2, System.Runtime.InteropServices.MemoryMarshal.Cast<float, TIndex>(buffer.AsSpan(0, 2)), 1, 2, VectorWidth.Scalar));
        Assert.Equal("indices", overlap.ParamName);
    }

    [Fact]
    public void Renorm_AllocatesNothingAfterWarmUp()
    {
        const int rows = 64, dim = 37;
        float[] weight = SignedTable(rows, dim, seed: 9);
        TIndex[] indices = TestData.Indices<TIndex>(200, rows, seed: 4);
        for (int i = 0; i < 10; i++)
        {
            EmbeddingPrimitives.EmbeddingRenorm(weight, dim, indices, 1.0, 2.0, KernelDispatch.BestWidth);
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                EmbeddingPrimitives.EmbeddingRenorm(weight, dim, indices, 1.0 + i, i % 2 == 0 ? 2.0 : double.PositiveInfinity, KernelDispatch.BestWidth);
            }
        }));
    }

    /// <summary>The same bits, or both NaN (a NaN norm rescales nothing, whatever its payload).</summary>
    private static void AssertSameNorm(double expected, double actual, string context) =>
        Assert.True(
            double.IsNaN(expected) ? double.IsNaN(actual) : BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual),
            $"{context}: norm {actual:R}, expected {expected:R}");

    private static TIndex Index(int value) => TIndex.CreateTruncating(value);

    /// <summary>Values of both signs and several magnitudes, with a few zeros (they matter for p = 0 and negative p).</summary>
    internal static float[] SignedTable(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var table = new float[rows * dim];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = random.Next(40) == 0 ? 0 : (float)((random.NextDouble() * 2 - 1) * (1 + i % 7));
        }

        return table;
    }
}

public sealed class RenormTestsInt32 : RenormTests<int>
{
}

public sealed class RenormTestsInt64 : RenormTests<long>
{
}
