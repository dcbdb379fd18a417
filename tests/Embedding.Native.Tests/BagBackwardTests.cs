using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The EmbeddingBag backward (dense sum/mean/max, sparse, per-sample weights) against the scalar
/// reference, bit for bit, at every width the process accelerates, plus torch 1.13's documented examples.
/// </summary>
public abstract class BagBackwardTests<TIndex, TOffset>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TOffset : unmanaged, IBinaryInteger<TOffset>
{
    private const int Rows = 7;
    private const long Padding = 3;

    private static readonly EmbeddingGradOptions Freq = EmbeddingGradOptions.ScaleGradByFrequency, Accumulate = EmbeddingGradOptions.Accumulate;

    // torch's §3.4 example: W = arange(1, 11).view(5, 2), input [3,1,1,1,4,0], offsets [0,0,3,3,6].
    private static readonly TIndex[] TorchIndices = Cast<TIndex>(3, 1, 1, 1, 4, 0);
    private static readonly TOffset[] TorchOffsets = Cast<TOffset>(0, 0, 3, 3, 6);
    private static readonly float[] TorchGradOutput = [99, 99, 1, 2, 99, 99, 3, 4, 99, 99];
    private static readonly float[] TorchWeight = Enumerable.Range(1, 10).Select(i => (float)i).ToArray();

    public static TheoryData<VectorWidth, EmbeddingBagMode, EmbeddingGradOptions, long, bool> Variants()
    {
        var data = new TheoryData<VectorWidth, EmbeddingBagMode, EmbeddingGradOptions, long, bool>();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, Padding })
            {
                foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, Freq, Accumulate, Freq | Accumulate })
                {
                    data.Add(width, EmbeddingBagMode.Sum, options, padding, false);
                    data.Add(width, EmbeddingBagMode.Sum, options, padding, true);
                    data.Add(width, EmbeddingBagMode.Mean, options, padding, false);
                }

                data.Add(width, EmbeddingBagMode.Max, EmbeddingGradOptions.None, padding, false);
                data.Add(width, EmbeddingBagMode.Max, Accumulate, padding, false);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void EmbeddingBagBackward_MatchesReferenceForEveryDimension(VectorWidth width, EmbeddingBagMode mode, EmbeddingGradOptions options, long padding, bool weighted)
    {
        foreach (int dim in TestData.Dims)
        {
            int count = dim > 1000 ? 24 : 60;
            bool includeLast = dim % 2 == 0;
            TIndex[] indices = TestData.Indices<TIndex>(count, Rows, seed: dim);
            indices[1] = TIndex.CreateTruncating(Padding);
            TOffset[] offsets = Offsets(count, seed: dim, includeLast, out int bags);
            float[] psw = weighted ? BackwardKernelTests<int>.Gradient(count, 1, seed: dim + 7) : [];
            float[] gradOutput = BackwardKernelTests<int>.Gradient(bags, dim, seed: dim + 1);
            float[] initial = BackwardKernelTests<int>.Gradient(Rows, dim, seed: dim + 2);
            long[] maxIndices = mode == EmbeddingBagMode.Max ? ArgMax(indices, offsets, includeLast, TestData.Table(Rows, dim, dim), dim, padding) : [];

            float[] expected = (float[])initial.Clone();
            using (PooledBags<TIndex> pooled = Layout(indices, offsets, includeLast, psw, padding))
            {
                BagBackwardReference.EmbeddingBagBackward(gradOutput, pooled.Bags, dim, mode, maxIndices, options, expected);
            }

            float[] actual = TestData.Guarded(Rows * dim);
            initial.CopyTo(actual, 0);
            EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(gradOutput, indices, offsets, dim, mode, actual.AsSpan(0, Rows * dim), includeLast, psw, padding, maxIndices, options, width);

            TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"dim {dim}, {width}, {mode}, {options}, padding {padding}, weighted {weighted}");
            BackwardKernelTests<int>.AssertSentinels(actual, expected.Length);
            if (padding >= 0 && (options & Accumulate) == 0)
            {
                Assert.All(actual.AsSpan((int)padding * dim, dim).ToArray(), value => Assert.Equal(0, BitConverter.SingleToInt32Bits(value)));
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void EmbeddingBagSparseBackward_MatchesReferenceAndCoalescesToTheDenseSum(VectorWidth width)
    {
        foreach (int dim in new[] { 1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 100, 301, 1025 })
        {
            foreach ((EmbeddingBagMode mode, bool weighted, EmbeddingGradOptions options) in new[]
            {
                (EmbeddingBagMode.Sum, false, EmbeddingGradOptions.None), (EmbeddingBagMode.Sum, true, EmbeddingGradOptions.None),
                (EmbeddingBagMode.Mean, false, EmbeddingGradOptions.None), (EmbeddingBagMode.Sum, false, Freq),
                (EmbeddingBagMode.Sum, true, Freq), (EmbeddingBagMode.Mean, false, Freq),
            })
            {
                const int count = 80;
                TIndex[] indices = TestData.Indices<TIndex>(count, Rows, seed: dim);
                TOffset[] offsets = Offsets(count, seed: dim, includeLast: false, out int bags);
                float[] psw = weighted ? BackwardKernelTests<int>.Gradient(count, 1, seed: dim + 7) : [];
                float[] gradOutput = BackwardKernelTests<int>.Gradient(bags, dim, seed: dim + 1);

                long[] expectedRows = new long[count];
                float[] expectedValues = new float[count * dim];
                int expectedCount;
                using (PooledBags<TIndex> pooled = Layout(indices, offsets, false, psw, Padding))
                {
                    expectedCount = BagBackwardReference.EmbeddingBagSparseBackward(gradOutput, pooled.Bags, dim, Rows, mode, options, expectedRows, expectedValues);
                }

                long[] rows = new long[count];
                float[] values = TestData.Guarded(count * dim);
                int nnz = EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>(gradOutput, indices, offsets, dim, Rows, mode, rows, values.AsSpan(0, count * dim), false, psw, Padding, options, width);
                string context = $"dim {dim}, {width}, {mode}, weighted {weighted}, {options}";
                Assert.Equal(expectedCount, nnz);
                Assert.Equal(expectedRows[..nnz], rows[..nnz]);
                TestAssert.BitEqual(expectedValues.AsSpan(0, nnz * dim), values.AsSpan(0, nnz * dim), context);
                BackwardKernelTests<int>.AssertSentinels(values, count * dim);

                if (mode == EmbeddingBagMode.Sum && !weighted && options == EmbeddingGradOptions.None)
                {
                    // Unscaled sum entries coalesce to their sums in entry order, bit for bit. (The dense
                    // backward adds them in torch's sort order instead, so it may differ in the last bits.)
                    long[] unique = new long[nnz];
                    float[] sums = new float[nnz * dim];
                    int distinct = EmbeddingPrimitives.SparseCoalesce(rows.AsSpan(0, nnz), values.AsSpan(0, nnz * dim), dim, Rows, unique, sums, width);
                    float[] dense = new float[Rows * dim];
                    for (int e = 0; e < nnz; e++)
                    {
                        for (int column = 0; column < dim; column++)
                        {
                            dense[(rows[e] * dim) + column] += values[(e * dim) + column];
                        }
                    }

                    for (int j = 0; j < distinct; j++)
                    {
                        TestAssert.BitEqual(dense.AsSpan((int)unique[j] * dim, dim), sums.AsSpan(j * dim, dim), context + $", row {unique[j]}");
                    }
                }
            }
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(5)]
    [InlineData(16)]
    [InlineData(37)]
    [InlineData(300)]
    public void EmbeddingBagPerSampleWeightsBackward_MatchesReference(int dim)
    {
        const int count = 80;
        foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, Padding })
        {
            foreach (bool includeLast in new[] { false, true })
            {
                TIndex[] indices = TestData.Indices<TIndex>(count, Rows, seed: dim);
                TOffset[] offsets = Offsets(count, seed: dim, includeLast, out int bags);
                float[] weight = BackwardKernelTests<int>.Gradient(Rows, dim, seed: dim + 3);
                float[] gradOutput = BackwardKernelTests<int>.Gradient(bags, dim, seed: dim + 1);
                float[] expected = new float[count];
                using (PooledBags<TIndex> pooled = Layout(indices, offsets, includeLast, [], padding))
                {
                    BagBackwardReference.EmbeddingBagPerSampleWeightsBackward(gradOutput, weight, pooled.Bags, dim, expected);
                }

                float[] actual = TestData.Guarded(count);
                EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>(gradOutput, weight, indices, offsets, dim, EmbeddingBagMode.Sum, actual.AsSpan(0, count), includeLast, padding);
                TestAssert.BitEqual(expected, actual.AsSpan(0, count), $"dim {dim}, padding {padding}, includeLast {includeLast}");
                BackwardKernelTests<int>.AssertSentinels(actual, count);
            }
        }
    }

    [Fact]
    public void EmbeddingBagPerSampleWeightsBackward_RoundsEachProductBeforeTheAdd()
    {
        // 1 + 2^-24 products: fused, the sum keeps the low bit; rounded first, it is lost (torch's sdot).
        float x = 1f + MathF.Pow(2, -12);
        float[] gradOutput = [x, -1f];
        float[] weight = [x, 1f];
        float[] grad = new float[1];
        EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>(gradOutput, weight, [TIndex.Zero], [TOffset.Zero], 2, EmbeddingBagMode.Sum, grad);
        Assert.Equal(x * x - 1f, grad[0]);
        Assert.NotEqual(MathF.FusedMultiplyAdd(x, x, -1f), grad[0]);
    }

    [Fact]
    public void EmbeddingBagBackward_MatchesTorchDocumentedExamples()
    {
        float[] grad = new float[10];
        Dense(EmbeddingBagMode.Sum, grad);
        Assert.Equal([3f, 4, 5, 8, 0, 0, 1, 2, 3, 4], grad);

        Dense(EmbeddingBagMode.Mean, grad);
        Assert.Equal([1f, 1.3333334f, 1.6666667f, 2.6666667f, 0, 0, 0.33333334f, 0.6666667f, 1, 1.3333334f], grad);

        // Bag 1 [3,1,1] takes row 3 ([7,8]), bag 3 [1,4,0] row 4 ([9,10]); empty bags are skipped
        // whether their max indices hold this library's -1 or torch's 0.
        Dense(EmbeddingBagMode.Max, grad, maxIndices: [-1, -1, 3, 3, -1, -1, 4, 4, -1, -1]);
        Assert.Equal([0f, 0, 0, 0, 0, 0, 1, 2, 3, 4], grad);
        Dense(EmbeddingBagMode.Max, grad, maxIndices: [0, 0, 3, 3, 0, 0, 4, 4, 0, 0]);
        Assert.Equal([0f, 0, 0, 0, 0, 0, 1, 2, 3, 4], grad);

        Dense(EmbeddingBagMode.Sum, grad, padding: 1);
        Assert.Equal([3f, 4, 0, 0, 0, 0, 1, 2, 3, 4], grad);
        Dense(EmbeddingBagMode.Mean, grad, padding: 1);
        Assert.Equal([1.5f, 2, 0, 0, 0, 0, 1, 2, 1.5f, 2], grad);
    }

    [Fact]
    public void EmbeddingBagBackward_UsesTheMaxIndicesOfTheForward()
    {
        float[] output = new float[10];
        long[] maxIndices = new long[10];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(TorchIndices, TorchOffsets, TorchWeight, 2, EmbeddingBagMode.Max, output, maxIndices: maxIndices);
        float[] grad = new float[10];
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Max, grad, maxIndices: maxIndices);
        Assert.Equal([0f, 0, 0, 0, 0, 0, 1, 2, 3, 4], grad);

        // Ties: the first arg-max takes the gradient, and a duplicate in the bag does not double it.
        float[] table = [0, 0, 5, 1, 1, 5];
        TIndex[] bag = Cast<TIndex>(1, 1, 2);
        long[] tieIndices = new long[2];
        EmbeddingPrimitives.EmbeddingBag<TIndex, TOffset>(bag, [TOffset.Zero], table, 2, EmbeddingBagMode.Max, new float[2], maxIndices: tieIndices);
        Assert.Equal([1L, 2], tieIndices);
        float[] tieGrad = new float[6];
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([10f, 100], bag, [TOffset.Zero], 2, EmbeddingBagMode.Max, tieGrad, maxIndices: tieIndices);
        Assert.Equal([0f, 0, 10, 0, 0, 100], tieGrad);
    }

    [Fact]
    public void EmbeddingBagBackward_ScalesByEachRowsOwnCount()
    {
        // torch <= 2.13 gives row 3 0.5 here (it divides by row 1's count); the documented value is 1.
        TIndex[] indices = Cast<TIndex>(1, 1, 3);
        float[] grad = new float[4];
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([1f], indices, [TOffset.Zero], 1, EmbeddingBagMode.Sum, grad, options: Freq);
        Assert.Equal([0f, 1, 0, 1], grad);

        // Padding occurrences are counted (c[0] = 3) but contribute nothing: idx [0,0,0,1,2], padding 0.
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([1f], Cast<TIndex>(0, 0, 0, 1, 2), [TOffset.Zero], 1, EmbeddingBagMode.Sum, grad, paddingIndex: 0, options: Freq);
        Assert.Equal([0f, 1, 1, 0], grad);

        // Mean with frequency: s = 1 / c / |P|, built in double, rounded once.
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([1f], Cast<TIndex>(2, 2, 1), [TOffset.Zero], 1, EmbeddingBagMode.Mean, grad, options: Freq);
        float sixth = (float)(1.0 / 2 / 3);
        Assert.Equal([0f, (float)(1.0 / 3), MathF.FusedMultiplyAdd(1f, sixth, sixth), 0], grad);
    }

    [Fact]
    public void EmbeddingBagBackward_AccumulatesDuplicatesInPositionOrderWithTheRoundedScale()
    {
        // psw makes each scale inexact; 1e8 then small terms shows any reordering.
        TIndex[] indices = Cast<TIndex>(0, 0, 0, 0, 0);
        float[] psw = [1e8f, 0.3f, 0.7f, -1e8f, 0.1f];
        float[] grad = new float[1];
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([3f], indices, [TOffset.Zero], 1, EmbeddingBagMode.Sum, grad, perSampleWeights: psw);
        float acc = 0f;
        foreach (float w in psw)
        {
            acc = TorchProducts.MultiplyAdd(3f, w, acc);
        }

        Assert.Equal(acc, grad[0]);
    }

    [Fact]
    public void EmbeddingBagBackward_OverwritesUnlessAccumulating()
    {
        float[] grad = Enumerable.Repeat(5f, 10).ToArray();
        Dense(EmbeddingBagMode.Sum, grad);
        Assert.Equal([3f, 4, 5, 8, 0, 0, 1, 2, 3, 4], grad);
        Dense(EmbeddingBagMode.Sum, grad, options: Accumulate);
        Assert.Equal([6f, 8, 10, 16, 0, 0, 2, 4, 6, 8], grad);
        Dense(EmbeddingBagMode.Max, grad, maxIndices: [-1, -1, 3, 3, -1, -1, 4, 4, -1, -1], options: Accumulate);
        Assert.Equal([6f, 8, 10, 16, 0, 0, 3, 6, 9, 12], grad);
    }

    [Fact]
    public void EmbeddingBagBackward_HandlesEmptyAndAllPaddingBags()
    {
        // Bags: [] [2,2] [] [2] with padding 2: every bag is empty or all padding.
        float[] grad = Enumerable.Repeat(5f, 6).ToArray();
        foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
        {
            EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(
                [1f, 1, 2, 2, 3, 3, 4, 4], Cast<TIndex>(2, 2, 2), Cast<TOffset>(0, 0, 2, 2), 2, mode, grad,
                paddingIndex: 2, maxIndices: mode == EmbeddingBagMode.Max ? [-1, -1, -1, -1, -1, -1, -1, -1] : default);
            Assert.Equal(new float[6], grad);
        }

        // No bags at all; no indices at all.
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([], Cast<TIndex>(1, 2), [], 2, EmbeddingBagMode.Sum, grad);
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([], [], Cast<TOffset>(0), 2, EmbeddingBagMode.Mean, grad, includeLastOffset: true);
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>([0f, 0, 0, 0], [], Cast<TOffset>(0, 0), 2, EmbeddingBagMode.Max, grad, maxIndices: [-1, -1, -1, -1]);
        Assert.Equal(new float[6], grad);
        long[] rows = new long[1];
        Assert.Equal(0, EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>([1f, 2], Cast<TIndex>(2, 2), Cast<TOffset>(0), 2, 3, EmbeddingBagMode.Mean, rows, new float[2], paddingIndex: 2));
    }

    [Fact]
    public void EmbeddingBagSparseBackward_KeepsTorchsUncoalescedLayout()
    {
        long[] rows = new long[6];
        float[] values = TestData.Guarded(12);
        Assert.Equal(6, EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, 5, EmbeddingBagMode.Mean, rows, values.AsSpan(0, 12)));
        Assert.Equal([3L, 1, 1, 1, 4, 0], rows);
        Assert.Equal([0.33333334f, 0.6666667f, 0.33333334f, 0.6666667f, 0.33333334f, 0.6666667f, 1, 1.3333334f, 1, 1.3333334f, 1, 1.3333334f], values[..12]);
        BackwardKernelTests<int>.AssertSentinels(values, 12);

        Assert.Equal(3, EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, 5, EmbeddingBagMode.Sum, rows, values.AsSpan(0, 12), perSampleWeights: [2f, 0.5f, -1, 3, 0.25f, 10], paddingIndex: 1));
        Assert.Equal([3L, 4, 0], rows[..3]);
        Assert.Equal([2f, 4, 0.75f, 1, 30, 40], values[..6]);
    }

    [Fact]
    public void EmbeddingBagBackward_FixedSizeBagsEqualOffsets()
    {
        const int dim = 13, bagSize = 4, count = 40;
        TIndex[] indices = TestData.Indices<TIndex>(count, Rows, seed: 11);
        TOffset[] offsets = Enumerable.Range(0, count / bagSize).Select(b => TOffset.CreateTruncating(b * bagSize)).ToArray();
        float[] gradOutput = BackwardKernelTests<int>.Gradient(count / bagSize, dim, seed: 12);
        float[] psw = BackwardKernelTests<int>.Gradient(count, 1, seed: 13);
        float[] weight = BackwardKernelTests<int>.Gradient(Rows, dim, seed: 14);

        float[] viaOffsets = new float[Rows * dim], viaSize = new float[Rows * dim];
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(gradOutput, indices, offsets, dim, EmbeddingBagMode.Sum, viaOffsets, false, psw, Padding, default, Freq);
        EmbeddingPrimitives.EmbeddingBagBackward<TIndex>(gradOutput, indices, bagSize, dim, EmbeddingBagMode.Sum, viaSize, psw, Padding, default, Freq);
        TestAssert.BitEqual(viaOffsets, viaSize, "dense");

        long[] rowsA = new long[count], rowsB = new long[count];
        float[] valuesA = new float[count * dim], valuesB = new float[count * dim];
        int nnz = EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>(gradOutput, indices, offsets, dim, Rows, EmbeddingBagMode.Mean, rowsA, valuesA, paddingIndex: Padding);
        Assert.Equal(nnz, EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex>(gradOutput, indices, bagSize, dim, Rows, EmbeddingBagMode.Mean, rowsB, valuesB, paddingIndex: Padding));
        Assert.Equal(rowsA, rowsB);
        TestAssert.BitEqual(valuesA, valuesB, "sparse");

        float[] pswA = new float[count], pswB = new float[count];
        EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>(gradOutput, weight, indices, offsets, dim, EmbeddingBagMode.Sum, pswA, paddingIndex: Padding);
        EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex>(gradOutput, weight, indices, bagSize, dim, EmbeddingBagMode.Sum, pswB, Padding);
        TestAssert.BitEqual(pswA, pswB, "per-sample weights");
    }

    [Fact]
    public void EmbeddingBagPerSampleWeightsBackward_MatchesTorchDocumentedExample()
    {
        // §3.5: bags [3,1,1 | 1,4,0] on W = arange(1, 11).view(5, 2), grad_out [[1,2],[3,4]].
        float[] grad = new float[6];
        TOffset[] offsets = Cast<TOffset>(0, 3);
        EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, TorchIndices, offsets, 2, EmbeddingBagMode.Sum, grad);
        Assert.Equal([23f, 11, 11, 25, 67, 11], grad);
        EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, TorchIndices, offsets, 2, EmbeddingBagMode.Sum, grad, paddingIndex: 1);
        Assert.Equal([23f, 0, 0, 0, 67, 11], grad);
        EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex>([1f, 2, 3, 4], TorchWeight, TorchIndices, 3, 2, EmbeddingBagMode.Sum, grad);
        Assert.Equal([23f, 11, 11, 25, 67, 11], grad);
    }

    [Fact]
    public void EmbeddingBagBackward_ThrowsForBadArgumentsAndWritesNothing()
    {
        float[] grad = TestData.Guarded(0, guard: 10);
        Span<float> g = grad.AsSpan(0, 10);
        long[] max = [-1, -1, 3, 3, -1, -1, 4, 4, -1, -1];

        void Throws<TException>(string? param, Action call)
            where TException : ArgumentException
        {
            TException error = Assert.Throws<TException>(call);
            if (param is not null)
            {
                Assert.Equal(param, error.ParamName);
            }

            BackwardKernelTests<int>.AssertSentinels(grad, 0);
        }

        Throws<ArgumentOutOfRangeException>("indices", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, Cast<TIndex>(3, 1, 1, 1, 5, 0), TorchOffsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentOutOfRangeException>("indices", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, Cast<TIndex>(3, 1, 1, 1, -1, 0), TorchOffsets, 2, EmbeddingBagMode.Max, grad.AsSpan(0, 10), maxIndices: max));
        Throws<ArgumentOutOfRangeException>("maxIndices", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Max, grad.AsSpan(0, 10), maxIndices: [-1, -1, 3, 5, -1, -1, 4, 4, -1, -1]));
        Throws<ArgumentOutOfRangeException>("maxIndices", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Max, grad.AsSpan(0, 10), maxIndices: [-1, -1, 3, 3, -1, -1, -1, 4, -1, -1]));
        Throws<ArgumentException>("maxIndices", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Max, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("offsets", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, Cast<TOffset>(0, 3, 2, 3, 6), 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("offsets", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, Cast<TOffset>(1, 3, 3, 3, 6), 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("bagSize", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex>(TorchGradOutput, TorchIndices, 4, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("gradOutput", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput.AsSpan(0, 8), TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("gradWeight", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 3, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("perSampleWeights", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Mean, grad.AsSpan(0, 10), perSampleWeights: [1f, 1, 1, 1, 1, 1]));
        Throws<ArgumentException>("perSampleWeights", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10), perSampleWeights: [1f, 1, 1]));
        Throws<ArgumentException>("options", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Max, grad.AsSpan(0, 10), maxIndices: max, options: Freq));
        Throws<ArgumentOutOfRangeException>("mode", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, (EmbeddingBagMode)3, grad.AsSpan(0, 10)));
        Throws<ArgumentOutOfRangeException>("paddingIndex", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10), paddingIndex: 5));
        Throws<ArgumentOutOfRangeException>("options", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10), options: (EmbeddingGradOptions)4));
        Throws<ArgumentOutOfRangeException>("embeddingDim", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 0, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));
        Throws<ArgumentException>("gradWeight", () => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(grad.AsSpan(0, 10), TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 10)));

        var message = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Max, new float[10], maxIndices: max, options: Freq)).Message;
        Assert.StartsWith("max mode does not support scaling the gradient by the frequency", message);
        message = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, EmbeddingBagMode.Mean, new float[10], perSampleWeights: [1f, 1, 1, 1, 1, 1])).Message;
        Assert.StartsWith("embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for mode='sum' (got mode='mean')", message);
    }

    [Fact]
    public void EmbeddingBagSparseAndPerSampleWeightsBackward_ThrowForBadArgumentsAndWriteNothing()
    {
        long[] rows = [-7, -7, -7, -7, -7, -7];
        float[] values = TestData.Guarded(0, guard: 12);
        void Sparse(string param, EmbeddingBagMode mode, TIndex[] indices, int rowCapacity = 6, int valueCapacity = 12, EmbeddingGradOptions options = EmbeddingGradOptions.None, float[]? psw = null)
        {
            ArgumentException error = Assert.ThrowsAny<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>(TorchGradOutput, indices, TorchOffsets, 2, 5, mode, rows.AsSpan(0, rowCapacity), values.AsSpan(0, valueCapacity), perSampleWeights: psw, options: options));
            Assert.Equal(param, error.ParamName);
            Assert.All(rows, row => Assert.Equal(-7, row));
            BackwardKernelTests<int>.AssertSentinels(values, 0);
        }

        Sparse("mode", EmbeddingBagMode.Max, TorchIndices);
        Assert.StartsWith("max mode does not support sparse weights", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagSparseBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, 5, EmbeddingBagMode.Max, new long[6], new float[12])).Message);
        Sparse("perSampleWeights", EmbeddingBagMode.Mean, TorchIndices, psw: [1f, 1, 1, 1, 1, 1]);
        Sparse("options", EmbeddingBagMode.Sum, TorchIndices, options: Accumulate);
        Sparse("indices", EmbeddingBagMode.Sum, Cast<TIndex>(3, 1, 1, 1, 4, 5));
        Sparse("rows", EmbeddingBagMode.Sum, TorchIndices, rowCapacity: 5);
        Sparse("values", EmbeddingBagMode.Sum, TorchIndices, valueCapacity: 11);

        float[] grad = TestData.Guarded(0, guard: 6);
        void PerSample(string param, Action call)
        {
            Assert.Equal(param, Assert.ThrowsAny<ArgumentException>(call).ParamName);
            BackwardKernelTests<int>.AssertSentinels(grad, 0);
        }

        TOffset[] offsets = Cast<TOffset>(0, 3);
        PerSample("mode", () => EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, TorchIndices, offsets, 2, EmbeddingBagMode.Mean, grad.AsSpan(0, 6)));
        PerSample("indices", () => EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, Cast<TIndex>(3, 1, 1, 1, 4, 9), offsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 6)));
        PerSample("gradPerSampleWeights", () => EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, TorchIndices, offsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 5)));
        PerSample("gradOutput", () => EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3], TorchWeight, TorchIndices, offsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 6)));
        PerSample("offsets", () => EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, TorchIndices, Cast<TOffset>(0, 7), 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 6)));
        PerSample("paddingIndex", () => EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<TIndex, TOffset>([1f, 2, 3, 4], TorchWeight, TorchIndices, offsets, 2, EmbeddingBagMode.Sum, grad.AsSpan(0, 6), paddingIndex: 5));
    }

    private static void Dense(EmbeddingBagMode mode, float[] grad, long padding = EmbeddingPrimitives.NoPadding, long[]? maxIndices = null, EmbeddingGradOptions options = EmbeddingGradOptions.None)
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            float[] copy = (float[])grad.Clone();
            EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, mode, copy, false, default, padding, maxIndices, options, width);
            if (width == KernelDispatch.SupportedWidths[^1])
            {
                copy.CopyTo(grad, 0);
            }
            else
            {
                float[] scalar = (float[])grad.Clone();
                EmbeddingPrimitives.EmbeddingBagBackward<TIndex, TOffset>(TorchGradOutput, TorchIndices, TorchOffsets, 2, mode, scalar, false, default, padding, maxIndices, options, VectorWidth.Scalar);
                TestAssert.BitEqual(scalar, copy, $"{mode} at {width}");
            }
        }
    }

    /// <summary>Offsets with bags of 0 to 6 positions (several empty), the last bag running to the end.</summary>
    internal static TOffset[] Offsets(int count, int seed, bool includeLast, out int bags)
    {
        var random = new Random(seed);
        var offsets = new List<TOffset> { TOffset.Zero };
        int position = 0;
        while (true)
        {
            position = Math.Min(count, position + (random.Next(4) == 0 ? 0 : random.Next(1, 7)));
            if (position == count)
            {
                break;
            }

            offsets.Add(TOffset.CreateTruncating(position));
        }

        offsets.Add(TOffset.CreateTruncating(count));
        if (!includeLast)
        {
            offsets.RemoveAt(offsets.Count - 1);
        }

        bags = includeLast ? offsets.Count - 1 : offsets.Count;
        return offsets.ToArray();
    }

    /// <summary>The forward's arg-max rows (first maximum wins; -1 for a bag with no non-padding position).</summary>
    internal static long[] ArgMax(TIndex[] indices, TOffset[] offsets, bool includeLast, float[] table, int dim, long padding)
    {
        int bags = includeLast ? offsets.Length - 1 : offsets.Length;
        long[] result = new long[bags * dim];
        for (int b = 0; b < bags; b++)
        {
            int start = int.CreateTruncating(offsets[b]), end = b + 1 < offsets.Length ? int.CreateTruncating(offsets[b + 1]) : indices.Length;
            for (int d = 0; d < dim; d++)
            {
                long best = -1;
                for (int i = start; i < end; i++)
                {
                    long row = long.CreateTruncating(indices[i]);
                    if (row != padding && (best < 0 || table[row * dim + d] > table[best * dim + d]))
                    {
                        best = row;
                    }
                }

                result[b * dim + d] = best;
            }
        }

        return result;
    }

    internal static PooledBags<TIndex> Layout(TIndex[] indices, TOffset[] offsets, bool includeLast, float[] psw, long padding)
    {
        Assert.Null(BagsBuilder.TryCreateBags<TIndex, TOffset>(indices, offsets, includeLast, psw, padding, out PooledBags<TIndex> pooled));
        return pooled;
    }

    internal static T[] Cast<T>(params long[] values)
        where T : IBinaryInteger<T> => values.Select(T.CreateTruncating).ToArray();
}

/// <summary>The bag backward hot paths allocate nothing once warmed up (bag boundaries and frequency counts are pooled).</summary>
public sealed class BagBackwardAllocationTests
{
    [Theory]
    [InlineData(5)]
    [InlineData(64)]
    [InlineData(301)]
    public void BagBackward_AllocatesNothingAfterWarmUp(int dim)
    {
        const int rows = 50, count = 200;
        int[] indices32 = TestData.Indices<int>(count, rows, seed: 1);
        long[] indices64 = TestData.Indices<long>(count, rows, seed: 2);
        long[] offsets = BagBackwardTests<long, long>.Offsets(count, seed: 3, includeLast: false, out int bags);
        float[] gradOutput = BackwardKernelTests<int>.Gradient(bags, dim, seed: dim);
        float[] psw = BackwardKernelTests<int>.Gradient(count, 1, seed: 4);
        float[] weight = BackwardKernelTests<int>.Gradient(rows, dim, seed: 5);
        long[] maxIndices = BagBackwardTests<long, long>.ArgMax(indices64, offsets, false, weight, dim, 3);
        float[] gradWeight = new float[rows * dim];
        long[] sparseRows = new long[count];
        float[] values = new float[count * dim];
        float[] pswGrad = new float[count];

        void Run()
        {
            EmbeddingPrimitives.EmbeddingBagBackward<int, long>(gradOutput, indices32, offsets, dim, EmbeddingBagMode.Sum, gradWeight, perSampleWeights: psw);
            EmbeddingPrimitives.EmbeddingBagBackward<long, long>(gradOutput, indices64, offsets, dim, EmbeddingBagMode.Mean, gradWeight, paddingIndex: 3, options: EmbeddingGradOptions.ScaleGradByFrequency | EmbeddingGradOptions.Accumulate);
            EmbeddingPrimitives.EmbeddingBagBackward<long, long>(gradOutput, indices64, offsets, dim, EmbeddingBagMode.Max, gradWeight, paddingIndex: 3, maxIndices: maxIndices);
            EmbeddingPrimitives.EmbeddingBagSparseBackward<int, long>(gradOutput, indices32, offsets, dim, rows, EmbeddingBagMode.Mean, sparseRows, values, paddingIndex: 3, options: EmbeddingGradOptions.ScaleGradByFrequency);
            EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackward<long, long>(gradOutput, weight, indices64, offsets, dim, EmbeddingBagMode.Sum, pswGrad, paddingIndex: 3);
        }

        for (int i = 0; i < 10; i++)
        {
            Run();
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                Run();
            }
        }));
    }
}

public sealed class BagBackwardTestsInt32Int32 : BagBackwardTests<int, int>
{
}

public sealed class BagBackwardTestsInt32Int64 : BagBackwardTests<int, long>
{
}

public sealed class BagBackwardTestsInt64Int32 : BagBackwardTests<long, int>
{
}

public sealed class BagBackwardTestsInt64Int64 : BagBackwardTests<long, long>
{
}
