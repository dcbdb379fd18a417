using System;
using System.Globalization;
using System.Linq;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Renormalisation (max_norm) of float64, float16 and bfloat16 tables (float32 is <see cref="RenormTests{TIndex}"/>):
/// bit for bit against <see cref="RenormReference"/> at every width the process accelerates,
/// over dimensions that hit every tail and every norm_type, and against torch 1.13's own results
/// (<see cref="RenormTorchFixtures"/>).
/// </summary>
public abstract class RenormTableTypeTests<TElement>
    where TElement : unmanaged
{
    /// <summary>
    /// Every norm_type torch's models cover, -inf, negative and fractional p, and p that change as a float:
    /// 1.1 (not a float), 2.0000001 (the 2-norm as a float), 1e-50 (the count), -1e40 (-inf).
    /// </summary>
    public static readonly double[] NormTypes = [2, 1, 3, 0.5, double.PositiveInfinity, double.NegativeInfinity, 0, -1, -2.5, 1.5, 1.1, 2.0000001, 1e-50, -1e40];

    /// <summary>Dims 1 … 2 × (widest vector of this element) + 1, and larger ones including specialised dims.</summary>
    public static TheoryData<int> Dims()
    {
        var data = new TheoryData<int>();
        int lanes = 512 / 8 / Unsafe.SizeOf<TElement>();
        for (int dim = 1; dim <= 2 * lanes + 1; dim++)
        {
            data.Add(dim);
        }

        foreach (int dim in new[] { 64, 96, 128, 255, 256, 300, 384, 768, 1000 })
        {
            if (dim > 2 * lanes + 1)
            {
                data.Add(dim);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void Renorm_MatchesReferenceAtEveryWidth(int dim)
    {
        const int rows = 23;
        int count = 3 + dim % 29;
        TElement[] original = Table(rows, dim, seed: dim);
        int[] indices32 = TestData.Indices<int>(count, rows, seed: dim + 1);
        long[] indices64 = indices32.Select(i => (long)i).ToArray();
        foreach (double p in NormTypes)
        {
            // A max_norm between the row norms, so some referenced rows are rescaled and some are not.
            double maxNorm = ReferenceNorm(original.AsSpan(dim * (rows / 2), dim), p);
            TElement[] expected = original.ToArray();
            Assert.Equal(-1, Reference<int>(expected, dim, indices32, maxNorm, p));
            foreach (VectorWidth width in KernelDispatch.SupportedWidths)
            {
                TElement[] actual = original.ToArray();
                EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(actual, dim, indices32, maxNorm, p, width);
                AssertBitEqual(expected, actual, $"dim {dim}, p {p}, width {width}, int32");

                actual = original.ToArray();
                EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(actual, dim, indices64, maxNorm, p, width);
                AssertBitEqual(expected, actual, $"dim {dim}, p {p}, width {width}, int64");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void RowNorm_MatchesReference(int dim)
    {
        const int rows = 9;
        TElement[] table = Table(rows, dim, seed: dim + 100);
        table[dim * 7 + dim / 2] = From(double.NaN);
        table[dim * 8 + dim / 3] = From(double.PositiveInfinity);
        foreach (double p in NormTypes)
        {
            for (int r = 0; r < rows; r++)
            {
                Span<TElement> row = table.AsSpan(r * dim, dim);
                AssertSameNorm(ReferenceNorm(row, p), KernelNorm(row, p), $"dim {dim}, p {p}, row {r}");
            }
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Renorm_IsBitIdenticalOnMoreThreads(int threads)
    {
        const int rows = 4000, dim = 64, count = 40_000;
        TElement[] start = Table(rows, dim, seed: 22);
        var random = new Random(23);
        int[] indices = Enumerable.Range(0, count).Select(_ => random.Next(rows) % (random.Next(3) == 0 ? 50 : rows)).ToArray();
        foreach (double p in new[] { 2.0, 1.0, 0.0, 3.5 })
        {
            TElement[] one = start.ToArray(), many = start.ToArray();
            EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(one, dim, indices, 1.5, p, KernelDispatch.BestWidth, threads: 1);
            EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(many, dim, indices, 1.5, p, KernelDispatch.BestWidth, threads);
            AssertBitEqual(one, many, $"p {p}, {threads} threads");
        }
    }

    [Fact]
    public void Renorm_RescalesDuplicateRowsOnce()
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            TElement[] weight = [From(3), From(4), From(0), From(0), From(6), From(8)];
            EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(weight, 2, [0, 0, 2, 0, 2], 1.0, 2.0, width);
            TElement[] once = [From(3), From(4), From(0), From(0), From(6), From(8)];
            EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(once, 2, [0, 2], 1.0, 2.0, width);
            AssertBitEqual(once, weight, $"duplicates, width {width}");
            Assert.Equal(0.6, ToDouble(weight[0]), 0.01);
            Assert.Equal(0.8, ToDouble(weight[1]), 0.01);
        }
    }

    [Fact]
    public void Renorm_LeavesNaNRowsUnreferencedRowsAndEmptyIndicesAlone()
    {
        TElement[] weight = [From(double.NaN), From(4), From(30), From(40), From(50), From(60)];
        TElement[] before = weight.ToArray();
        EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(weight, 2, [0], 1.0, 2.0, KernelDispatch.BestWidth);
        EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(weight, 2, [], 1.0, 2.0, KernelDispatch.BestWidth);
        AssertBitEqual(before, weight, "NaN row, empty indices");
        EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(weight, 2, [2], 1.0, 2.0, KernelDispatch.BestWidth);
        AssertBitEqual(before[..4], weight[..4], "rows not referenced");
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Renorm_ThrowsForOutOfRangeIndexAndChangesNothing(VectorWidth width)
    {
        const int rows = 10, dim = 19;
        TElement[] original = Table(rows, dim, seed: 3);
        foreach (long badValue in new long[] { rows, -1 })
        {
            long[] indices = TestData.Indices<long>(41, rows, seed: 5);
            indices[8] = badValue;
            TElement[] weight = original.ToArray();
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(weight, dim, indices, 0.5, 2.0, width));
            Assert.Equal("indices", error.ParamName);
            Assert.Contains($"index {badValue} at position 8", error.Message);
            AssertBitEqual(original, weight, "after a bad index");
        }
    }

    [Fact]
    public void Renorm_ThrowsForBadShapesAndOverlap()
    {
        TElement[] weight = [From(3), From(4), From(6), From(8)];
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(weight, 0, [0], 1, 2, VectorWidth.Scalar));
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(weight, 3, [0], 1, 2, VectorWidth.Scalar)).ParamName);

        TElement[] buffer = new TElement[16];
        var overlap = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingRenorm<TElement, int>(
            buffer, 2, MemoryMarshal.Cast<TElement, int>(buffer.AsSpan(0, 8))[..1], 1, 2, VectorWidth.Scalar));
        Assert.Equal("indices", overlap.ParamName);
    }

    [Fact]
    public void Renorm_AllocatesNothingAfterWarmUp()
    {
        const int rows = 64, dim = 37;
        TElement[] weight = Table(rows, dim, seed: 9);
        long[] indices = TestData.Indices<long>(200, rows, seed: 4);
        for (int i = 0; i < 10; i++)
        {
            EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(weight, dim, indices, 1.0, 2.0, KernelDispatch.BestWidth);
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(weight, dim, indices, 1.0 + i, i % 2 == 0 ? 2.0 : 3.0, KernelDispatch.BestWidth);
            }
        }));
    }

    /// <summary>torch 1.13's <c>embedding_renorm_</c> of one fixed table per norm_type, indices [3, 1, 3, 0]: bit for bit.</summary>
    protected static void CheckTorchCase(string weightHex, double p, double maxNorm, string expectedHex)
    {
        TElement[] expected = FromHex(expectedHex);
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            TElement[] weight = FromHex(weightHex);
            EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(weight, RenormTorchFixtures.Dim, RenormTorchFixtures.Indices, maxNorm, p, width);
            AssertBitEqual(expected, weight, $"torch, p {p}, width {width}");
        }

        TElement[] reference = FromHex(weightHex);
        Assert.Equal(-1, Reference<long>(reference, RenormTorchFixtures.Dim, RenormTorchFixtures.Indices, maxNorm, p));
        AssertBitEqual(expected, reference, $"torch vs reference, p {p}");
    }

    internal static TElement From(double value) =>
        typeof(TElement) == typeof(double) ? (TElement)(object)value
        : typeof(TElement) == typeof(Half) ? (TElement)(object)(Half)(float)value
        : (TElement)(object)(BFloat16)(float)value;

    internal static double ToDouble(TElement value) =>
        value is double d ? d : value is Half h ? (double)h : (float)(BFloat16)(object)value;

    /// <summary>Signed values of varied magnitude per row, about one in twelve zero.</summary>
    internal static TElement[] Table(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var table = new TElement[rows * dim];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = random.Next(12) == 0 ? From(0) : From((random.NextDouble() * 2 - 1) * (1 + i / dim % 7) * 0.7);
        }

        return table;
    }

    internal static void AssertBitEqual(ReadOnlySpan<TElement> expected, ReadOnlySpan<TElement> actual, string context)
    {
        Assert.True(expected.Length == actual.Length, $"{context}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            if (!MemoryMarshal.AsBytes(expected.Slice(i, 1)).SequenceEqual(MemoryMarshal.AsBytes(actual.Slice(i, 1))))
            {
                Assert.Fail($"{context}: element {i} is {ToDouble(actual[i]):R}, expected {ToDouble(expected[i]):R}");
            }
        }
    }

    private static TElement[] FromHex(string hex)
    {
        int digits = 2 * Unsafe.SizeOf<TElement>();
        var values = new TElement[hex.Length / digits];
        for (int i = 0; i < values.Length; i++)
        {
            ulong bits = ulong.Parse(hex.AsSpan(i * digits, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            values[i] = Unsafe.SizeOf<TElement>() == sizeof(double)
                ? Unsafe.BitCast<ulong, TElement>(bits)
                : Unsafe.BitCast<ushort, TElement>((ushort)bits);
        }

        return values;
    }

    private static double ReferenceNorm(ReadOnlySpan<TElement> row, double p) =>
        typeof(TElement) == typeof(double) ? RenormReference.Norm(MemoryMarshal.Cast<TElement, double>(row), p)
        : typeof(TElement) == typeof(Half) ? RenormReference.Norm(MemoryMarshal.Cast<TElement, Half>(row), p)
        : RenormReference.Norm(MemoryMarshal.Cast<TElement, BFloat16>(row), p);

    /// <summary>The same bits, or both NaN (a NaN norm rescales nothing, whatever its payload).</summary>
    private static void AssertSameNorm(double expected, double actual, string context) =>
        Assert.True(
            double.IsNaN(expected) ? double.IsNaN(actual) : BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual),
            $"{context}: norm {actual:R}, expected {expected:R}");

    private static double KernelNorm(Span<TElement> row, double p)
    {
        ref TElement first = ref MemoryMarshal.GetReference(row);
        return typeof(TElement) == typeof(double)
            ? (TorchCpuCapabilities.Fuses(TorchCpuCapabilities.Current)
                ? RowNorms<double, double, Float64Renorm<FusedProducts>>.Of(ref Unsafe.As<TElement, double>(ref first), row.Length, p)
                : RowNorms<double, double, Float64Renorm<RoundedProducts>>.Of(ref Unsafe.As<TElement, double>(ref first), row.Length, p))
            : typeof(TElement) == typeof(Half) ? RowNorms<Half, float, Float16Renorm>.Of(ref Unsafe.As<TElement, Half>(ref first), row.Length, p)
            : RowNorms<BFloat16, float, BFloat16Renorm>.Of(ref Unsafe.As<TElement, BFloat16>(ref first), row.Length, p);
    }

    private static int Reference<TIndex>(Span<TElement> weight, int dim, ReadOnlySpan<TIndex> indices, double maxNorm, double p)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        typeof(TElement) == typeof(double) ? RenormReference.EmbeddingRenorm(MemoryMarshal.Cast<TElement, double>(weight), dim, indices, maxNorm, p)
        : typeof(TElement) == typeof(Half) ? RenormReference.EmbeddingRenorm(MemoryMarshal.Cast<TElement, Half>(weight), dim, indices, maxNorm, p)
        : RenormReference.EmbeddingRenorm(MemoryMarshal.Cast<TElement, BFloat16>(weight), dim, indices, maxNorm, p);
}

public sealed class RenormFloat64Tests : RenormTableTypeTests<double>
{
    [Theory]
    [MemberData(nameof(RenormTorchFixtures.Float64Cases), MemberType = typeof(RenormTorchFixtures))]
    public void Renorm_GivesTorchsResult(double p, double maxNorm, string expected) =>
        CheckTorchCase(RenormTorchFixtures.Float64Weight, p, maxNorm, expected);
}

public sealed class RenormFloat16Tests : RenormTableTypeTests<Half>
{
    [Theory]
    [MemberData(nameof(RenormTorchFixtures.Float16Cases), MemberType = typeof(RenormTorchFixtures))]
    public void Renorm_GivesTorchsResult(double p, double maxNorm, string expected) =>
        CheckTorchCase(RenormTorchFixtures.Float16Weight, p, maxNorm, expected);

    [Theory]
    [InlineData(2050.0, 0x3C00)]
    [InlineData(2000.0, 0x3BD0)]
    public void Renorm_CountsNonZerosInHalfUpTo2048(double maxNorm, int expectedBits)
    {
        // torch 1.13: a row of 2100 ones has norm(0) = 2048; with max_norm 2050 it is left alone,
        // with 2000 every element becomes half(2000 / 2048) = 0.9765625.
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            Half[] weight = Enumerable.Repeat((Half)1, 2100).ToArray();
            EmbeddingPrimitives.EmbeddingRenorm<Half, int>(weight, 2100, [0], maxNorm, 0, width);
            Assert.All(weight, x => Assert.Equal(expectedBits, BitConverter.HalfToUInt16Bits(x)));
        }
    }
}

public sealed class RenormBFloat16Tests : RenormTableTypeTests<BFloat16>
{
    [Theory]
    [MemberData(nameof(RenormTorchFixtures.BFloat16Cases), MemberType = typeof(RenormTorchFixtures))]
    public void Renorm_GivesTorchsResult(double p, double maxNorm, string expected) =>
        CheckTorchCase(RenormTorchFixtures.BFloat16Weight, p, maxNorm, expected);

    [Fact]
    public void Renorm_SumsSquaresInTorchsFloatLanes()
    {
        // Columns 0, 8, 16, 24 (lane 0) hold 256, 16, 16, 1, whose squares sum to 66049 = 257², the tie
        // between bfloat16 256 and 258. The other columns hold 0.0625: added one at a time, each square
        // (2^-8) is half an ulp of the running sum and rounds away; summed in lanes 1-7 first (2^-6 a lane)
        // they survive, so torch 1.13's norm is rd(sqrt(66049.109375)) = 258, not 256.
        BFloat16[] row = Enumerable.Repeat((BFloat16)0.0625f, 32).ToArray();
        (row[0], row[8], row[16], row[24]) = ((BFloat16)256f, (BFloat16)16f, (BFloat16)16f, (BFloat16)1f);
        Assert.Equal(258.0, RenormReference.Norm(row, 2.0));
        Assert.Equal(258.0, RowNorms<BFloat16, float, BFloat16Renorm>.Of(ref row[0], row.Length, 2.0));
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            // torch 1.13: the scale is bfloat16(200 / 258) = 0.7734375 (with a norm of 256 it would be 0.78125).
            BFloat16[] weight = row.ToArray();
            EmbeddingPrimitives.EmbeddingRenorm<BFloat16, int>(weight, row.Length, [0], 200.0, 2.0, width);
            Assert.Equal([0x4346, 0x3D46, 0x4146, 0x3F46], new[] { weight[0], weight[1], weight[8], weight[24] }.Select(x => (int)x.Bits));
        }
    }

    [Theory]
    [InlineData(280.0, 0x3F80)]
    [InlineData(255.0, 0x3F7F)]
    public void Renorm_CountsNonZerosInBFloat16UpTo256(double maxNorm, int expectedBits)
    {
        // torch 1.13: a row of 300 ones has norm(0) = 256; with max_norm 280 it is left alone,
        // with 255 every element becomes bfloat16(255 / 256).
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            BFloat16[] weight = Enumerable.Repeat((BFloat16)1f, 300).ToArray();
            EmbeddingPrimitives.EmbeddingRenorm<BFloat16, int>(weight, 300, [0], maxNorm, 0, width);
            Assert.All(weight, x => Assert.Equal(expectedBits, x.Bits));
        }
    }
}
