using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The bag forward against <see cref="BagReference"/>, bit for bit (outputs and max indices), at every
/// width the process accelerates, for every mode, weighted or not, with and without padding.
/// </summary>
public abstract class BagKernelTests<TIndex, TOffset>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TOffset : unmanaged, IBinaryInteger<TOffset>
{
    private const int Rows = 9;

    /// <summary>Every dimension up to 70 (all tails of every width, one and two blocks), then a sample up to the large ones.</summary>
    private static readonly int[] Dims = TestData.Dims.Where((dim, i) => dim <= 70 || i % 5 == 0 || TestData.SpecialisedDims.Contains(dim) || dim > 1000).ToArray();

    public static TheoryData<VectorWidth, EmbeddingBagMode, bool, long> Variants()
    {
        var data = new TheoryData<VectorWidth, EmbeddingBagMode, bool, long>();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
            {
                foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 3L })
                {
                    data.Add(width, mode, false, padding);
                    if (mode == EmbeddingBagMode.Sum)
                    {
                        data.Add(width, mode, true, padding);
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void EmbeddingBag_MatchesReferenceForEveryDimension(VectorWidth width, EmbeddingBagMode mode, bool weighted, long paddingIndex)
    {
        foreach (int dim in Dims)
        {
            foreach (bool includeLastOffset in new[] { false, true })
            {
                int seed = dim * 2 + (includeLastOffset ? 1 : 0);
                (TIndex[] indices, TOffset[] offsets, long[] starts) = Layout(seed, includeLastOffset);
                float[] weight = mode == EmbeddingBagMode.Max ? SpecialTable(Rows, dim, seed) : TestData.Table(Rows, dim, seed);
                float[] psw = weighted ? Weights(indices.Length, seed) : [];
                int bags = starts.Length - 1;

                float[] expected = new float[bags * dim];
                long[] expectedMax = new long[bags * dim];
                BagReference.EmbeddingBag(indices.Select(long.CreateTruncating).ToArray(), starts, weight, dim, mode, expected, psw, paddingIndex, expectedMax);

                float[] actual = TestData.Guarded(bags * dim);
                long[] actualMax = new long[bags * dim + 3];
                actualMax.AsSpan().Fill(long.MinValue);
                EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight, dim, mode, actual, includeLastOffset, psw, paddingIndex, actualMax, width);

                string context = $"dim {dim}, width {width}, {mode}, weighted {weighted}, padding {paddingIndex}, ilo {includeLastOffset}";
                TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), context);
                Assert.All(actual.AsSpan(expected.Length).ToArray(), value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
                if (mode == EmbeddingBagMode.Max)
                {
                    Assert.True(expectedMax.AsSpan().SequenceEqual(actualMax.AsSpan(0, expectedMax.Length)), context + ": max indices");
                    Assert.All(actualMax.AsSpan(expectedMax.Length).ToArray(), value => Assert.Equal(long.MinValue, value));

                    // Without maxIndices the kernels take their values-only loop: the same bits.
                    float[] valuesOnly = TestData.Guarded(bags * dim);
                    EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight, dim, mode, valuesOnly, includeLastOffset, psw, paddingIndex, default, width);
                    TestAssert.BitEqual(expected, valuesOnly.AsSpan(0, expected.Length), context + ", values only");
                    Assert.All(valuesOnly.AsSpan(expected.Length).ToArray(), value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
                }
                else
                {
                    Assert.All(actualMax, value => Assert.Equal(long.MinValue, value));
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void EmbeddingBag_FixedSizeBagsMatchOffsets(VectorWidth width)
    {
        foreach (int dim in new[] { 1, 5, 8, 17, 64, 300 })
        {
            foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
            {
                TIndex[] indices = TestData.Indices<TIndex>(12, Rows, seed: dim);
                float[] weight = SpecialTable(Rows, dim, dim);
                var offsets = new TOffset[] { Offset(0), Offset(3), Offset(6), Offset(9) };
                float[] expected = new float[4 * dim], actual = new float[4 * dim];
                long[] expectedMax = new long[4 * dim], actualMax = new long[4 * dim];
                EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight, dim, mode, expected, false, default, 2, expectedMax, width);
                EmbeddingPrimitives.EmbeddingBag<TIndex>(indices, 3, weight, dim, mode, actual, default, 2, actualMax, width);
                TestAssert.BitEqual(expected, actual, $"dim {dim}, {mode}");
                Assert.Equal(expectedMax, actualMax);
            }
        }
    }

    // W = arange(1,11).view(5,2); input [3,1,1,1,4,0]; offsets [0,0,3,3,6] (spec §3.3, §3.4).
    private static readonly float[] W = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

    private static TIndex[] Input => [Index(3), Index(1), Index(1), Index(1), Index(4), Index(0)];

    [Theory]
    [InlineData(EmbeddingBagMode.Sum, false, new float[] { 0, 0, 13, 16, 0, 0, 13, 16, 0, 0 })]
    [InlineData(EmbeddingBagMode.Sum, true, new float[] { 0, 0, 13, 16, 0, 0, 13, 16 })]
    [InlineData(EmbeddingBagMode.Mean, false, new float[] { 0, 0, 4.333333492279053f, 5.333333492279053f, 0, 0, 4.333333492279053f, 5.333333492279053f, 0, 0 })]
    [InlineData(EmbeddingBagMode.Max, false, new float[] { 0, 0, 7, 8, 0, 0, 9, 10, 0, 0 })]
    [InlineData(EmbeddingBagMode.Max, true, new float[] { 0, 0, 7, 8, 0, 0, 9, 10 })]
    public void EmbeddingBag_ReproducesTorchExample(EmbeddingBagMode mode, bool includeLastOffset, float[] expected)
    {
        TOffset[] offsets = [Offset(0), Offset(0), Offset(3), Offset(3), Offset(6)];
        float[] actual = new float[expected.Length];
        long[] maxIndices = new long[expected.Length];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, mode, actual, includeLastOffset, maxIndices: maxIndices);
        TestAssert.BitEqual(expected, actual, mode.ToString());
        if (mode == EmbeddingBagMode.Max)
        {
            Assert.Equal(new long[] { -1, -1, 3, 3, -1, -1, 4, 4, -1, -1 }[..expected.Length], maxIndices);
        }
    }

    [Theory]
    [InlineData(EmbeddingBagMode.Sum, 1L, new float[] { 7, 8, 10, 12 })]
    [InlineData(EmbeddingBagMode.Mean, 1L, new float[] { 7, 8, 5, 6 })]
    [InlineData(EmbeddingBagMode.Max, 1L, new float[] { 7, 8, 9, 10 })]
    [InlineData(EmbeddingBagMode.Sum, 4L, new float[] { 13, 16, 4, 6 })]
    [InlineData(EmbeddingBagMode.Mean, 4L, new float[] { 4.333333492279053f, 5.333333492279053f, 2, 3 })]
    public void EmbeddingBag_ExcludesPaddingFromReductionsAndCounts(EmbeddingBagMode mode, long paddingIndex, float[] expected)
    {
        float[] actual = new float[4];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, [Offset(0), Offset(3)], W, 2, mode, actual, paddingIndex: paddingIndex, maxIndices: new long[4]);
        TestAssert.BitEqual(expected, actual, mode.ToString());
        float[] fixedSize = new float[4];
        EmbeddingPrimitives.EmbeddingBag<TIndex>(Input, 3, W, 2, mode, fixedSize, paddingIndex: paddingIndex, maxIndices: new long[4]);
        TestAssert.BitEqual(expected, fixedSize, "2-D form");
    }

    [Fact]
    public void EmbeddingBag_AllPaddingBagGivesZeroAndNoRow()
    {
        float[] actual = [9, 9, 9, 9];
        long[] maxIndices = new long[4];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>([Index(1), Index(1), Index(2)], [Offset(0), Offset(2)], W, 2, EmbeddingBagMode.Max, actual, paddingIndex: 1, maxIndices: maxIndices);
        TestAssert.BitEqual([0, 0, 5, 6], actual, "max");
        Assert.Equal(new long[] { -1, -1, 2, 2 }, maxIndices);
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>([Index(1), Index(1), Index(2)], [Offset(0), Offset(2)], W, 2, EmbeddingBagMode.Mean, actual, paddingIndex: 1);
        TestAssert.BitEqual([0, 0, 5, 6], actual, "mean");
    }

    [Theory]
    [InlineData(EmbeddingPrimitives.NoPadding, new float[] { 12.5f, 14.0f, 21.25f, 34.5f })]
    [InlineData(1L, new float[] { 14, 16, 12.25f, 22.5f })]
    public void EmbeddingBag_WeightsPerSample(long paddingIndex, float[] expected)
    {
        float[] actual = new float[4];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, [Offset(0), Offset(3)], W, 2, EmbeddingBagMode.Sum, actual, perSampleWeights: [2, 0.5f, -1, 3, 0.25f, 10], paddingIndex: paddingIndex);
        TestAssert.BitEqual(expected, actual, $"padding {paddingIndex}");
    }

    [Fact]
    public void EmbeddingBag_WeightedSumRoundsOnceWithoutPaddingAndTwiceWithIt()
    {
        // x·w is inexact here: fma(x, w, acc) and acc + fl(x·w) differ in the last bit.
        float x = MathF.BitIncrement(1.0f), w = x, acc = -MathF.BitIncrement(x);
        float[] weight = [acc, x, 0, 0];
        TIndex[] indices = [Index(0), Index(1)];
        float[] psw = [1, w];
        float[] fused = new float[1], rounded = new float[1];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, [Offset(0)], weight, 1, EmbeddingBagMode.Sum, fused, perSampleWeights: psw);
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, [Offset(0)], weight, 1, EmbeddingBagMode.Sum, rounded, perSampleWeights: psw, paddingIndex: 3);
        Assert.Equal(MathF.FusedMultiplyAdd(x, w, acc), fused[0]);
        Assert.Equal(acc + x * w, rounded[0]);
        Assert.NotEqual(fused[0], rounded[0]);
    }

    [Theory]
    [InlineData(new float[] { 1, 5, 1, 2, 0, 5 }, new int[] { 0, 1, 2 }, new float[] { 1, 5 }, new long[] { 0, 0 })]
    [InlineData(new float[] { 1, float.NaN, float.NaN, 2, 3, 1 }, new int[] { 0, 1, 2 }, new float[] { 3, float.NaN }, new long[] { 2, 0 })]
    [InlineData(new float[] { float.NaN, 2, 1, float.NaN, 3, 1 }, new int[] { 0, 1, 2 }, new float[] { float.NaN, 2 }, new long[] { 0, 0 })]
    [InlineData(new float[] { -0.0f, float.NegativeInfinity, 0.0f, float.NegativeInfinity }, new int[] { 0, 1 }, new float[] { -0.0f, float.NegativeInfinity }, new long[] { 0, 0 })]
    [InlineData(new float[] { 0.0f, 1, -0.0f, 1 }, new int[] { 0, 1 }, new float[] { 0.0f, 1 }, new long[] { 0, 0 })]
    [InlineData(new float[] { 1, 5, 0, 0, 0, 0, 3, 3 }, new int[] { 3, 0 }, new float[] { 3, 5 }, new long[] { 3, 0 })]
    public void EmbeddingBag_MaxKeepsFirstMaximum(float[] weight, int[] bag, float[] expected, long[] expectedRows)
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            float[] actual = new float[2];
            long[] maxIndices = new long[2];
            EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(bag.Select(Index).ToArray(), [Offset(0)], weight, 2, EmbeddingBagMode.Max, actual, false, default, EmbeddingPrimitives.NoPadding, maxIndices, width);
            TestAssert.BitEqual(expected, actual, width.ToString());
            Assert.Equal(expectedRows, maxIndices);
        }
    }

    [Fact]
    public void EmbeddingBag_SumOfNegativeZeroIsPositiveZero()
    {
        float[] actual = new float[2];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>([Index(0)], [Offset(0)], [-0.0f, 1.0f], 2, EmbeddingBagMode.Sum, actual);
        TestAssert.BitEqual([0.0f, 1.0f], actual, "sum");
    }

    [Fact]
    public void EmbeddingBag_EmptyInputGivesZeroRows()
    {
        float[] actual = [7, 7, 7, 7, 7, 7];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>([], [Offset(0), Offset(0), Offset(0)], W, 2, EmbeddingBagMode.Mean, actual);
        TestAssert.BitEqual(new float[6], actual, "mean");
        Assert.Equal(3, EmbeddingPrimitives.EmbeddingBagCount<TOffset>([Offset(0), Offset(0), Offset(0)], 0));
        Assert.Equal(2, EmbeddingPrimitives.EmbeddingBagCount<TOffset>([Offset(0), Offset(0), Offset(0)], 0, includeLastOffset: true));
    }

    public static TheoryData<int[], bool> BadOffsets() => new()
    {
        { new[] { 1, 3 }, false },
        { new[] { 0, 4, 2 }, false },
        { new[] { 0, 7 }, false },
        { Array.Empty<int>(), true },
        { new[] { 0, 3, 5 }, true },
        { new[] { 0, 3, 7 }, true },
    };

    [Theory]
    [MemberData(nameof(BadOffsets))]
    public void EmbeddingBag_ThrowsForBadOffsetsAndWritesNothing(int[] offsets, bool includeLastOffset)
    {
        float[] destination = TestData.Guarded(0, 8);
        var error = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets.Select(Offset).ToArray(), W, 2, EmbeddingBagMode.Sum, destination, includeLastOffset));
        Assert.Equal("offsets", error.ParamName);
        Assert.All(destination, value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagCount<TOffset>(offsets.Select(Offset).ToArray(), 6, includeLastOffset));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(5)]
    public void EmbeddingBag_ThrowsForBadIndexAndWritesNothing(int bad)
    {
        TIndex[] indices = Input;
        indices[4] = TIndex.CreateTruncating(bad);
        foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
        {
            float[] destination = TestData.Guarded(0, 4);
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, [Offset(0), Offset(3)], W, 2, mode, destination.AsSpan(0, 4), maxIndices: new long[4]));
            Assert.Contains("position 4", error.Message);
            Assert.Contains("0 to 4", error.Message);
            Assert.All(destination, value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
        }
    }

    [Fact]
    public void EmbeddingBag_ThrowsForBadArguments()
    {
        TOffset[] offsets = [Offset(0), Offset(3)];
        float[] psw = [1, 1, 1, 1, 1, 1];
        Assert.Contains("only supported for mode='sum' (got mode='mean')", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, EmbeddingBagMode.Mean, new float[4], perSampleWeights: psw)).Message);
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, EmbeddingBagMode.Max, new float[4], perSampleWeights: psw, maxIndices: new long[4]));
        Assert.Equal("perSampleWeights", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, EmbeddingBagMode.Sum, new float[4], perSampleWeights: psw[..5])).ParamName);
        Assert.Equal("maxIndices", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, EmbeddingBagMode.Max, new float[4], maxIndices: new long[3])).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, EmbeddingBagMode.Sum, new float[3])).ParamName);
        float[] shared = (float[])W.Clone();
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, shared, 2, EmbeddingBagMode.Sum, shared.AsSpan(6, 4))).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, EmbeddingBagMode.Sum, new float[4], paddingIndex: 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(Input, offsets, W, 2, (EmbeddingBagMode)3, new float[4]));
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex>(Input, 4, W, 2, EmbeddingBagMode.Sum, new float[4]));
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBag<TIndex>(Input, 0, W, 2, EmbeddingBagMode.Sum, new float[4]));
        Assert.Throws<NotSupportedException>(() => EmbeddingPrimitives.EmbeddingBag<short, TOffset>([0], offsets, W, 2, EmbeddingBagMode.Sum, new float[4]));
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Kernels_GiveTheSameBitsWhetherTheyPrefetchWholeRowsOrFirstLines(VectorWidth width)
    {
        // A table of Rows rows is prefetched whole (rows longer than 256 bytes); one past KernelHints.WholeRowTableBytes
        // only by its rows' first lines. Only tables of 64 MiB and more take the second path in the other tests, so both run here, for the
        // generic kernel and for the specialised one where the dimension has one.
        foreach (int dim in new[] { 5, 16, 64, 128, 300, 768 })
        {
            Assert.Equal(dim * sizeof(float) > KernelHints.WholeRowMinBytes, KernelHints.PrefetchesWholeRows(Rows, dim * sizeof(float)));
            Assert.False(KernelHints.PrefetchesWholeRows(KernelHints.WholeRowTableBytes / (dim * sizeof(float)) + 1, dim * sizeof(float)));
            (TIndex[] indices, _, long[] starts) = Layout(dim, false);
            float[] psw = Weights(indices.Length, dim);
            int bags = starts.Length - 1;
            RunBothWays<BagSum>(EmbeddingBagMode.Sum, TestData.Table(Rows, dim, dim), default);
            RunBothWays<BagMean>(EmbeddingBagMode.Mean, TestData.Table(Rows, dim, dim), default);
            RunBothWays<BagMax>(EmbeddingBagMode.Max, SpecialTable(Rows, dim, dim), default);
            RunBothWays<BagWeightedSum>(EmbeddingBagMode.Sum, TestData.Table(Rows, dim, dim), psw);

            void RunBothWays<TMode>(EmbeddingBagMode mode, float[] weight, float[]? sampleWeights)
                where TMode : IBagMode
            {
                float[] expected = new float[bags * dim];
                long[] expectedMax = new long[bags * dim];
                BagReference.EmbeddingBag(indices.Select(long.CreateTruncating).ToArray(), starts, weight, dim, mode, expected, sampleWeights, EmbeddingPrimitives.NoPadding, expectedMax);
                var key = new KernelKey(TMode.Operation, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), dim, KernelDispatch.FitWidth(width, dim, sizeof(float)));
                // The specialised weighted kernels fuse, so they serve only where torch's lookups do (as in the dispatcher).
                bool specialisedServes = typeof(TMode) != typeof(BagWeightedSum) || TorchProducts.LookupsAreFused;
                BagKernel<float, TIndex>?[] kernels = [GenericBag<float, TIndex, TMode>.At(key.Width), specialisedServes ? (BagKernel<float, TIndex>?)KernelDispatch.Specialised(key) : null];
                foreach (BagKernel<float, TIndex> kernel in kernels.OfType<BagKernel<float, TIndex>>())
                {
                    foreach (long rows in new[] { Rows, KernelHints.WholeRowTableBytes / (dim * sizeof(float)) + 1 })
                    {
                        float[] actual = new float[expected.Length];
                        long[] actualMax = new long[expected.Length];
                        kernel(in weight[0], rows, dim, in indices[0], in starts[0], bags, EmbeddingPrimitives.NoPadding, in sampleWeights == null ? ref System.Runtime.CompilerServices.Unsafe.NullRef<float>() : ref sampleWeights[0], ref actual[0], ref mode == EmbeddingBagMode.Max ? ref actualMax[0] : ref System.Runtime.CompilerServices.Unsafe.NullRef<long>());
                        string context = $"dim {dim}, {key.Width}, {typeof(TMode).Name}, {kernel.Method.Name}, rows {rows}";
                        TestAssert.BitEqual(expected, actual, context);
                        Assert.True(mode != EmbeddingBagMode.Max || expectedMax.AsSpan().SequenceEqual(actualMax), context + ": max indices");
                    }
                }
            }
        }
    }

    [Fact]
    public void EmbeddingBag_AllocatesNothingAfterWarmUp()
    {
        const int dim = 300;
        (TIndex[] indices, TOffset[] offsets, long[] starts) = Layout(1, false);
        float[] weight = TestData.Table(Rows, dim, 1), psw = Weights(indices.Length, 1);
        float[] destination = new float[(starts.Length - 1) * dim];
        long[] maxIndices = new long[destination.Length];
        void Run()
        {
            EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight, dim, EmbeddingBagMode.Sum, destination, perSampleWeights: psw);
            EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight, dim, EmbeddingBagMode.Mean, destination, paddingIndex: 2);
            EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight, dim, EmbeddingBagMode.Max, destination, maxIndices: maxIndices);
            EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(indices, offsets, weight.AsSpan(0, Rows * 7), 7, EmbeddingBagMode.Max, destination, maxIndices: maxIndices);
        }

        Run();
        Assert.Equal(0, TestAssert.AllocatedBytes(Run));
    }

    private static TIndex Index(int value) => TIndex.CreateTruncating(value);

    private static TOffset Offset(int value) => TOffset.CreateTruncating(value);

    /// <summary>~12 bags of 0–7 positions: empty bags, single-element bags, duplicates, padding (row 3) and both edge rows.</summary>
    private static (TIndex[] Indices, TOffset[] Offsets, long[] Starts) Layout(int seed, bool includeLastOffset)
    {
        var random = new Random(seed);
        int bags = 12;
        var sizes = Enumerable.Range(0, bags).Select(b => b switch { 0 => 0, 1 => 1, 2 => 3, _ => random.Next(8) }).ToArray();
        int length = sizes.Sum();
        TIndex[] indices = TestData.Indices<TIndex>(length, Rows, seed);
        if (length > 5)
        {
            indices[1] = indices[2] = Index(3);
        }

        long[] starts = new long[bags + 1];
        for (int b = 0; b < bags; b++)
        {
            starts[b + 1] = starts[b] + sizes[b];
        }

        TOffset[] offsets = (includeLastOffset ? starts : starts[..bags]).Select(s => TOffset.CreateTruncating(s)).ToArray();
        return (indices, offsets, starts);
    }

    /// <summary>A table for max: few distinct values (ties), NaN, ±0.0 and ±inf.</summary>
    private static float[] SpecialTable(int rows, int dim, int seed)
    {
        float[] values = [-1, 0.0f, -0.0f, 1, 2, 2, float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0.5f];
        var random = new Random(seed);
        return Enumerable.Range(0, rows * dim).Select(_ => values[random.Next(values.Length)]).ToArray();
    }

    private static float[] Weights(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
    }
}

public sealed class BagKernelTestsInt32Int32 : BagKernelTests<int, int>;

public sealed class BagKernelTestsInt32Int64 : BagKernelTests<int, long>;

public sealed class BagKernelTestsInt64Int32 : BagKernelTests<long, int>;

public sealed class BagKernelTestsInt64Int64 : BagKernelTests<long, long>;
