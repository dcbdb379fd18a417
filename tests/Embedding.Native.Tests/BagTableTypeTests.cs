using System;
using System.Linq;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Bag forwards of float64 and float16 tables (float32 is <see cref="BagKernelTests{TIndex, TOffset}"/>):
/// every mode, with and without padding and per-sample weights, at every width the process
/// accelerates and every dimension that hits every tail, each bit for bit against
/// <see cref="TypedBagReference"/>, a plain scalar loop written from docs/table-types.md.
/// </summary>
public abstract class BagTableTypeTests<TElement>
    where TElement : unmanaged, IFloatingPointIeee754<TElement>
{
    private const int Rows = 13;

    /// <summary>Dims 1 … 2 × (accumulator lanes of the widest vector) + 1, and a few specialised dims.</summary>
    public static TheoryData<int> Dims()
    {
        var data = new TheoryData<int>();
        int lanes = 512 / 8 / (typeof(TElement) == typeof(double) ? sizeof(double) : sizeof(float));
        for (int dim = 1; dim <= 2 * lanes + 1; dim++)
        {
            data.Add(dim);
        }

        data.Add(64);
        data.Add(85);
        data.Add(300);
        return data;
    }

    public static TheoryData<EmbeddingBagMode, bool> Modes() => new()
    {
        { EmbeddingBagMode.Sum, false },
        { EmbeddingBagMode.Mean, false },
        { EmbeddingBagMode.Max, false },
        { EmbeddingBagMode.Sum, true },
    };

    [Theory]
    [MemberData(nameof(Dims))]
    public void EmbeddingBag_MatchesReferenceBitForBitAtEveryWidth(int dim)
    {
        var random = new Random(dim);
        TElement[] table = Table(random, Rows * dim, special: false);
        TElement[] maxTable = Table(random, Rows * dim, special: true);
        long[] indices = [3, 1, 1, 1, 4, 0, 7, 7, 2, 12, 5, 5, 5, 9, 11, 0, 6, 8, 10, 3, 3, 1];
        long[] offsets = [0, 0, 1, 4, 4, 9, 10, 16, 17];
        TElement[] weights = Table(random, indices.Length, special: false);
        foreach ((EmbeddingBagMode mode, bool weighted) in new[] { (EmbeddingBagMode.Sum, false), (EmbeddingBagMode.Mean, false), (EmbeddingBagMode.Max, false), (EmbeddingBagMode.Sum, true) })
        {
            TElement[] w = mode == EmbeddingBagMode.Max ? maxTable : table;
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, 1L, 5L })
            {
                foreach (VectorWidth width in KernelDispatch.SupportedWidths)
                {
                    Check<long, long>(w, dim, indices, offsets, false, mode, weighted ? weights : null, padding, width, threads: 1);
                    Check<int, int>(w, dim, indices, offsets, false, mode, weighted ? weights : null, padding, width, threads: 1);
                    Check<int, long>(w, dim, indices, [.. offsets, indices.Length], true, mode, weighted ? weights : null, padding, width, threads: 1);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void EmbeddingBag_FixedSizeBagsMatchReference(EmbeddingBagMode mode, bool weighted)
    {
        const int dim = 19;
        var random = new Random(7);
        TElement[] table = Table(random, Rows * dim, special: mode == EmbeddingBagMode.Max);
        long[] indices = Enumerable.Range(0, 24).Select(_ => (long)random.Next(Rows)).ToArray();
        TElement[] weights = Table(random, indices.Length, special: false);
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (long padding in new[] { EmbeddingPrimitives.NoPadding, indices[0] })
            {
                var (expected, expectedMax) = TypedBagReference.EmbeddingBag(table, dim, indices, Enumerable.Range(0, 6).Select(b => b * 4L).ToArray(), mode, weighted ? weights : null, padding);
                TElement[] output = Guarded(expected.Length);
                long[] maxIndices = new long[expected.Length];
                EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long>(indices, 4, table, dim, mode, output, weighted ? weights : default, padding, mode == EmbeddingBagMode.Max ? maxIndices : default, width);
                AssertBits(expected, output, $"fixed size, {mode}, weighted {weighted}, padding {padding}, {width}");
                AssertSentinel(output, expected.Length);
                if (mode == EmbeddingBagMode.Max)
                {
                    Assert.Equal(expectedMax, maxIndices);
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void EmbeddingBag_TwoThreadsGiveTheSameBitsAsOne(EmbeddingBagMode mode, bool weighted)
    {
        // Enough work for the forward to split its bags across two threads (MinBytesPerThread each).
        const int dim = 64;
        var random = new Random(11);
        TElement[] table = Table(random, 200 * dim, special: mode == EmbeddingBagMode.Max);
        int positions = (int)(4 * EmbeddingThreads.MinBytesPerThread / (dim * Unsafe.SizeOf<TElement>()));
        long[] indices = Enumerable.Range(0, positions).Select(_ => (long)random.Next(200)).ToArray();
        long[] offsets = Enumerable.Range(0, positions / 5).Select(b => b * 5L).ToArray();
        TElement[] weights = Table(random, positions, special: false);
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            TElement[] one = new TElement[offsets.Length * dim], two = new TElement[offsets.Length * dim];
            long[] maxOne = new long[one.Length], maxTwo = new long[two.Length];
            bool max = mode == EmbeddingBagMode.Max;
            EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long, long>(indices, offsets, table, dim, mode, one, false, weighted ? weights : default, 3, max ? maxOne : default, width, threads: 1);
            EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long, long>(indices, offsets, table, dim, mode, two, false, weighted ? weights : default, 3, max ? maxTwo : default, width, threads: 2);
            Assert.Equal(Bits(one), Bits(two));
            Assert.Equal(maxOne, maxTwo);
            var (expected, _) = TypedBagReference.EmbeddingBag(table, dim, indices, offsets, mode, weighted ? weights : null, 3);
            AssertBits(expected, two, $"two threads, {mode}, weighted {weighted}, {width}");
        }
    }

    [Fact]
    public void EmbeddingBag_EmptyInputsWriteNothing()
    {
        TElement[] table = Table(new Random(1), Rows * 3, special: false);
        TElement[] output = Guarded(6);
        EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long, long>([], [0L, 0L], table, 3, EmbeddingBagMode.Mean, output, false, default, EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth);
        Assert.All(output[..6], value => Assert.Equal(0UL, BitsOf(value)));
        AssertSentinel(output, 6);

        TElement[] none = Guarded(0);
        EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, int, int>([], [], table, 3, EmbeddingBagMode.Sum, none, false, default, EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth);
        AssertSentinel(none, 0);
    }

    [Fact]
    public void EmbeddingBag_ThrowsForOutOfRangeIndexAndWritesNothing()
    {
        TElement[] table = Table(new Random(2), Rows * 4, special: false);
        TElement[] output = Guarded(8);
        TElement[] before = (TElement[])output.Clone();
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long, long>([1L, Rows], [0L, 1L], table, 4, EmbeddingBagMode.Sum, output, false, default, EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth));
        Assert.Equal(Bits(before), Bits(output));
    }

    [Fact]
    public void EmbeddingBag_RefusesPerSampleWeightsOfTheWrongLengthOrMode()
    {
        TElement[] table = Table(new Random(3), Rows * 2, special: false);
        TElement[] output = new TElement[4];
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long, long>([1L, 2], [0L, 1], table, 2, EmbeddingBagMode.Sum, output, false, new TElement[3], EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth));
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, long, long>([1L, 2], [0L, 1], table, 2, EmbeddingBagMode.Mean, output, false, new TElement[2], EmbeddingPrimitives.NoPadding, default, KernelDispatch.BestWidth));
    }

    private static void Check<TIndex, TOffset>(TElement[] table, int dim, long[] indices, long[] offsets, bool includeLastOffset, EmbeddingBagMode mode, TElement[]? weights, long padding, VectorWidth width, int threads)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        long[] starts = includeLastOffset ? offsets : [.. offsets, indices.Length];
        var (expected, expectedMax) = TypedBagReference.EmbeddingBag(table, dim, indices, includeLastOffset ? offsets[..^1] : offsets, mode, weights, padding, end: starts[^1]);
        TIndex[] typedIndices = indices.Select(TIndex.CreateTruncating).ToArray();
        TOffset[] typedOffsets = offsets.Select(TOffset.CreateTruncating).ToArray();
        string context = $"dim {dim}, {width}, {typeof(TIndex).Name}/{typeof(TOffset).Name}, {mode}, weighted {weights is not null}, padding {padding}, last offset {includeLastOffset}";

        TElement[] output = Guarded(expected.Length);
        long[] maxIndices = new long[expected.Length + 1];
        maxIndices[^1] = long.MinValue;
        EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, TIndex, TOffset>(typedIndices, typedOffsets, table, dim, mode, output, includeLastOffset, weights, padding, mode == EmbeddingBagMode.Max ? maxIndices.AsSpan(0, expected.Length) : default, width, threads);
        AssertBits(expected, output, context);
        AssertSentinel(output, expected.Length);
        Assert.Equal(long.MinValue, maxIndices[^1]);
        if (mode == EmbeddingBagMode.Max)
        {
            Assert.Equal(expectedMax, maxIndices[..^1]);

            // Values only (no arg-max asked for): the same bits.
            TElement[] valuesOnly = Guarded(expected.Length);
            EmbeddingPrimitives.EmbeddingBagAtWidth<TElement, TIndex, TOffset>(typedIndices, typedOffsets, table, dim, mode, valuesOnly, includeLastOffset, weights, padding, default, width, threads);
            AssertBits(expected, valuesOnly, context + ", values only");
            AssertSentinel(valuesOnly, expected.Length);
        }
    }

    /// <summary>
    /// Values that make the roundings matter: for float16, halves across several binades (sums round,
    /// and overflow to inf in float16 but not in the float32 accumulator is possible); with
    /// <paramref name="special"/>, also ties, ±0.0, ±inf, NaN and subnormals for the max.
    /// </summary>
    private static TElement[] Table(Random random, int length, bool special)
    {
        TElement[] specials = [TElement.NaN, TElement.PositiveInfinity, TElement.NegativeInfinity, TElement.Zero, TElement.NegativeZero, TElement.One, -TElement.One, TElement.Epsilon, -TElement.Epsilon];
        var table = new TElement[length];
        for (int i = 0; i < length; i++)
        {
            table[i] = special && random.Next(3) == 0
                ? specials[random.Next(specials.Length)]
                : TElement.CreateTruncating((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-12, 12)));
        }

        return table;
    }

    private static TElement[] Guarded(int length)
    {
        var output = new TElement[length + 1];
        output.AsSpan(0, length).Fill(TElement.CreateTruncating(123.5));
        output[^1] = TElement.CreateTruncating(-7.25);
        return output;
    }

    private static void AssertSentinel(TElement[] output, int length) =>
        Assert.True(BitsOf(output[length]) == BitsOf(TElement.CreateTruncating(-7.25)), $"the element after the output ({length}) was written");

    private static void AssertBits(TElement[] expected, TElement[] actual, string context)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            // Any NaN equals any NaN: which payload a sum of NaNs keeps is not specified.
            bool same = TElement.IsNaN(expected[i]) ? TElement.IsNaN(actual[i]) : BitsOf(expected[i]) == BitsOf(actual[i]);
            Assert.True(same, $"{context}: element {i} is {actual[i]} (0x{BitsOf(actual[i]):X}), reference {expected[i]} (0x{BitsOf(expected[i]):X})");
        }
    }

    private static ulong[] Bits(TElement[] values) => values.Select(BitsOf).ToArray();

    private static ulong BitsOf(TElement value) =>
        Unsafe.SizeOf<TElement>() == sizeof(double) ? Unsafe.BitCast<TElement, ulong>(value) : Unsafe.As<TElement, ushort>(ref value);
}

public sealed class BagTableTypeTestsFloat64 : BagTableTypeTests<double>
{
    [Fact]
    public void EmbeddingBag_WeightedSumRoundsTheProductBeforeAdding()
    {
        // fma(1 + 2^-30, 1 + 2^-30, -1) keeps the 2^-60 term; torch 1.13 rounds the product first.
        double x = 1 + Math.Pow(2, -30);
        double[] table = [x, -1];
        double[] output = new double[1];
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            EmbeddingPrimitives.EmbeddingBagAtWidth<double, long, long>([1L, 0], [0L], table, 1, EmbeddingBagMode.Sum, output, false, [1.0, x], EmbeddingPrimitives.NoPadding, default, width);
            Assert.Equal(-1 + x * x, output[0]);
            Assert.NotEqual(Math.FusedMultiplyAdd(x, x, -1), output[0]);
        }
    }

    [Fact]
    public void EmbeddingBag_PublicOverloadsTakeFloat64()
    {
        double[] table = [1, 2, 3, 4, 5, 6];
        double[] output = new double[4];
        EmbeddingPrimitives.EmbeddingBag<int, int>([0, 2, 1], [0, 2], table, 2, EmbeddingBagMode.Mean, output);
        Assert.Equal([3.0, 4, 3, 4], output);
        EmbeddingPrimitives.EmbeddingBag<long>([0L, 2], 1, table, 2, EmbeddingBagMode.Sum, output, perSampleWeights: [2.0, 0.5]);
        Assert.Equal([2.0, 4, 2.5, 3], output);
    }
}

public sealed class BagTableTypeTestsFloat16 : BagTableTypeTests<Half>
{
    [Fact]
    public void EmbeddingBag_SumAccumulatesInFloat32AndRoundsOnce()
    {
        // 2048 + 1 + 1 in half steps stays 2048 (1 is half an ulp there); in float32 it is 2050.
        Half[] table = [(Half)2048, (Half)1];
        Half[] output = new Half[1];
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            EmbeddingPrimitives.EmbeddingBagAtWidth<Half, long, long>([0L, 1, 1], [0L], table, 1, EmbeddingBagMode.Sum, output, false, default, EmbeddingPrimitives.NoPadding, default, width);
            Assert.Equal((Half)2050, output[0]);

            // 65504 + 65504 - 65504: inf in half steps, 65504 through the float32 accumulator.
            Half[] large = [Half.MaxValue, -Half.MaxValue];
            EmbeddingPrimitives.EmbeddingBagAtWidth<Half, long, long>([0L, 0, 1], [0L], large, 1, EmbeddingBagMode.Sum, output, false, default, EmbeddingPrimitives.NoPadding, default, width);
            Assert.Equal(Half.MaxValue, output[0]);
        }
    }

    [Fact]
    public void EmbeddingBag_MeanRoundsTheSumToHalfBeforeDividing()
    {
        // Sum 2051 (float32) rounds to 2052 in half; 2052 / 3 = 684, where 2051 / 3 = 683.67 would round to 683.5.
        Half[] table = [(Half)2048, (Half)1, (Half)2];
        Half[] output = new Half[1];
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            EmbeddingPrimitives.EmbeddingBagAtWidth<Half, long, long>([0L, 1, 2], [0L], table, 1, EmbeddingBagMode.Mean, output, false, default, EmbeddingPrimitives.NoPadding, default, width);
            Assert.Equal((Half)684, output[0]);
        }
    }

    [Fact]
    public void EmbeddingBag_MaxReturnsTheWinningRowsHalfBitForBit()
    {
        // A signalling-NaN payload first in the bag survives as stored; a tie keeps the first row.
        Half nan = BitConverter.UInt16BitsToHalf(0x7C01);
        Half[] table = [nan, (Half)5, (Half)(-3), (Half)5];
        Half[] output = new Half[2];
        long[] maxIndices = new long[2];
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            EmbeddingPrimitives.EmbeddingBagAtWidth<Half, long, long>([0L, 1], [0L], table, 2, EmbeddingBagMode.Max, output, false, default, EmbeddingPrimitives.NoPadding, maxIndices, width);
            Assert.Equal((ushort)0x7C01, BitConverter.HalfToUInt16Bits(output[0]));
            Assert.Equal((Half)5, output[1]);
            Assert.Equal([0L, 0], maxIndices);
        }
    }

    [Fact]
    public void HalfLanes_WidenEveryHalfAsTheScalarConversionDoes()
    {
        ushort[] all = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        for (int i = 0; i < all.Length; i += 16)
        {
            Half[] halves = all.AsSpan(i, 16).ToArray().Select(BitConverter.UInt16BitsToHalf).ToArray();
            System.Runtime.Intrinsics.Vector512<float> v512 = BagHalf512.Load(ref halves[0], 0);
            System.Runtime.Intrinsics.Vector256<float> v256 = BagHalf256.Load(ref halves[0], 8);
            System.Runtime.Intrinsics.Vector128<float> v128 = BagHalf128.Load(ref halves[0], 4);
            for (int j = 0; j < 16; j++)
            {
                float scalar = BagHalfScalar.Load(ref halves[0], (nuint)j);
                AssertSame(scalar, v512[j], halves[j]);
                if (j >= 8)
                {
                    AssertSame(scalar, v256[j - 8], halves[j]);
                }

                if (j is >= 4 and < 8)
                {
                    AssertSame(scalar, v128[j - 4], halves[j]);
                }
            }
        }

        static void AssertSame(float expected, float actual, Half half) =>
            Assert.True(float.IsNaN(expected) ? float.IsNaN(actual) : BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual), $"half 0x{BitConverter.HalfToUInt16Bits(half):X4} widened to {actual}, scalar {expected}");
    }

    [Fact]
    public void EmbeddingBag_PublicOverloadsTakeFloat16()
    {
        Half[] table = [(Half)1, (Half)2, (Half)3, (Half)4];
        Half[] output = new Half[2];
        EmbeddingPrimitives.EmbeddingBag<long, long>([0L, 1], [0L], table, 2, EmbeddingBagMode.Sum, output, perSampleWeights: [(Half)0.5, (Half)2]);
        Assert.Equal([(Half)6.5, (Half)9], output);
        EmbeddingPrimitives.EmbeddingBag<int>([1, 0], 2, table, 2, EmbeddingBagMode.Max, output);
        Assert.Equal([(Half)3, (Half)4], output);
    }
}

/// <summary>
/// The bag forward of a float64 or float16 table as docs/table-types.md states torch 1.13 computes it,
/// one element at a time: float64 sums in double (a weighted term <c>acc + rd(w·psw)</c>), float16 in
/// float32 (<c>acc + float(w)·float(psw)</c>) rounded once to half; the mean divides the rounded sum by
/// <c>max(count, 1)</c> in the table's compute type and rounds; the max is a strict <c>&gt;</c> scan in the
/// compute type that returns the winning row's element.
/// </summary>
internal static class TypedBagReference
{
    public static (TElement[] Output, long[] MaxIndices) EmbeddingBag<TElement>(TElement[] weight, int dim, long[] indices, long[] offsets, EmbeddingBagMode mode, TElement[]? perSampleWeights, long paddingIndex, long end = -1)
        where TElement : unmanaged, IFloatingPointIeee754<TElement>
    {
        end = end < 0 ? indices.Length : end;
        var output = new TElement[offsets.Length * dim];
        var maxIndices = new long[offsets.Length * dim];
        for (int bag = 0; bag < offsets.Length; bag++)
        {
            long start = offsets[bag], stop = bag + 1 < offsets.Length ? offsets[bag + 1] : end;
            long[] positions = Enumerable.Range((int)start, (int)(stop - start)).Select(i => (long)i).Where(i => indices[i] != paddingIndex).ToArray();
            for (int d = 0; d < dim; d++)
            {
                int at = bag * dim + d;
                if (mode == EmbeddingBagMode.Max)
                {
                    if (positions.Length == 0)
                    {
                        output[at] = TElement.Zero;
                        maxIndices[at] = -1;
                        continue;
                    }

                    long best = indices[positions[0]];
                    double bestValue = double.CreateTruncating(weight[best * dim + d]);
                    foreach (long i in positions.Skip(1))
                    {
                        double value = double.CreateTruncating(weight[indices[i] * dim + d]);
                        if (value > bestValue)
                        {
                            best = indices[i];
                            bestValue = value;
                        }
                    }

                    output[at] = weight[best * dim + d];
                    maxIndices[at] = best;
                    continue;
                }

                if (typeof(TElement) == typeof(Half))
                {
                    float acc = 0.0f;
                    foreach (long i in positions)
                    {
                        float w = float.CreateTruncating(weight[indices[i] * dim + d]);
                        acc = perSampleWeights is null ? acc + w : acc + w * float.CreateTruncating(perSampleWeights[i]);
                    }

                    Half sum = (Half)acc;
                    output[at] = TElement.CreateTruncating(mode == EmbeddingBagMode.Mean ? (Half)((float)sum / Math.Max(positions.Length, 1)) : sum);
                }
                else
                {
                    double acc = 0.0;
                    foreach (long i in positions)
                    {
                        double w = double.CreateTruncating(weight[indices[i] * dim + d]);
                        double product = perSampleWeights is null ? w : w * double.CreateTruncating(perSampleWeights[i]);
                        acc += product;
                    }

                    output[at] = TElement.CreateTruncating(mode == EmbeddingBagMode.Mean ? acc / Math.Max(positions.Length, 1) : acc);
                }
            }
        }

        return (output, maxIndices);
    }
}
