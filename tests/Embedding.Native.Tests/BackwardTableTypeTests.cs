using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The embedding backward (dense, sparse, coalesce) for float64, float16 and bfloat16 tables
/// (float32 is <see cref="BackwardKernelTests{TIndex}"/>): every dimension that hits every tail at
/// every width the process accelerates, duplicates, padding, empty inputs and 1 or 2 threads, each
/// bit for bit against a scalar model written from docs/table-types.md ("Embedding dense backward",
/// "Embedding sparse backward and coalesce"). The model is per type (<see cref="Add"/>,
/// <see cref="ScaledUpdate"/>, <see cref="Scaled"/>) and shares no code with the kernels.
/// </summary>
public abstract class BackwardTableTypeTests<T>
    where T : unmanaged
{
    private const int Rows = 11;

    private static readonly EmbeddingGradOptions[] DenseOptions =
    [
        EmbeddingGradOptions.None,
        EmbeddingGradOptions.ScaleGradByFrequency,
        EmbeddingGradOptions.Accumulate,
        EmbeddingGradOptions.Accumulate | EmbeddingGradOptions.ScaleGradByFrequency,
    ];

    /// <summary>Dims 1 … 2 × (widest float vector) + 1 and a few beyond, which also covers 2 × (widest vector of this element) + 1 for 8-byte elements; then 96, 127, 128, 300.</summary>
    public static TheoryData<int> Dims()
    {
        var data = new TheoryData<int>();
        foreach (int dim in Enumerable.Range(1, 70).Concat([96, 127, 128, 300]))
        {
            data.Add(dim);
        }

        return data;
    }

    /// <summary>The nearest value of the type to <paramref name="value"/> (16-bit types through float, as c10 converts).</summary>
    protected abstract T Round(double value);

    /// <summary>The bit pattern, for comparisons and messages.</summary>
    protected abstract ulong Bits(T value);

    /// <summary>The exact value, for magnitude checks.</summary>
    protected abstract double Value(T value);

    /// <summary>The unscaled update: <c>rd(acc + g)</c>, one rounding.</summary>
    protected abstract T Add(T acc, T g);

    /// <summary>The scale_grad_by_freq update of column <paramref name="column"/> of a row of <paramref name="dim"/>, for a row named <paramref name="count"/> times.</summary>
    protected abstract T ScaledUpdate(T acc, T g, int count, int column, int dim);

    /// <summary>A sparse value scaled by frequency: <c>rd(g · fl(1/count))</c>.</summary>
    protected abstract T Scaled(T g, int count);

    [Theory]
    [MemberData(nameof(Dims))]
    public void EmbeddingBackward_MatchesModelAtEveryWidthOptionAndPadding(int dim)
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (EmbeddingGradOptions options in DenseOptions)
            {
                foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 3 })
                {
                    CheckDense<int>(dim, 3 * Rows + dim % 7, options, padding, width, threads: 1);
                    CheckDense<long>(dim, 3 * Rows + dim % 7, options, padding, width, threads: 1);
                }
            }
        }
    }

    [Theory]
    [InlineData(33)]
    [InlineData(64)]
    [InlineData(70)]
    public void EmbeddingBackward_TwoThreadsGiveTheBitsOfOneAndOfTheModel(int dim)
    {
        // Enough bytes per thread that the call is really split by destination row range.
        const int count = 20_000, rows = 1000;
        Assert.True(EmbeddingThreads.For((long)Unsafe.SizeOf<T>() * dim * 3 * count, rows, 2) == 2, "the call should split");
        foreach (EmbeddingGradOptions options in DenseOptions)
        {
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 0 })
            {
                T[] gradOutput = Gradient(count, dim, seed: dim);
                int[] indices = HotIndices(count, rows, seed: 3);
                T[] start = Gradient(rows, dim, seed: 4);
                T[] expected = (T[])start.Clone();
                DenseModel(gradOutput, indices, dim, expected, padding, options);
                foreach (int threads in new[] { 1, 2 })
                {
                    T[] actual = (T[])start.Clone();
                    EmbeddingPrimitives.EmbeddingBackward<T, int>(gradOutput, indices, dim, actual, padding, options, KernelDispatch.BestWidth, threads);
                    AssertBitEqual(expected, actual, $"D={dim}, {options}, padding {padding}, {threads} threads");
                }
            }
        }
    }

    [Fact]
    public void EmbeddingBackward_AccumulatesDuplicatesInPositionOrderWithEveryRounding()
    {
        // One row named 200 times with mixed magnitudes: every step's rounding shows in the result.
        const int dim = 37, count = 200;
        T[] gradOutput = Gradient(count, dim, seed: 11);
        int[] indices = Enumerable.Repeat(2, count).ToArray();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
            {
                T[] expected = new T[Rows * dim];
                DenseModel(gradOutput, indices, dim, expected, EmbeddingPrimitives.NoPadding, options);
                T[] actual = new T[Rows * dim];
                EmbeddingPrimitives.EmbeddingBackward<T, int>(gradOutput, indices, dim, actual, EmbeddingPrimitives.NoPadding, options, width);
                AssertBitEqual(expected, actual, $"{width}, {options}");
            }
        }
    }

    [Fact]
    public void EmbeddingBackward_PaddingRowGetsNothingButCountsTowardTheScale()
    {
        // Row 1 named twice and padding row 0 once: c[1] = 2, so each update of row 1 uses fl(1/2).
        const int dim = 5;
        T[] gradOutput = Gradient(3, dim, seed: 2);
        T[] actual = Filled(2 * dim, 0xA5);
        EmbeddingPrimitives.EmbeddingBackward<T, long>(gradOutput, [1, 0, 1], dim, actual, 0, EmbeddingGradOptions.ScaleGradByFrequency, KernelDispatch.BestWidth);
        for (int column = 0; column < dim; column++)
        {
            Assert.Equal(0UL, Bits(actual[column]));
            T expected = ScaledUpdate(ScaledUpdate(Round(0), gradOutput[column], 2, column, dim), gradOutput[2 * dim + column], 2, column, dim);
            Assert.Equal(Bits(expected), Bits(actual[dim + column]));
        }
    }

    [Fact]
    public void EmbeddingBackward_WithNoIndicesZeroesOrLeavesTheGradient()
    {
        const int dim = 9;
        T[] start = Gradient(Rows, dim, seed: 5);
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            T[] cleared = (T[])start.Clone();
            EmbeddingPrimitives.EmbeddingBackward<T, int>(default, default, dim, cleared, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.ScaleGradByFrequency, width);
            Assert.All(cleared, value => Assert.Equal(0UL, Bits(value)));

            T[] kept = (T[])start.Clone();
            EmbeddingPrimitives.EmbeddingBackward<T, int>(default, default, dim, kept, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.Accumulate, width);
            AssertBitEqual(start, kept, $"accumulate with no indices, {width}");
        }
    }

    [Fact]
    public void EmbeddingBackward_ThrowsForBadIndexAndWritesNothing()
    {
        const int dim = 3;
        T[] grad = Filled(4 * dim, 0x5A);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBackward<T, int>(Gradient(3, dim, seed: 1), [0, 2, 4], dim, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth));
        Assert.StartsWith("index 4 at position 2 is out of range", error.Message);
        Assert.True(MemoryMarshal.AsBytes(grad.AsSpan()).IndexOfAnyExcept((byte)0x5A) < 0);
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBackward<T, int>(Gradient(2, dim, seed: 1), [0, 2, 1], dim, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth));
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBackward<T, int>(grad.AsSpan(0, 3 * dim), [0, 2, 1], dim, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None, KernelDispatch.BestWidth));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(33)]
    [InlineData(64)]
    public void EmbeddingSparseBackward_CopiesOrScalesRowsInPositionOrder(int dim)
    {
        const int count = 40;
        T[] gradOutput = Gradient(count, dim, seed: dim);
        long[] indices = TestData.Indices<long>(count, Rows, seed: dim + 1);
        foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
        {
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 2 })
            {
                int[] counts = Counts(indices, Rows);
                List<long> expectedRows = [];
                List<T> expectedValues = [];
                for (int i = 0; i < count; i++)
                {
                    if (indices[i] == padding)
                    {
                        continue;
                    }

                    expectedRows.Add(indices[i]);
                    for (int column = 0; column < dim; column++)
                    {
                        T g = gradOutput[i * dim + column];
                        expectedValues.Add(options == EmbeddingGradOptions.None ? g : Scaled(g, counts[indices[i]]));
                    }
                }

                long[] rows = new long[count];
                T[] values = Filled(count * dim + 3, 0xA5);
                int nnz = EmbeddingPrimitives.EmbeddingSparseBackward<T, long>(gradOutput, indices, dim, Rows, rows, values.AsSpan(0, count * dim), padding, options);
                string context = $"D={dim}, {options}, padding {padding}";
                Assert.Equal(expectedRows, rows[..nnz]);
                AssertBitEqual(expectedValues.ToArray(), values[..(nnz * dim)], context);
                Assert.True(MemoryMarshal.AsBytes(values.AsSpan(count * dim)).IndexOfAnyExcept((byte)0xA5) < 0, context);
            }
        }
    }

    [Fact]
    public void EmbeddingSparseBackward_CopiesNaNPayloadsAndNegativeZerosBitForBit()
    {
        const int dim = 6;
        T[] gradOutput = new T[3 * dim];
        new Random(9).NextBytes(MemoryMarshal.AsBytes(gradOutput.AsSpan()));
        long[] rows = new long[3];
        T[] values = new T[3 * dim];
        Assert.Equal(3, EmbeddingPrimitives.EmbeddingSparseBackward<T, int>(gradOutput, [2, 0, 2], dim, 3, rows, values, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.None));
        Assert.True(MemoryMarshal.AsBytes(gradOutput.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(values.AsSpan())));
    }

    [Fact]
    public void EmbeddingSparseBackward_TwoThreadsGiveTheBitsOfOne()
    {
        const int count = 20_000, dim = 40;
        T[] gradOutput = Gradient(count, dim, seed: 8);
        int[] indices = HotIndices(count, 500, seed: 9);
        foreach (EmbeddingGradOptions options in new[] { EmbeddingGradOptions.None, EmbeddingGradOptions.ScaleGradByFrequency })
        {
            long[] rowsOne = new long[count], rowsTwo = new long[count];
            T[] valuesOne = new T[count * dim], valuesTwo = new T[count * dim];
            int one = EmbeddingPrimitives.EmbeddingSparseBackward<T, int>(gradOutput, indices, dim, 500, rowsOne, valuesOne, 7, options, threads: 1);
            int two = EmbeddingPrimitives.EmbeddingSparseBackward<T, int>(gradOutput, indices, dim, 500, rowsTwo, valuesTwo, 7, options, threads: 2);
            Assert.Equal(one, two);
            Assert.Equal(rowsOne, rowsTwo);
            AssertBitEqual(valuesOne, valuesTwo, $"sparse {options}");
        }
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void SparseCoalesce_SumsInEntryOrderFromZeroAndEqualsTheDenseGradient(int dim)
    {
        const int count = 45;
        T[] gradOutput = Gradient(count, dim, seed: dim + 3);
        int[] indices = TestData.Indices<int>(count, Rows, seed: dim);
        long[] rows = new long[count];
        T[] values = new T[count * dim];
        int nnz = EmbeddingPrimitives.EmbeddingSparseBackward<T, int>(gradOutput, indices, dim, Rows, rows, values, 5, EmbeddingGradOptions.None);

        // The model: distinct rows ascending, each summed over its entries in entry order from +0.0.
        long[] expectedRows = rows[..nnz].Distinct().Order().ToArray();
        T[] expectedSums = new T[expectedRows.Length * dim];
        for (int j = 0; j < expectedRows.Length; j++)
        {
            for (int e = 0; e < nnz; e++)
            {
                if (rows[e] == expectedRows[j])
                {
                    for (int column = 0; column < dim; column++)
                    {
                        expectedSums[j * dim + column] = Add(expectedSums[j * dim + column], values[e * dim + column]);
                    }
                }
            }
        }

        T[] dense = new T[Rows * dim];
        EmbeddingPrimitives.EmbeddingBackward<T, int>(gradOutput, indices, dim, dense, 5, EmbeddingGradOptions.None, KernelDispatch.BestWidth);
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            long[] unique = new long[nnz];
            T[] sums = Filled(nnz * dim + 3, 0xA5);
            int distinct = EmbeddingPrimitives.SparseCoalesce<T>(rows.AsSpan(0, nnz), values.AsSpan(0, nnz * dim), dim, Rows, unique, sums.AsSpan(0, nnz * dim), width);
            Assert.Equal(expectedRows, unique[..distinct]);
            AssertBitEqual(expectedSums, sums[..(distinct * dim)], $"coalesce D={dim}, {width}");
            Assert.True(MemoryMarshal.AsBytes(sums.AsSpan(nnz * dim)).IndexOfAnyExcept((byte)0xA5) < 0);
            for (int j = 0; j < distinct; j++)
            {
                AssertBitEqual(dense.AsSpan((int)unique[j] * dim, dim).ToArray(), sums.AsSpan(j * dim, dim).ToArray(), $"coalesced row {unique[j]} vs dense, D={dim}, {width}");
            }
        }
    }

    [Fact]
    public void SparseCoalesce_OfNothingIsNothing()
    {
        Assert.Equal(0, EmbeddingPrimitives.SparseCoalesce<T>([], ReadOnlySpan<T>.Empty, 3, 0, [], [], KernelDispatch.BestWidth));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.SparseCoalesce<T>([1, 4], new T[4], 2, 4, new long[2], new T[4], KernelDispatch.BestWidth));
        Assert.Equal("rows", error.ParamName);
    }

    /// <summary>The dense model: the pseudocode of EmbeddingBackward, one position and one column at a time.</summary>
    private void DenseModel<TIndex>(T[] gradOutput, TIndex[] indices, int dim, T[] gradWeight, long padding, EmbeddingGradOptions options)
        where TIndex : IBinaryInteger<TIndex>
    {
        if ((options & EmbeddingGradOptions.Accumulate) == 0)
        {
            Array.Clear(gradWeight);
        }

        int[] counts = Counts(indices, gradWeight.Length / dim);
        for (int i = 0; i < indices.Length; i++)
        {
            int k = int.CreateChecked(indices[i]);
            if (k == padding)
            {
                continue;
            }

            for (int column = 0; column < dim; column++)
            {
                ref T acc = ref gradWeight[k * dim + column];
                T g = gradOutput[i * dim + column];
                acc = (options & EmbeddingGradOptions.ScaleGradByFrequency) != 0 ? ScaledUpdate(acc, g, counts[k], column, dim) : Add(acc, g);
            }
        }
    }

    private void CheckDense<TIndex>(int dim, int count, EmbeddingGradOptions options, long padding, VectorWidth width, int threads)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        T[] gradOutput = Gradient(count, dim, seed: dim * 7 + count);
        TIndex[] indices = TestData.Indices<TIndex>(count, Rows, seed: dim);
        T[] start = Gradient(Rows, dim, seed: dim + 1);
        T[] expected = (T[])start.Clone();
        DenseModel(gradOutput, indices, dim, expected, padding, options);

        T[] actual = Filled(Rows * dim + 5, 0xA5);
        start.CopyTo(actual, 0);
        EmbeddingPrimitives.EmbeddingBackward<T, TIndex>(gradOutput, indices, dim, actual.AsSpan(0, Rows * dim), padding, options, width, threads);
        string context = $"D={dim}, {width}, {typeof(TIndex).Name}, {options}, padding {padding}";
        AssertBitEqual(expected, actual[..(Rows * dim)], context);
        Assert.True(MemoryMarshal.AsBytes(actual.AsSpan(Rows * dim)).IndexOfAnyExcept((byte)0xA5) < 0, "written past the gradient: " + context);
    }

    /// <summary>Gradients of mixed sign and magnitude (2⁻⁶ … 2⁶), rounded to the type, so sums round at many steps.</summary>
    private T[] Gradient(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var values = new T[rows * dim];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = Round((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-6, 7)));
        }

        return values;
    }

    /// <summary>A skewed index stream over <paramref name="rows"/>: half the positions on the first 16 rows.</summary>
    private static int[] HotIndices(int count, int rows, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => random.Next(2) == 0 ? random.Next(16) : random.Next(rows)).ToArray();
    }

    private static int[] Counts<TIndex>(TIndex[] indices, int rows)
        where TIndex : IBinaryInteger<TIndex>
    {
        int[] counts = new int[rows];
        foreach (TIndex index in indices)
        {
            counts[int.CreateChecked(index)]++;
        }

        return counts;
    }

    private static T[] Filled(int length, byte pattern)
    {
        var values = new T[length];
        MemoryMarshal.AsBytes(values.AsSpan()).Fill(pattern);
        return values;
    }

    private void AssertBitEqual(T[] expected, T[] actual, string context)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            if (Bits(expected[i]) != Bits(actual[i]))
            {
                Assert.Fail($"{context}: element {i} is 0x{Bits(actual[i]):X} ({Value(actual[i])}), the model gives 0x{Bits(expected[i]):X} ({Value(expected[i])})");
            }
        }
    }
}

/// <summary>float64: a double accumulator; with frequency scaling <c>fma(g, 1/c, acc)</c> (the scale is exact in double, no rounding to another type).</summary>
public sealed class BackwardFloat64Tests : BackwardTableTypeTests<double>
{
    protected override double Round(double value) => value;

    protected override ulong Bits(double value) => BitConverter.DoubleToUInt64Bits(value);

    protected override double Value(double value) => value;

    protected override double Add(double acc, double g) => acc + g;

    protected override double ScaledUpdate(double acc, double g, int count, int column, int dim) => TorchProducts.MultiplyAdd(g, 1.0 / count, acc);

    protected override double Scaled(double g, int count) => g * (1.0 / count);
}

/// <summary>float16: a half accumulator rounded at every step; with frequency scaling <c>rd(acc + rd(g · fl(1/c)))</c>, fl = double → float → half.</summary>
public sealed class BackwardFloat16Tests : BackwardTableTypeTests<Half>
{
    protected override Half Round(double value) => (Half)(float)value;

    protected override ulong Bits(Half value) => BitConverter.HalfToUInt16Bits(value);

    protected override double Value(Half value) => (double)value;

    protected override Half Add(Half acc, Half g) => (Half)((float)acc + (float)g);

    protected override Half ScaledUpdate(Half acc, Half g, int count, int column, int dim) => Add(acc, Scaled(g, count));

    protected override Half Scaled(Half g, int count) => (Half)((float)g * (float)(Half)(float)(1.0 / count));
}

/// <summary>
/// bfloat16: a bfloat16 accumulator rounded at every step; with frequency scaling torch's FMA add
/// kernel fuses in whole 32-column chunks (64 with AVX-512: <see cref="RowUpdate.BFloat16FusedChunk"/>;
/// <c>rd(fma_f32(g, fl(1/c), acc))</c>) and rounds twice in the other columns (<c>rd(acc + rd(g · fl(1/c)))</c>),
/// its default kernels round twice in every column (<see cref="TorchProducts"/>). Rounding is written out here from
/// the doc (nearest, ties to even; NaN → 0x7FC0) rather than taken from <see cref="BFloat16"/>.
/// </summary>
public sealed class BackwardBFloat16Tests : BackwardTableTypeTests<BFloat16>
{
    [Fact]
    public void ScaledUpdate_IsFusedInWholeChunksAndRoundedTwiceInTheRest()
    {
        // A row named three times (fl(1/3) = 0x3EAB) at D = one chunk + 3: the chunk's columns fused (with
        // torch's FMA kernels), the last 3 rounded twice. Inputs where the two differ make each column's path visible.
        int chunk = RowUpdate.BFloat16FusedChunk, dim = chunk + 3;
        int fusedColumns = TorchProducts.AreFused ? chunk : 0;
        (BFloat16 g, BFloat16 acc) = FindDisagreement(3);
        BFloat16[] gradOutput = Enumerable.Repeat(g, 3 * dim).ToArray();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            BFloat16[] grad = Enumerable.Repeat(acc, dim).ToArray();
            EmbeddingPrimitives.EmbeddingBackward<BFloat16, int>(gradOutput, [0, 0, 0], dim, grad, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.ScaleGradByFrequency | EmbeddingGradOptions.Accumulate, width);
            BFloat16 fused = acc, twice = acc;
            for (int step = 0; step < 3; step++)
            {
                fused = Fused(fused, g, 3);
                twice = Add(twice, Scaled(g, 3));
            }

            Assert.NotEqual(fused.Bits, twice.Bits);
            Assert.All(grad[..fusedColumns], value => Assert.Equal(fused.Bits, value.Bits));
            Assert.All(grad[fusedColumns..dim], value => Assert.Equal(twice.Bits, value.Bits));
        }
    }

    protected override BFloat16 Round(double value) => Nearest((float)value);

    protected override ulong Bits(BFloat16 value) => value.Bits;

    protected override double Value(BFloat16 value) => Widen(value);

    protected override BFloat16 Add(BFloat16 acc, BFloat16 g) => Nearest(Widen(acc) + Widen(g));

    protected override BFloat16 ScaledUpdate(BFloat16 acc, BFloat16 g, int count, int column, int dim) =>
        TorchProducts.AreFused && column < dim - dim % RowUpdate.BFloat16FusedChunk ? Fused(acc, g, count) : Add(acc, Scaled(g, count));

    protected override BFloat16 Scaled(BFloat16 g, int count) => Nearest(Widen(g) * Widen(Scale(count)));

    private static BFloat16 Fused(BFloat16 acc, BFloat16 g, int count) => Nearest(MathF.FusedMultiplyAdd(Widen(g), Widen(Scale(count)), Widen(acc)));

    private static BFloat16 Scale(int count) => Nearest((float)(1.0 / count));

    private static float Widen(BFloat16 value) => BitConverter.Int32BitsToSingle(value.Bits << 16);

    private static BFloat16 Nearest(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        return float.IsNaN(value) ? new BFloat16(0x7FC0) : new BFloat16((ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16));
    }

    /// <summary>A gradient and a start value whose three fused updates differ from three twice-rounded ones.</summary>
    private static (BFloat16 G, BFloat16 Acc) FindDisagreement(int count)
    {
        var random = new Random(1);
        for (int attempt = 0; attempt < 100_000; attempt++)
        {
            BFloat16 g = Nearest((float)(random.NextDouble() * 4 - 2)), acc = Nearest((float)(random.NextDouble() * 4 - 2));
            BFloat16 fused = acc, twice = acc;
            for (int step = 0; step < count; step++)
            {
                fused = Fused(fused, g, count);
                twice = Nearest(Widen(twice) + Widen(Nearest(Widen(g) * Widen(Scale(count)))));
            }

            if (fused.Bits != twice.Bits)
            {
                return (g, acc);
            }
        }

        throw new InvalidOperationException("no disagreement found");
    }
}
