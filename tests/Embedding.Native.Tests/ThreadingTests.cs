using System;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Every parallelised operation gives the same bits on 2, 3 and 4 threads as on one, on inputs large
/// enough to be split (duplicate-heavy indices for the backward passes, so a row's contributions
/// would come out in another order if a split broke position order), and allocates nothing per call.
/// </summary>
/// <remarks>
/// The thread count is passed to the internal overloads, never set process-wide: tests run in
/// parallel. <see cref="ThreadCountExportTests"/> alone sets it, in a non-parallel collection.
/// </remarks>
public sealed class ThreadingTests
{
    public static TheoryData<int> ThreadCounts => [2, 3, 4];

    private const int Rows = 4000;

    /// <summary>Gradients of mixed sign and magnitude: float sums of them depend on the order.</summary>
    private static float[] Gradients(int length, int seed)
    {
        var random = new Random(seed);
        var values = new float[length];
        for (int i = 0; i < length; i++)
        {
            values[i] = (float)(random.NextDouble() * 2 - 1) * MathF.ScaleB(1f, random.Next(-10, 10));
        }

        return values;
    }

    /// <summary>Indices concentrated on a few hot rows (half the positions name one of 16 rows), the rest spread over the table.</summary>
    private static TIndex[] HotIndices<TIndex>(int count, int rows, int seed)
        where TIndex : System.Numerics.IBinaryInteger<TIndex>
    {
        var random = new Random(seed);
        var indices = new TIndex[count];
        for (int i = 0; i < count; i++)
        {
            int row = random.Next(2) == 0 ? random.Next(16) * (rows / 16) : random.Next(rows);
            indices[i] = TIndex.CreateTruncating(row);
        }

        indices[count - 1] = TIndex.CreateTruncating(rows - 1);
        return indices;
    }

    /// <summary>Offsets of bags of 0 to 40 positions (empty bags included), starting at 0.</summary>
    private static long[] Offsets(int positions, int seed)
    {
        var random = new Random(seed);
        var offsets = new System.Collections.Generic.List<long> { 0 };
        long at = 0;
        while (true)
        {
            at += random.Next(41);
            if (at >= positions)
            {
                break;
            }

            offsets.Add(at);
        }

        return [.. offsets];
    }

    private static void AssertSplits(long usefulBytes, long parts, int threads) =>
        Assert.True(EmbeddingThreads.For(usefulBytes, parts, threads) == threads, $"the input is too small to use {threads} threads");

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void Gather_IsBitIdentical(int threads)
    {
        foreach (int dim in new[] { 64, 5, 300 })
        {
            int count = 40_000;
            float[] table = TestData.Table(Rows, dim, seed: dim);
            int[] indices32 = TestData.Indices<int>(count, Rows, seed: 1);
            long[] indices64 = TestData.Indices<long>(count, Rows, seed: 2);
            AssertSplits(8L * dim * count, count, threads);

            float[] one = new float[count * dim], many = new float[count * dim];
            EmbeddingPrimitives.Embedding<float, int>(indices32, table, dim, one, KernelDispatch.BestWidth, threads: 1);
            EmbeddingPrimitives.Embedding<float, int>(indices32, table, dim, many, KernelDispatch.BestWidth, threads);
            TestAssert.BitEqual(one, many, $"int32 gather, D={dim}, {threads} threads");

            EmbeddingPrimitives.Embedding<float, long>(indices64, table, dim, one, KernelDispatch.BestWidth, threads: 1);
            EmbeddingPrimitives.Embedding<float, long>(indices64, table, dim, many, KernelDispatch.BestWidth, threads);
            TestAssert.BitEqual(one, many, $"int64 gather, D={dim}, {threads} threads");
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void Bag_IsBitIdentical(int threads)
    {
        const int positions = 40_000;
        foreach (int dim in new[] { 64, 7 })
        {
            float[] table = Gradients(Rows * dim, seed: dim);
            int[] indices = HotIndices<int>(positions, Rows, seed: 3);
            long[] offsets = Offsets(positions, seed: 4);
            float[] weights = Gradients(positions, seed: 5);
            int bags = offsets.Length;
            foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
            {
                foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
                {
                    foreach (bool weighted in mode == EmbeddingBagMode.Sum ? new[] { false, true } : new[] { false })
                    {
                        string context = $"bag {mode}, D={dim}, padding {padding}, weighted {weighted}, {threads} threads";
                        float[] one = new float[bags * dim], many = new float[bags * dim];
                        long[] maxOne = new long[bags * dim], maxMany = new long[bags * dim];
                        ReadOnlySpan<float> psw = weighted ? weights : default;
                        EmbeddingPrimitives.EmbeddingBag<int, long>(indices, offsets, table, dim, mode, one, false, psw, padding, maxOne, KernelDispatch.BestWidth, threads: 1);
                        EmbeddingPrimitives.EmbeddingBag<int, long>(indices, offsets, table, dim, mode, many, false, psw, padding, maxMany, KernelDispatch.BestWidth, threads);
                        TestAssert.BitEqual(one, many, context);
                        if (mode == EmbeddingBagMode.Max)
                        {
                            Assert.Equal(maxOne, maxMany);
                        }
                    }
                }
            }

            // Fixed-size bags of 32, int64 indices.
            long[] fixedIndices = TestData.Indices<long>(32 * 1024, Rows, seed: 6);
            float[] fixedOne = new float[1024 * dim], fixedMany = new float[1024 * dim];
            EmbeddingPrimitives.EmbeddingBag<long>(fixedIndices, 32, table, dim, EmbeddingBagMode.Sum, fixedOne, default, EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth, threads: 1);
            EmbeddingPrimitives.EmbeddingBag<long>(fixedIndices, 32, table, dim, EmbeddingBagMode.Sum, fixedMany, default, EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth, threads);
            TestAssert.BitEqual(fixedOne, fixedMany, $"fixed bags, D={dim}, {threads} threads");
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void DenseBackward_IsBitIdentical(int threads)
    {
        const int count = 30_000;
        foreach (int dim in new[] { 64, 33 })
        {
            float[] gradOutput = Gradients(count * dim, seed: dim);
            int[] indices32 = HotIndices<int>(count, Rows, seed: 7);
            long[] indices64 = HotIndices<long>(count, Rows, seed: 8);
            float[] start = Gradients(Rows * dim, seed: 9);
            AssertSplits(4L * dim * 3 * count, Rows, threads);
            foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency, EmbeddingGradOptions.Accumulate, EmbeddingGradOptions.Accumulate | EmbeddingGradOptions.ScaleGradByFrequency })
            {
                foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
                {
                    string context = $"dense backward {options}, D={dim}, padding {padding}, {threads} threads";
                    float[] one = (float[])start.Clone(), many = (float[])start.Clone();
                    EmbeddingPrimitives.EmbeddingBackward<int>(gradOutput, indices32, dim, one, padding, options, KernelDispatch.BestWidth, threads: 1);
                    EmbeddingPrimitives.EmbeddingBackward<int>(gradOutput, indices32, dim, many, padding, options, KernelDispatch.BestWidth, threads);
                    TestAssert.BitEqual(one, many, "int32 " + context);

                    one = (float[])start.Clone();
                    many = (float[])start.Clone();
                    EmbeddingPrimitives.EmbeddingBackward<long>(gradOutput, indices64, dim, one, padding, options, KernelDispatch.BestWidth, threads: 1);
                    EmbeddingPrimitives.EmbeddingBackward<long>(gradOutput, indices64, dim, many, padding, options, KernelDispatch.BestWidth, threads);
                    TestAssert.BitEqual(one, many, "int64 " + context);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void DenseBackward_ZeroFillAloneIsSplit(int threads)
    {
        // No positions: the call only zeroes the gradient, by row range.
        const int dim = 64;
        float[] one = Gradients(Rows * 4 * dim, seed: 1), many = Gradients(Rows * 4 * dim, seed: 1);
        EmbeddingPrimitives.EmbeddingBackward<int>(default, default, dim, one, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth, threads: 1);
        EmbeddingPrimitives.EmbeddingBackward<int>(default, default, dim, many, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth, threads);
        TestAssert.BitEqual(one, many, $"zero fill, {threads} threads");
        Assert.All(many, value => Assert.Equal(0, BitConverter.SingleToInt32Bits(value)));
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagBackward_IsBitIdentical(int threads)
    {
        const int positions = 40_000;
        foreach (int dim in new[] { 64, 7 })
        {
            int[] indices = HotIndices<int>(positions, Rows, seed: 10);
            long[] offsets = Offsets(positions, seed: 11);
            int bags = offsets.Length;
            float[] gradOutput = Gradients(bags * dim, seed: 12);
            float[] weights = Gradients(positions, seed: 13);
            float[] table = Gradients(Rows * dim, seed: 14);
            float[] start = Gradients(Rows * dim, seed: 15);
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
            {
                long[] maxIndices = new long[bags * dim];
                EmbeddingPrimitives.EmbeddingBag<int, long>(indices, offsets, table, dim, EmbeddingBagMode.Max, new float[bags * dim], false, default, padding, maxIndices, KernelDispatch.BestWidth, threads: 1);
                foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
                {
                    foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.Accumulate, EmbeddingGradOptions.ScaleGradByFrequency })
                    {
                        if (mode == EmbeddingBagMode.Max && options == EmbeddingGradOptions.ScaleGradByFrequency)
                        {
                            continue;
                        }

                        foreach (bool weighted in mode == EmbeddingBagMode.Sum ? new[] { false, true } : new[] { false })
                        {
                            string context = $"bag backward {mode} {options}, D={dim}, padding {padding}, weighted {weighted}, {threads} threads";
                            ReadOnlySpan<float> psw = weighted ? weights : default;
                            ReadOnlySpan<long> argMax = mode == EmbeddingBagMode.Max ? maxIndices : default;
                            float[] one = (float[])start.Clone(), many = (float[])start.Clone();
                            EmbeddingPrimitives.EmbeddingBagBackward<int, long>(gradOutput, indices, offsets, dim, mode, one, false, psw, padding, argMax, options, KernelDispatch.BestWidth, threads: 1);
                            EmbeddingPrimitives.EmbeddingBagBackward<int, long>(gradOutput, indices, offsets, dim, mode, many, false, psw, padding, argMax, options, KernelDispatch.BestWidth, threads);
                            TestAssert.BitEqual(one, many, context);
                        }
                    }
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void SparseBackward_IsBitIdentical(int threads)
    {
        const int count = 30_000, dim = 64;
        float[] gradOutput = Gradients(count * dim, seed: 16);
        long[] indices = HotIndices<long>(count, Rows, seed: 17);
        foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
        {
            foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
            {
                string context = $"sparse backward {options}, padding {padding}, {threads} threads";
                long[] rowsOne = new long[count], rowsMany = new long[count];
                float[] valuesOne = new float[count * dim], valuesMany = new float[count * dim];
                int nnzOne = EmbeddingPrimitives.EmbeddingSparseBackward<long>(gradOutput, indices, dim, Rows, rowsOne, valuesOne, padding, options, threads: 1);
                int nnzMany = EmbeddingPrimitives.EmbeddingSparseBackward<long>(gradOutput, indices, dim, Rows, rowsMany, valuesMany, padding, options, threads);
                Assert.Equal(nnzOne, nnzMany);
                Assert.Equal(rowsOne, rowsMany);
                TestAssert.BitEqual(valuesOne, valuesMany, context);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagSparseBackward_IsBitIdentical(int threads)
    {
        const int positions = 40_000, dim = 64;
        int[] indices = HotIndices<int>(positions, Rows, seed: 18);
        long[] offsets = Offsets(positions, seed: 19);
        int bags = offsets.Length;
        float[] gradOutput = Gradients(bags * dim, seed: 20);
        float[] weights = Gradients(positions, seed: 21);
        foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
        {
            foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean })
            {
                foreach (bool weighted in mode == EmbeddingBagMode.Sum ? new[] { false, true } : new[] { false })
                {
                    string context = $"bag sparse backward {mode}, padding {padding}, weighted {weighted}, {threads} threads";
                    ReadOnlySpan<float> psw = weighted ? weights : default;
                    long[] rowsOne = new long[positions], rowsMany = new long[positions];
                    float[] valuesOne = new float[positions * dim], valuesMany = new float[positions * dim];
                    int nnzOne = EmbeddingPrimitives.EmbeddingBagSparseBackward<int, long>(gradOutput, indices, offsets, dim, Rows, mode, rowsOne, valuesOne, false, psw, padding, EmbeddingGradOptions.ScaleGradByFrequency, KernelDispatch.BestWidth, threads: 1);
                    int nnzMany = EmbeddingPrimitives.EmbeddingBagSparseBackward<int, long>(gradOutput, indices, offsets, dim, Rows, mode, rowsMany, valuesMany, false, psw, padding, EmbeddingGradOptions.ScaleGradByFrequency, KernelDispatch.BestWidth, threads);
                    Assert.Equal(nnzOne, nnzMany);
                    Assert.Equal(rowsOne, rowsMany);
                    TestAssert.BitEqual(valuesOne, valuesMany, context);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagPerSampleWeightsBackward_IsBitIdentical(int threads) => BagPerSampleWeightsBackwardOf<float>(threads);

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagBackwardFloat64_IsBitIdentical(int threads) => BagBackwardOf<double>(threads);

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagBackwardFloat16_IsBitIdentical(int threads) => BagBackwardOf<Half>(threads);

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagSparseBackwardFloat64_IsBitIdentical(int threads) => BagSparseBackwardOf<double>(threads);

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagSparseBackwardFloat16_IsBitIdentical(int threads) => BagSparseBackwardOf<Half>(threads);

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagPerSampleWeightsBackwardFloat64_IsBitIdentical(int threads) => BagPerSampleWeightsBackwardOf<double>(threads);

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void BagPerSampleWeightsBackwardFloat16_IsBitIdentical(int threads) => BagPerSampleWeightsBackwardOf<Half>(threads);

    /// <summary><see cref="Gradients"/> as a table type (float16 rounds each; its sums still depend on the order).</summary>
    private static T[] Gradients<T>(int length, int seed)
        where T : unmanaged
    {
        float[] values = Gradients(length, seed);
        var result = new T[length];
        for (int i = 0; i < length; i++)
        {
            result[i] = typeof(T) == typeof(Half) ? (T)(object)(Half)values[i] : typeof(T) == typeof(double) ? (T)(object)(double)values[i] : (T)(object)values[i];
        }

        return result;
    }

    private static void BitEqual<T>(T[] expected, T[] actual, string context)
        where T : unmanaged
    {
        Assert.True(expected.Length == actual.Length, $"{context}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            if (!System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected.AsSpan(i, 1)).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(actual.AsSpan(i, 1))))
            {
                Assert.Fail($"{context}: element {i} is {actual[i]}, expected {expected[i]}");
            }
        }
    }

    private static unsafe void BagBackwardOf<T>(int threads)
        where T : unmanaged
    {
        const int positions = 40_000;
        foreach (int dim in new[] { 64, 7 })
        {
            int[] indices = HotIndices<int>(positions, Rows, seed: 30);
            long[] offsets = Offsets(positions, seed: 31);
            int bags = offsets.Length;
            T[] gradOutput = Gradients<T>(bags * dim, seed: 32);
            T[] weights = Gradients<T>(positions, seed: 33);
            T[] table = Gradients<T>(Rows * dim, seed: 34);
            T[] start = Gradients<T>(Rows * dim, seed: 35);
            AssertSplits(sizeof(T) * dim * 3L * positions, Rows, threads);
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
            {
                long[] maxIndices = new long[bags * dim];
                EmbeddingPrimitives.EmbeddingBagAtWidth<T, int, long>(indices, offsets, table, dim, EmbeddingBagMode.Max, new T[bags * dim], false, default, padding, maxIndices, KernelDispatch.BestWidth, threads: 1);
                foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean, EmbeddingBagMode.Max })
                {
                    foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.Accumulate, EmbeddingGradOptions.ScaleGradByFrequency })
                    {
                        if (mode == EmbeddingBagMode.Max && options == EmbeddingGradOptions.ScaleGradByFrequency)
                        {
                            continue;
                        }

                        foreach (bool weighted in mode == EmbeddingBagMode.Sum ? new[] { false, true } : new[] { false })
                        {
                            string context = $"{typeof(T).Name} bag backward {mode} {options}, D={dim}, padding {padding}, weighted {weighted}, {threads} threads";
                            ReadOnlySpan<T> psw = weighted ? weights : default;
                            ReadOnlySpan<long> argMax = mode == EmbeddingBagMode.Max ? maxIndices : default;
                            T[] one = (T[])start.Clone(), many = (T[])start.Clone();
                            EmbeddingPrimitives.EmbeddingBagBackwardAtWidth<T, int, long>(gradOutput, indices, offsets, dim, mode, one, false, psw, padding, argMax, options, KernelDispatch.BestWidth, threads: 1);
                            EmbeddingPrimitives.EmbeddingBagBackwardAtWidth<T, int, long>(gradOutput, indices, offsets, dim, mode, many, false, psw, padding, argMax, options, KernelDispatch.BestWidth, threads);
                            BitEqual(one, many, context);
                        }
                    }
                }
            }
        }
    }

    private static unsafe void BagSparseBackwardOf<T>(int threads)
        where T : unmanaged
    {
        const int positions = 60_000;
        foreach (int dim in new[] { 64, 7 })
        {
            int[] indices = HotIndices<int>(positions, Rows, seed: 36);
            long[] offsets = Offsets(positions, seed: 37);
            T[] gradOutput = Gradients<T>(offsets.Length * dim, seed: 38);
            T[] weights = Gradients<T>(positions, seed: 39);
            AssertSplits(2L * sizeof(T) * dim * (positions - positions / 16), offsets.Length, threads);
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
            {
                foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean })
                {
                    foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
                    {
                        foreach (bool weighted in mode == EmbeddingBagMode.Sum ? new[] { false, true } : new[] { false })
                        {
                            string context = $"{typeof(T).Name} bag sparse backward {mode} {options}, D={dim}, padding {padding}, weighted {weighted}, {threads} threads";
                            ReadOnlySpan<T> psw = weighted ? weights : default;
                            long[] rowsOne = new long[positions], rowsMany = new long[positions];
                            T[] valuesOne = new T[positions * dim], valuesMany = new T[positions * dim];
                            int nnzOne = EmbeddingPrimitives.EmbeddingBagSparseBackwardAtWidth<T, int, long>(gradOutput, indices, offsets, dim, Rows, mode, rowsOne, valuesOne, false, psw, padding, options, KernelDispatch.BestWidth, threads: 1);
                            int nnzMany = EmbeddingPrimitives.EmbeddingBagSparseBackwardAtWidth<T, int, long>(gradOutput, indices, offsets, dim, Rows, mode, rowsMany, valuesMany, false, psw, padding, options, KernelDispatch.BestWidth, threads);
                            Assert.Equal(nnzOne, nnzMany);
                            Assert.Equal(rowsOne, rowsMany);
                            BitEqual(valuesOne, valuesMany, context);
                        }
                    }
                }
            }
        }
    }

    private static unsafe void BagPerSampleWeightsBackwardOf<T>(int threads)
        where T : unmanaged
    {
        const int positions = 40_000;
        foreach (int dim in new[] { 64, 7 })
        {
            int[] indices = HotIndices<int>(positions, Rows, seed: 40);
            long[] offsets = Offsets(positions, seed: 41);
            T[] gradOutput = Gradients<T>(offsets.Length * dim, seed: 42);
            T[] table = Gradients<T>(Rows * dim, seed: 43);
            AssertSplits(2L * sizeof(T) * dim * positions, offsets.Length, threads);
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
            {
                string context = $"{typeof(T).Name} per-sample-weights backward, D={dim}, padding {padding}, {threads} threads";
                T[] one = new T[positions], many = new T[positions];
                EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackwardOf<T, int, long>(gradOutput, table, indices, offsets, dim, EmbeddingBagMode.Sum, one, false, padding, threads: 1);
                EmbeddingPrimitives.EmbeddingBagPerSampleWeightsBackwardOf<T, int, long>(gradOutput, table, indices, offsets, dim, EmbeddingBagMode.Sum, many, false, padding, threads);
                BitEqual(one, many, context);
            }
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void Renorm_IsBitIdentical(int threads)
    {
        const int count = 40_000, dim = 64;
        float[] start = Gradients(Rows * dim, seed: 22);
        int[] indices = HotIndices<int>(count, Rows, seed: 23);
        foreach (double normType in new[] { 2.0, 1.0, 3.5 })
        {
            float[] one = (float[])start.Clone(), many = (float[])start.Clone();
            EmbeddingPrimitives.EmbeddingRenorm<int>(one, dim, indices, 1.5, normType, KernelDispatch.BestWidth, threads: 1);
            EmbeddingPrimitives.EmbeddingRenorm<int>(many, dim, indices, 1.5, normType, KernelDispatch.BestWidth, threads);
            TestAssert.BitEqual(one, many, $"renorm p={normType}, {threads} threads");
        }
    }

    [Theory]
    [MemberData(nameof(ThreadCounts))]
    public void OptimizerSteps_AreBitIdentical(int threads)
    {
        const int dim = 64, table = 3 * Rows;
        long[] rows = new long[2 * Rows];
        for (int j = 0; j < rows.Length; j++)
        {
            rows[j] = j + j / 2; // ascending, with gaps
        }

        float[] values = Gradients(rows.Length * dim, seed: 24);
        float[] weight = Gradients(table * dim, seed: 25);
        float[] state = Gradients(table * dim, seed: 26).AsSpan().ToArray();
        for (int i = 0; i < state.Length; i++)
        {
            state[i] = MathF.Abs(state[i]);
        }

        float[] rowState = new float[table];

        float[] w1 = (float[])weight.Clone(), wn = (float[])weight.Clone();
        EmbeddingPrimitives.SgdStep(w1, dim, rows, values, 0.1, 0.01, KernelDispatch.BestWidth, threads: 1);
        EmbeddingPrimitives.SgdStep(wn, dim, rows, values, 0.1, 0.01, KernelDispatch.BestWidth, threads);
        TestAssert.BitEqual(w1, wn, $"SGD, {threads} threads");

        w1 = (float[])weight.Clone();
        wn = (float[])weight.Clone();
        float[] s1 = (float[])state.Clone(), sn = (float[])state.Clone();
        EmbeddingPrimitives.AdagradStep(w1, s1, dim, rows, values, 0.1, 0.01, 1e-10, 3, KernelDispatch.BestWidth, threads: 1);
        EmbeddingPrimitives.AdagradStep(wn, sn, dim, rows, values, 0.1, 0.01, 1e-10, 3, KernelDispatch.BestWidth, threads);
        TestAssert.BitEqual(w1, wn, $"Adagrad weight, {threads} threads");
        TestAssert.BitEqual(s1, sn, $"Adagrad state, {threads} threads");

        w1 = (float[])weight.Clone();
        wn = (float[])weight.Clone();
        float[] m1 = (float[])rowState.Clone(), mn = (float[])rowState.Clone();
        EmbeddingPrimitives.RowwiseAdagradStep(w1, m1, dim, rows, values, 0.1, 1e-8, KernelDispatch.BestWidth, threads: 1);
        EmbeddingPrimitives.RowwiseAdagradStep(wn, mn, dim, rows, values, 0.1, 1e-8, KernelDispatch.BestWidth, threads);
        TestAssert.BitEqual(w1, wn, $"row-wise Adagrad weight, {threads} threads");
        TestAssert.BitEqual(m1, mn, $"row-wise Adagrad momentum, {threads} threads");

        w1 = (float[])weight.Clone();
        wn = (float[])weight.Clone();
        float[] a1 = Gradients(table * dim, seed: 27), an = (float[])a1.Clone();
        float[] v1 = (float[])state.Clone(), vn = (float[])state.Clone();
        EmbeddingPrimitives.SparseAdamStep(w1, a1, v1, dim, rows, values, 0.01, 0.9, 0.999, 1e-8, 2, KernelDispatch.BestWidth, threads: 1);
        EmbeddingPrimitives.SparseAdamStep(wn, an, vn, dim, rows, values, 0.01, 0.9, 0.999, 1e-8, 2, KernelDispatch.BestWidth, threads);
        TestAssert.BitEqual(w1, wn, $"SparseAdam weight, {threads} threads");
        TestAssert.BitEqual(a1, an, $"SparseAdam exp_avg, {threads} threads");
        TestAssert.BitEqual(v1, vn, $"SparseAdam exp_avg_sq, {threads} threads");
    }

    [Fact]
    public void SmallCalls_StayOnTheCallingThread()
    {
        // 100 rows of 64 floats read and written: 51 KiB, well under one thread's share.
        Assert.Equal(1, EmbeddingThreads.For(2L * 4 * 64 * 100, 100, threads: 4));
        Assert.Equal(2, EmbeddingThreads.For(EmbeddingThreads.MinBytesPerThread * 2, 100, threads: 4));
        Assert.Equal(4, EmbeddingThreads.For(1L << 40, 100, threads: 4));
        Assert.Equal(3, EmbeddingThreads.For(1L << 40, 3, threads: 4));
    }

    [Fact]
    public void ParallelCalls_AllocateNothingAfterWarmUp()
    {
        const int threads = 2, dim = 64, count = 20_000, positions = 20_000;
        float[] table = TestData.Table(Rows, dim, seed: 1);
        int[] indices = HotIndices<int>(count, Rows, seed: 2);
        float[] output = new float[count * dim];
        float[] gradOutput = Gradients(count * dim, seed: 3);
        float[] gradWeight = new float[Rows * dim];
        long[] offsets = Offsets(positions, seed: 4);
        int bags = offsets.Length;
        float[] bagOutput = new float[bags * dim];
        long[] maxIndices = new long[bags * dim];
        float[] bagGrad = Gradients(bags * dim, seed: 5);
        long[] sparseRows = new long[count];
        float[] sparseValues = new float[count * dim];
        long[] stepRows = new long[Rows];
        for (int j = 0; j < stepRows.Length; j++)
        {
            stepRows[j] = j;
        }

        float[] stepValues = Gradients(Rows * dim, seed: 6);
        float[] state = new float[Rows * dim];

        void Calls()
        {
            EmbeddingPrimitives.Embedding<float, int>(indices, table, dim, output, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.EmbeddingBackward<int>(gradOutput, indices, dim, gradWeight, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.ScaleGradByFrequency, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.EmbeddingSparseBackward<int>(gradOutput, indices, dim, Rows, sparseRows, sparseValues, 0, EmbeddingGradOptions.None, threads);
            EmbeddingPrimitives.EmbeddingBag<int, long>(indices, offsets, table, dim, EmbeddingBagMode.Max, bagOutput, false, default, EmbeddingPrimitives.NoPadding, maxIndices, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.EmbeddingBagBackward<int, long>(bagGrad, indices, offsets, dim, EmbeddingBagMode.Mean, gradWeight, false, default, EmbeddingPrimitives.NoPadding, default, EmbeddingGradOptions.Accumulate, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.EmbeddingBagBackward<int, long>(bagGrad, indices, offsets, dim, EmbeddingBagMode.Max, gradWeight, false, default, EmbeddingPrimitives.NoPadding, maxIndices, EmbeddingGradOptions.None, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.EmbeddingBagSparseBackward<int, long>(bagGrad, indices, offsets, dim, Rows, EmbeddingBagMode.Sum, sparseRows, sparseValues, false, default, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.EmbeddingRenorm<int>(table, dim, indices, 1e9, 2.0, KernelDispatch.BestWidth, threads);
            EmbeddingPrimitives.AdagradStep(gradWeight, state, dim, stepRows, stepValues, 0.0, 0.0, 1e-10, 1, KernelDispatch.BestWidth, threads);
        }

        for (int i = 0; i < 3; i++)
        {
            Calls();
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 5; i++)
            {
                Calls();
            }
        }));
    }
}

/// <summary>Tests that change the process-wide thread count run alone, so no other test sees it.</summary>
[CollectionDefinition(nameof(ProcessWideThreadCount), DisableParallelization = true)]
public sealed class ProcessWideThreadCount
{
}

/// <summary><c>emb_set_num_threads</c> / <c>emb_get_num_threads</c> through unmanaged function pointers.</summary>
[Collection(nameof(ProcessWideThreadCount))]
public sealed unsafe class ThreadCountExportTests
{
    private static readonly delegate* unmanaged<int, int> SetNumThreads = &NativeExports.SetNumThreads;
    private static readonly delegate* unmanaged<int> GetNumThreads = &NativeExports.GetNumThreads;

    [Fact]
    public void SetAndGet_RoundTripAndRejectOutOfRange()
    {
        Assert.Equal(1, GetNumThreads());
        try
        {
            Assert.Equal((int)EmbStatus.Ok, SetNumThreads(3));
            Assert.Equal(3, GetNumThreads());
            Assert.Equal(3, EmbeddingThreads.Count);

            foreach (int bad in new[] { 0, -1, 1025, int.MinValue })
            {
                Assert.Equal((int)EmbStatus.InvalidArgument, SetNumThreads(bad));
                Assert.Contains("num_threads", new string((sbyte*)NativeExports_LastError()));
                Assert.Equal(3, GetNumThreads());
            }

            Assert.Equal((int)EmbStatus.Ok, SetNumThreads(1024));
            Assert.Equal(1024, GetNumThreads());

            // The process-wide count reaches the public API: a large call splits and gives the same bits.
            Assert.Equal((int)EmbStatus.Ok, SetNumThreads(2));
            const int dim = 64, count = 20_000;
            float[] table = TestData.Table(1000, dim, seed: 1);
            int[] indices = TestData.Indices<int>(count, 1000, seed: 2);
            float[] many = new float[count * dim], one = new float[count * dim];
            EmbeddingPrimitives.Embedding(indices, table, dim, many);
            EmbeddingPrimitives.Embedding<float, int>(indices, table, dim, one, KernelDispatch.BestWidth, threads: 1);
            TestAssert.BitEqual(one, many, "public Embedding with emb_set_num_threads(2)");
        }
        finally
        {
            EmbeddingThreads.Count = 1;
        }

        Assert.Equal(1, GetNumThreads());
    }

    private static byte* NativeExports_LastError() => ((delegate* unmanaged<byte*>)&NativeExports.LastErrorMessage)();
}
