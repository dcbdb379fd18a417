using System;
using System.Linq;
using System.Numerics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The embedding backward (dense scatter-add, sparse layout, coalesce) against the scalar reference,
/// bit for bit, at every width the process accelerates, with duplicate-heavy indices.
/// </summary>
public abstract class BackwardKernelTests<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    private const int Rows = 7;

    public static TheoryData<VectorWidth, EmbeddingGradOptions, long> Variants()
    {
        var data = new TheoryData<VectorWidth, EmbeddingGradOptions, long>();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency, EmbeddingGradOptions.Accumulate, EmbeddingGradOptions.ScaleGradByFrequency | EmbeddingGradOptions.Accumulate })
            {
                data.Add(width, options, EmbeddingPrimitives.NoPadding);
                data.Add(width, options, 3);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void EmbeddingBackward_MatchesReferenceForEveryDimension(VectorWidth width, EmbeddingGradOptions options, long paddingIndex)
    {
        foreach (int dim in TestData.Dims)
        {
            int count = dim > 1000 ? 40 : 200;
            TIndex[] indices = TestData.Indices<TIndex>(count, Rows, seed: dim);
            indices[1] = TIndex.CreateTruncating(3);
            float[] gradOutput = Gradient(count, dim, seed: dim + 1);
            float[] initial = Gradient(Rows, dim, seed: dim + 2);

            float[] expected = (float[])initial.Clone();
            Assert.Equal(-1, BackwardReference.EmbeddingBackward<TIndex>(gradOutput, indices, dim, expected, paddingIndex, options));

            float[] actual = TestData.Guarded(Rows * dim);
            initial.CopyTo(actual, 0);
            EmbeddingPrimitives.EmbeddingBackward<TIndex>(gradOutput, indices, dim, actual.AsSpan(0, Rows * dim), paddingIndex, options, width);

            TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"dim {dim}, width {width}, {options}, padding {paddingIndex}");
            AssertSentinels(actual, expected.Length);
            if (paddingIndex >= 0 && (options & EmbeddingGradOptions.Accumulate) == 0)
            {
                Assert.All(actual.AsSpan((int)paddingIndex * dim, dim).ToArray(), value => Assert.Equal(0, BitConverter.SingleToInt32Bits(value)));
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void ScatterAdd_UsesSpecialisedKernelForEverySpecialisedDimension(VectorWidth width)
    {
        foreach (int dim in TestData.SpecialisedDims)
        {
            VectorWidth fitted = KernelDispatch.FitWidth(width, dim);
            Delegate? kernel = KernelDispatch.Specialised(new KernelKey(KernelOperation.ScatterAdd, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), dim, fitted));
            Assert.True(kernel is not null, $"no specialised scatter-add kernel for dim {dim} at {fitted}");
        }

        Delegate? generic = KernelDispatch.Specialised(new KernelKey(KernelOperation.ScatterAdd, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), 301, width));
        Assert.Null(generic);
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void EmbeddingBackward_AccumulatesDuplicateIndicesInPositionOrder(VectorWidth width)
    {
        // 1e8 + 1 + ... is order-sensitive in float: any reordering of the duplicates shows.
        const int dim = 19;
        TIndex[] indices = Enumerable.Range(0, 9).Select(i => TIndex.CreateTruncating(i % 2)).ToArray();
        float[] gradOutput = new float[9 * dim];
        for (int i = 0; i < 9; i++)
        {
            gradOutput.AsSpan(i * dim, dim).Fill(i < 2 ? 1e8f : (i % 3 == 0 ? -1e8f : 3f));
        }

        float[] expected = new float[2 * dim];
        BackwardReference.EmbeddingBackward<TIndex>(gradOutput, indices, dim, expected, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None);
        float[] actual = new float[2 * dim];
        EmbeddingPrimitives.EmbeddingBackward<TIndex>(gradOutput, indices, dim, actual, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, width);
        TestAssert.BitEqual(expected, actual, $"width {width}");
        float sequential = 0f;
        for (int i = 0; i < 9; i += 2)
        {
            sequential += gradOutput[i * dim];
        }

        Assert.Equal(sequential, actual[0]);
    }

    [Fact]
    public void EmbeddingBackward_MatchesTorchDocumentedExamples()
    {
        TIndex[] indices = new[] { 0, 2, 2, 1, 2, 0 }.Select(TIndex.CreateTruncating).ToArray();
        float[] gradOutput = Enumerable.Range(0, 18).Select(i => (float)i).ToArray();
        float[] grad = new float[12];

        EmbeddingPrimitives.EmbeddingBackward<TIndex>(gradOutput, indices, 3, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth);
        Assert.Equal([15f, 17, 19, 9, 10, 11, 21, 24, 27, 0, 0, 0], grad);

        EmbeddingPrimitives.EmbeddingBackward<TIndex>(gradOutput, indices, 3, grad, 2, EmbeddingGradOptions.None, KernelDispatch.BestWidth);
        Assert.Equal([15f, 17, 19, 9, 10, 11, 0, 0, 0, 0, 0, 0], grad);

        EmbeddingPrimitives.EmbeddingBackward<TIndex>(gradOutput, indices, 3, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.ScaleGradByFrequency, KernelDispatch.BestWidth);
        Assert.Equal([7.5f, 8.5f, 9.5f], grad[..3]);
        Assert.Equal([7f, 8, 9], grad[6..9]);

        // Padding positions are counted but contribute nothing: idx [0, 0, 1], padding 0, ones.
        float[] small = new float[4];
        TIndex[] padded = [TIndex.Zero, TIndex.Zero, TIndex.One];
        EmbeddingPrimitives.EmbeddingBackward<TIndex>([1f, 1, 1, 1, 1, 1], padded, 2, small, 0, EmbeddingGradOptions.ScaleGradByFrequency, KernelDispatch.BestWidth);
        Assert.Equal([0f, 0, 1, 1], small);
    }

    [Fact]
    public void EmbeddingBackward_OverwritesUnlessAccumulating()
    {
        TIndex[] indices = [TIndex.One, TIndex.One];
        float[] grad = [5f, 5, 5, 5];
        EmbeddingPrimitives.EmbeddingBackward<TIndex>([1f, 2, 3, 4], indices, 2, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth);
        Assert.Equal([0f, 0, 4, 6], grad);
        EmbeddingPrimitives.EmbeddingBackward<TIndex>([1f, 2, 3, 4], indices, 2, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.Accumulate, KernelDispatch.BestWidth);
        Assert.Equal([0f, 0, 8, 12], grad);
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void EmbeddingBackward_ThrowsForOutOfRangeIndexAndWritesNothing(VectorWidth width)
    {
        const int dim = 16;
        foreach (int badPosition in new[] { 0, 7, 40 })
        {
            foreach (long badValue in new long[] { Rows, -1, int.MinValue })
            {
                TIndex[] indices = TestData.Indices<TIndex>(41, Rows, seed: badPosition);
                indices[badPosition] = TIndex.CreateTruncating(badValue);
                float[] grad = TestData.Guarded(0, guard: Rows * dim);
                foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
                {
                    var error = Assert.Throws<ArgumentOutOfRangeException>(() =>
                        EmbeddingPrimitives.EmbeddingBackward<TIndex>(Gradient(41, dim, 1), indices, dim, grad, EmbeddingPrimitives.NoPadding, options, width));
                    Assert.Equal("indices", error.ParamName);
                    Assert.Contains($"index {badValue} at position {badPosition}", error.Message);
                    AssertSentinels(grad, 0);
                }
            }
        }
    }

    [Fact]
    public void EmbeddingBackward_ThrowsForBadArgumentsBeforeWriting()
    {
        TIndex[] indices = [TIndex.One, TIndex.Zero];
        float[] grad = TestData.Guarded(0, guard: 8);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(new float[4], indices, 2, grad, 4, EmbeddingGradOptions.None, VectorWidth.Scalar));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(new float[4], indices, 2, grad, -2, EmbeddingGradOptions.None, VectorWidth.Scalar));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(new float[4], indices, 2, grad, -1, (EmbeddingGradOptions)4, VectorWidth.Scalar));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(new float[4], indices, 0, grad, -1, EmbeddingGradOptions.None, VectorWidth.Scalar));
        Assert.Equal("gradOutput", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(new float[5], indices, 2, grad, -1, EmbeddingGradOptions.None, VectorWidth.Scalar)).ParamName);
        Assert.Equal("gradWeight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(new float[4], indices, 3, grad, -1, EmbeddingGradOptions.None, VectorWidth.Scalar)).ParamName);
        Assert.Equal("gradWeight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBackward<TIndex>(grad.AsSpan(0, 4), indices, 2, grad, -1, EmbeddingGradOptions.None, VectorWidth.Scalar)).ParamName);
        AssertSentinels(grad, 0);
    }

    [Fact]
    public void EmbeddingSparseBackward_KeepsTorchsUncoalescedLayout()
    {
        TIndex[] indices = new[] { 0, 2, 2, 1, 2, 0 }.Select(TIndex.CreateTruncating).ToArray();
        float[] gradOutput = Enumerable.Range(0, 18).Select(i => (float)i).ToArray();
        long[] rows = new long[8];
        float[] values = TestData.Guarded(18);

        Assert.Equal(6, EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 3, 4, rows, values.AsSpan(0, 18), EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None));
        Assert.Equal([0L, 2, 2, 1, 2, 0], rows[..6]);
        Assert.Equal(gradOutput, values[..18]);

        Assert.Equal(3, EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 3, 4, rows, values.AsSpan(0, 18), 2, EmbeddingGradOptions.None));
        Assert.Equal([0L, 1, 0], rows[..3]);
        Assert.Equal([0f, 1, 2, 9, 10, 11, 15, 16, 17], values[..9]);
        AssertSentinels(values, 18);

        Assert.Equal(0, EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput.AsSpan(0, 6), indices.AsSpan(1, 2), 3, 4, [], [], 2, EmbeddingGradOptions.None));
        Assert.Equal(0, EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>([], [], 3, 4, [], [], EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(16)]
    [InlineData(37)]
    [InlineData(300)]
    public void EmbeddingSparseBackward_MatchesReference(int dim)
    {
        foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
        {
            TIndex[] indices = TestData.Indices<TIndex>(200, Rows, seed: dim);
            float[] gradOutput = Gradient(200, dim, seed: dim);
            long[] expectedRows = new long[200];
            float[] expectedValues = new float[200 * dim];
            Assert.Equal(-1, BackwardReference.EmbeddingSparseBackward<TIndex>(gradOutput, indices, dim, Rows, expectedRows, expectedValues, 0, options, out int expectedCount));

            long[] rows = new long[200];
            float[] values = TestData.Guarded(200 * dim);
            int count = EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, dim, Rows, rows, values.AsSpan(0, 200 * dim), 0, options);
            Assert.Equal(expectedCount, count);
            Assert.Equal(expectedRows[..count], rows[..count]);
            TestAssert.BitEqual(expectedValues.AsSpan(0, count * dim), values.AsSpan(0, count * dim), $"dim {dim} {options}");
            AssertSentinels(values, 200 * dim);
        }
    }

    [Fact]
    public void EmbeddingSparseBackward_ThrowsForShortOutputsAndBadArgumentsAndWritesNothing()
    {
        TIndex[] indices = [TIndex.One, TIndex.Zero, TIndex.One];
        float[] gradOutput = [1f, 2, 3, 4, 5, 6];
        long[] rows = [-7, -7, -7];
        float[] values = TestData.Guarded(0, guard: 6);

        Assert.Equal("rows", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 2, 2, rows.AsSpan(0, 2), values, -1, EmbeddingGradOptions.None)).ParamName);
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 2, 2, rows, values.AsSpan(0, 5), -1, EmbeddingGradOptions.None)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 2, 2, rows, values, -1, EmbeddingGradOptions.Accumulate));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 2, 1, rows, values, -1, EmbeddingGradOptions.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 2, 2, rows, values, 2, EmbeddingGradOptions.None));
        Assert.Equal([-7L, -7, -7], rows);
        AssertSentinels(values, 0);

        // Padding frees room: two entries fit in two slots.
        Assert.Equal(2, EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, 2, 2, rows.AsSpan(0, 2), values.AsSpan(0, 4), 0, EmbeddingGradOptions.None));
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void SparseCoalesce_OfSparseGradientEqualsDenseGradientBitForBit(VectorWidth width)
    {
        foreach (int dim in new[] { 1, 3, 8, 17, 64, 100, 301, 1025 })
        {
            const int rowsInTable = 50;
            TIndex[] indices = TestData.Indices<TIndex>(300, rowsInTable, seed: dim);
            float[] gradOutput = Gradient(300, dim, seed: dim);
            long[] rows = new long[300];
            float[] values = new float[300 * dim];
            int nnz = EmbeddingPrimitives.EmbeddingSparseBackward<TIndex>(gradOutput, indices, dim, rowsInTable, rows, values, 5, EmbeddingGradOptions.None);

            long[] unique = new long[nnz];
            float[] sums = TestData.Guarded(nnz * dim);
            int count = EmbeddingPrimitives.SparseCoalesce(rows.AsSpan(0, nnz), values.AsSpan(0, nnz * dim), dim, rowsInTable, unique, sums.AsSpan(0, nnz * dim), width);
            AssertSentinels(sums, nnz * dim);

            long[] expectedRows = new long[nnz];
            float[] expectedSums = new float[nnz * dim];
            Assert.Equal(BackwardReference.SparseCoalesce(rows.AsSpan(0, nnz), values.AsSpan(0, nnz * dim), dim, expectedRows, expectedSums), count);
            Assert.Equal(expectedRows[..count], unique[..count]);
            Assert.Equal(unique[..count].Order().Distinct().ToArray(), unique[..count]);
            TestAssert.BitEqual(expectedSums.AsSpan(0, count * dim), sums.AsSpan(0, count * dim), $"dim {dim}, {width}");

            float[] dense = new float[rowsInTable * dim];
            EmbeddingPrimitives.EmbeddingBackward<TIndex>(gradOutput, indices, dim, dense, 5, EmbeddingGradOptions.None, width);
            for (int j = 0; j < count; j++)
            {
                TestAssert.BitEqual(dense.AsSpan((int)unique[j] * dim, dim), sums.AsSpan(j * dim, dim), $"row {unique[j]}, dim {dim}, {width}");
            }
        }
    }

    [Fact]
    public void SparseCoalesce_SortsRowsAndSumsInEntryOrder()
    {
        long[] rows = [4, 1, 4, 0, 1, 4];
        float[] values = [1e8f, 1, 1, 7, -1, -1e8f];
        long[] unique = new long[3];
        float[] sums = new float[3];
        Assert.Equal(3, EmbeddingPrimitives.SparseCoalesce(rows, values, 1, 5, unique, sums));
        Assert.Equal([0L, 1, 4], unique);
        Assert.Equal([7f, 0f, (1e8f + 1f) - 1e8f], sums);
        Assert.Equal(0, BitConverter.SingleToInt32Bits(sums[1]));

        long[] guard = [-9, -9];
        float[] guardSums = TestData.Guarded(0, guard: 3);
        Assert.Equal("uniqueRows", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SparseCoalesce(rows, values, 1, 5, guard, guardSums)).ParamName);
        Assert.Equal("rows", Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.SparseCoalesce(rows, values, 1, 4, new long[3], guardSums)).ParamName);
        Assert.Equal([-9L, -9], guard);
        AssertSentinels(guardSums, 0);
        Assert.Equal(0, EmbeddingPrimitives.SparseCoalesce([], ReadOnlySpan<float>.Empty, 3, 0, [], []));
    }

    /// <summary>Signed values of mixed magnitude, so every rounding and ordering difference shows.</summary>
    internal static float[] Gradient(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        float[] values = new float[rows * dim];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-8, 9)));
        }

        return values;
    }

    internal static void AssertSentinels(float[] buffer, int start)
    {
        for (int i = start; i < buffer.Length; i++)
        {
            Assert.True(BitConverter.SingleToInt32Bits(buffer[i]) == BitConverter.SingleToInt32Bits(TestData.Sentinel), $"element {i} (guard {i - start}) was overwritten");
        }
    }
}

public sealed class BackwardKernelTestsInt32 : BackwardKernelTests<int>
{
}

public sealed class BackwardKernelTestsInt64 : BackwardKernelTests<long>
{
}
