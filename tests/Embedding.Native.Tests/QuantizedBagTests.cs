using System;
using System.Buffers.Binary;
using System.Linq;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>Packed tables for the quantized tests: random codes (padding slots too), scales and biases. Seeds are fixed.</summary>
internal static class QuantizedTables
{
    public static readonly QuantizedBits[] AllBits = [QuantizedBits.Eight, QuantizedBits.Four, QuantizedBits.Two];

    /// <summary>
    /// Every dimension from 1 to 33 (every tail of every width: 2 × 16 lanes + 1), then odd and large ones;
    /// with 4- and 2-bit codes the dimensions that do not fill their last byte end in padding codes.
    /// </summary>
    public static readonly int[] Dims = Enumerable.Range(1, 33).Concat([36, 47, 64, 65, 66, 67, 96, 127, 300, 768]).ToArray();

    /// <summary>
    /// <paramref name="rows"/> packed rows: every code byte random (padding slots hold codes the result must not
    /// show), scales of both signs over several binades (zero included), biases of both signs.
    /// </summary>
    public static byte[] Table(QuantizedBits bits, int dimension, int rows, int seed)
    {
        var layout = new QuantizedRowLayout(bits, dimension);
        var random = new Random(seed);
        byte[] packed = new byte[rows * layout.RowBytes];
        random.NextBytes(packed);
        for (int r = 0; r < rows; r++)
        {
            Span<byte> scaleBias = packed.AsSpan((int)(r * layout.RowBytes) + layout.CodeBytes);
            // Every fifth row's scale is tiny next to its bias: sums then leave the range where a float FMA is proven
            // exact (QuantizedRowFactors), so vectors of both paths, and vectors mixing both kinds of lanes, occur.
            float scale = r % 7 == 3 ? 0.0f : (float)((random.NextDouble() - 0.3) * Math.Pow(2, r % 5 == 1 ? random.Next(-40, -20) : random.Next(-12, 4)));
            float bias = (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-6, 6)));
            if (bits == QuantizedBits.Eight)
            {
                BinaryPrimitives.WriteSingleLittleEndian(scaleBias, scale);
                BinaryPrimitives.WriteSingleLittleEndian(scaleBias[4..], bias);
            }
            else
            {
                BinaryPrimitives.WriteHalfLittleEndian(scaleBias, (Half)scale);
                BinaryPrimitives.WriteHalfLittleEndian(scaleBias[2..], (Half)bias);
            }
        }

        return packed;
    }

    /// <summary>Per-sample weights of both signs, a zero and a one among them.</summary>
    public static float[] Weights(int count, int seed)
    {
        var random = new Random(seed);
        float[] weights = Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 4 - 1.5)).ToArray();
        if (count > 2)
        {
            weights[0] = 1.0f;
            weights[count - 1] = 0.0f;
        }

        return weights;
    }

    /// <summary>A pruning map over <paramref name="rows"/> packed rows: <paramref name="length"/> entries, about one in four -1.</summary>
    public static int[] Mapping(int length, int rows, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(4) == 0 || rows == 0 ? -1 : random.Next(rows)).ToArray();
    }
}

/// <summary>
/// The quantized bag and lookup against <see cref="QuantizedBagReference"/>, bit for bit, at every width the process
/// accelerates, for every code width, weighted or not, sum and mean, with padding and pruning; plus torch's
/// double rounding, the empty cases, the thread split and every refusal.
/// </summary>
public abstract class QuantizedBagTests<TIndex, TOffset>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TOffset : unmanaged, IBinaryInteger<TOffset>
{
    private const int Rows = 11;

    /// <summary>What a call adds to the plain sum.</summary>
    public enum Variant
    {
        Sum,
        Weighted,
        Mean,
        Padding,
        Pruned,
        PrunedWeightedPadding,
        PrunedMean,
    }

    public static TheoryData<VectorWidth, QuantizedBits, Variant> Variants()
    {
        var data = new TheoryData<VectorWidth, QuantizedBits, Variant>();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (QuantizedBits bits in QuantizedTables.AllBits)
            {
                foreach (Variant variant in Enum.GetValues<Variant>())
                {
                    data.Add(width, bits, variant);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Variants))]
    public void QuantizedEmbeddingBag_MatchesReferenceForEveryDimension(VectorWidth width, QuantizedBits bits, Variant variant)
    {
        bool weighted = variant is Variant.Weighted or Variant.PrunedWeightedPadding;
        bool mean = variant is Variant.Mean or Variant.PrunedMean;
        bool pruned = variant is Variant.Pruned or Variant.PrunedWeightedPadding or Variant.PrunedMean;
        long padding = variant is Variant.Padding or Variant.PrunedWeightedPadding ? 3 : EmbeddingPrimitives.NoPadding;
        foreach (int dim in QuantizedTables.Dims)
        {
            foreach (bool includeLastOffset in new[] { false, true })
            {
                int seed = dim * 4 + (int)bits + (includeLastOffset ? 1 : 0);
                int[] mapping = pruned ? QuantizedTables.Mapping(17, Rows, seed) : [];
                (TIndex[] indices, TOffset[] offsets, long[] starts) = Layout(seed, includeLastOffset, pruned ? mapping.Length : Rows);
                byte[] packed = QuantizedTables.Table(bits, dim, Rows, seed);
                var layout = new QuantizedRowLayout(bits, dim);
                float[] psw = weighted ? QuantizedTables.Weights(indices.Length, seed) : [];
                int bags = starts.Length - 1;

                float[] expected = new float[bags * dim];
                QuantizedBagReference.EmbeddingBag(indices.Select(long.CreateTruncating).ToArray(), starts, packed, layout, mean, expected, psw, padding, mapping);

                float[] actual = TestData.Guarded(bags * dim);
                EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, offsets, packed, layout, mean ? EmbeddingBagMode.Mean : EmbeddingBagMode.Sum, actual, includeLastOffset, psw, padding, mapping, width);
                string context = $"{(int)bits}-bit, dim {dim}, width {width}, {variant}, ilo {includeLastOffset}";
                TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), context);
                AssertSentinels(actual.AsSpan(expected.Length), context);
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void QuantizedEmbeddingBag_FixedSizeBagsMatchOffsets(VectorWidth width)
    {
        foreach (QuantizedBits bits in QuantizedTables.AllBits)
        {
            foreach (int dim in new[] { 1, 6, 8, 17, 64, 300 })
            {
                var layout = new QuantizedRowLayout(bits, dim);
                byte[] packed = QuantizedTables.Table(bits, dim, Rows, dim);
                TIndex[] indices = TestData.Indices<TIndex>(12, Rows, seed: dim);
                float[] psw = QuantizedTables.Weights(12, dim);
                TOffset[] offsets = [Offset(0), Offset(3), Offset(6), Offset(9)];
                float[] expected = new float[4 * dim], actual = TestData.Guarded(4 * dim);
                EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, offsets, packed, layout, EmbeddingBagMode.Sum, expected, false, psw, 2, default, width);
                EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex>(indices, 3, packed, layout, EmbeddingBagMode.Sum, actual, psw, 2, default, width);
                TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"{(int)bits}-bit, dim {dim}");
                AssertSentinels(actual.AsSpan(expected.Length), "fixed");
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void QuantizedEmbedding_IsABagOfOnePerIndex(VectorWidth width)
    {
        foreach (QuantizedBits bits in QuantizedTables.AllBits)
        {
            foreach (int dim in new[] { 1, 3, 16, 33, 64, 127 })
            {
                foreach (bool pruned in new[] { false, true })
                {
                    var layout = new QuantizedRowLayout(bits, dim);
                    byte[] packed = QuantizedTables.Table(bits, dim, Rows, dim);
                    int[] mapping = pruned ? QuantizedTables.Mapping(20, Rows, dim) : [];
                    TIndex[] indices = TestData.Indices<TIndex>(9, pruned ? 20 : Rows, seed: dim);
                    long[] starts = Enumerable.Range(0, indices.Length + 1).Select(i => (long)i).ToArray();
                    float[] expected = new float[indices.Length * dim];
                    QuantizedBagReference.EmbeddingBag(indices.Select(long.CreateTruncating).ToArray(), starts, packed, layout, false, expected, [], EmbeddingPrimitives.NoPadding, mapping);
                    float[] actual = TestData.Guarded(expected.Length);
                    EmbeddingPrimitives.QuantizedEmbedding<TIndex>(indices, packed, layout, actual, mapping, width);
                    TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"{(int)bits}-bit, dim {dim}, pruned {pruned}");
                    AssertSentinels(actual.AsSpan(expected.Length), "lookup");
                }
            }
        }
    }

    /// <summary>
    /// torch 1.13 computes <c>fma(float, uint8_t, float)</c> in double and rounds twice; a float FMA rounds once. Here
    /// <c>x = 1 + s·130 = 1 + 2⁻²⁴ + 2⁻⁵⁴</c>: its double rounding is the midpoint 1 + 2⁻²⁴, which rounds to even (1),
    /// while x itself rounds up (1 + 2⁻²³). torch returns 1 (checked against torch 1.13 by test_quantized_bag_parity.py).
    /// </summary>
    [Fact]
    public void QuantizedEmbeddingBag_RoundsTwiceAsTorch_8Bit()
    {
        float scale = 16519105 * MathF.Pow(2, -55);
        Assert.Equal(16519105 * Math.Pow(2, -55), (double)scale);
        byte[] packed = new byte[9];
        packed[0] = 130;
        BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(1), scale);
        BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(5), 1.0f);
        Assert.Equal(MathF.BitIncrement(1.0f), MathF.FusedMultiplyAdd(scale, 130, 1.0f));
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            float[] actual = new float[1];
            EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0)], [Offset(0)], packed, new QuantizedRowLayout(QuantizedBits.Eight, 1), EmbeddingBagMode.Sum, actual, false, default, EmbeddingPrimitives.NoPadding, default, width);
            TestAssert.BitEqual([1.0f], actual, width.ToString());
        }
    }

    /// <summary>
    /// The same with 4-bit rows: row 0 (weight 2⁻⁶⁰) leaves the accumulator at 2⁻⁶⁰; row 1 (weight s = 5592407·2⁻²⁴,
    /// code 3) adds s·3 = 1 + 5·2⁻²⁴, a float midpoint. Double rounding drops the 2⁻⁶⁰ and ties to even, 1 + 2·2⁻²³;
    /// a float FMA gives 1 + 3·2⁻²³. Each vector width covers the column with a full vector (dimension 16).
    /// </summary>
    [Fact]
    public void QuantizedEmbeddingBag_RoundsTwiceAsTorch_4Bit()
    {
        const int dim = 16;
        var layout = new QuantizedRowLayout(QuantizedBits.Four, dim);
        byte[] packed = new byte[2 * layout.RowBytes];
        packed[0] = 0x11;
        packed[layout.RowBytes] = 0x33;
        for (int r = 0; r < 2; r++)
        {
            BinaryPrimitives.WriteHalfLittleEndian(packed.AsSpan((int)(r * layout.RowBytes) + layout.CodeBytes), (Half)1.0f);
        }

        float tiny = MathF.Pow(2, -60), s = 5592407 * MathF.Pow(2, -24);
        float[] psw = [tiny, s];
        Assert.Equal(1 + 3 * MathF.Pow(2, -23), MathF.FusedMultiplyAdd(s, 3, tiny));
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            float[] actual = new float[dim];
            EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0), Index(1)], [Offset(0)], packed, layout, EmbeddingBagMode.Sum, actual, false, psw, EmbeddingPrimitives.NoPadding, default, width);
            Assert.Equal(1 + 2 * MathF.Pow(2, -23), actual[0]);
            Assert.Equal(1 + 2 * MathF.Pow(2, -23), actual[1]);
            TestAssert.BitEqual(new float[dim - 2], actual.AsSpan(2), width.ToString());
        }
    }

    [Fact]
    public void QuantizedEmbeddingBag_EmptyInputsGiveZerosOrNothing()
    {
        var layout = new QuantizedRowLayout(QuantizedBits.Four, 6);
        byte[] packed = QuantizedTables.Table(QuantizedBits.Four, 6, Rows, 1);
        float[] destination = [7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([], [Offset(0), Offset(0)], packed, layout, EmbeddingBagMode.Mean, destination);
        TestAssert.BitEqual(new float[12], destination, "two empty bags");

        float[] untouched = [7];
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(1)], [], packed, layout, EmbeddingBagMode.Sum, untouched);
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([], [Offset(0)], packed, layout, EmbeddingBagMode.Sum, untouched, includeLastOffset: true);
        EmbeddingPrimitives.QuantizedEmbedding<TIndex>([], packed, layout, untouched);
        EmbeddingPrimitives.QuantizedEmbedding<TIndex>([], [], layout, untouched);
        Assert.Equal(7, untouched[0]);
    }

    [Fact]
    public void QuantizedEmbeddingBag_PaddingAndPrunedPositionsInTheMean()
    {
        // Rows 0 and 1 of an 8-bit table, one column each: values 2 (code 1, scale 1, bias 1) and 6 (code 3, scale 2, bias 0).
        byte[] packed = new byte[18];
        packed[0] = 1;
        BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(1), 1.0f);
        BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(5), 1.0f);
        packed[9] = 3;
        BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(10), 2.0f);
        var layout = new QuantizedRowLayout(QuantizedBits.Eight, 1);
        float[] actual = new float[1];

        // Padding (index 1) neither adds nor counts: (2 + 2) / 2.
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0), Index(1), Index(0)], [Offset(0)], packed, layout, EmbeddingBagMode.Mean, actual, paddingIndex: 1);
        Assert.Equal(2.0f, actual[0]);

        // Pruned: mapping [1, -1, 0]; index 1 is pruned (counts, adds nothing), index 2 is row 0: (6 + 0 + 2) / 3.
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0), Index(1), Index(2)], [Offset(0)], packed, layout, EmbeddingBagMode.Mean, actual, compressedIndicesMapping: [1, -1, 0]);
        Assert.Equal(8.0f / 3, actual[0]);
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0), Index(1), Index(2)], [Offset(0)], packed, layout, EmbeddingBagMode.Sum, actual, compressedIndicesMapping: [1, -1, 0]);
        Assert.Equal(8.0f, actual[0]);

        // With a mapping, the padding index is an index (a mapping entry), not a packed row.
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0), Index(1), Index(2)], [Offset(0)], packed, layout, EmbeddingBagMode.Mean, actual, paddingIndex: 2, compressedIndicesMapping: [1, -1, 0]);
        Assert.Equal(3.0f, actual[0]);

        // A bag of pruned positions only: +0.0 for the sum and for the mean.
        EmbeddingPrimitives.QuantizedEmbedding<TIndex>([Index(1)], packed, layout, actual, [1, -1, 0]);
        TestAssert.BitEqual([0.0f], actual, "pruned lookup");
    }

    [Fact]
    public void QuantizedEmbeddingBag_ZeroSumOfNegativeBiasIsPositiveZero()
    {
        // torch starts from memset 0: +0.0 + (-0.0) = +0.0, and a zero scale adds +0.0 in double.
        byte[] packed = new byte[9];
        BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(5), -0.0f);
        float[] actual = [7];
        EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(0)], [Offset(0)], packed, new QuantizedRowLayout(QuantizedBits.Eight, 1), EmbeddingBagMode.Sum, actual);
        TestAssert.BitEqual([0.0f], actual, "sum");
    }

    [Fact]
    public void QuantizedEmbeddingBag_IsBitIdenticalOnTwoThreads()
    {
        foreach (QuantizedBits bits in QuantizedTables.AllBits)
        {
            foreach (bool pruned in new[] { false, true })
            {
                const int dim = 64, rows = 500, count = 64000;
                var layout = new QuantizedRowLayout(bits, dim);
                byte[] packed = QuantizedTables.Table(bits, dim, rows, 5);
                int[] mapping = pruned ? QuantizedTables.Mapping(700, rows, 5) : [];
                TIndex[] indices = TestData.Indices<TIndex>(count, pruned ? 700 : rows, 5);
                var random = new Random(6);
                TOffset[] offsets = Enumerable.Range(0, count / 8).Select(b => TOffset.CreateTruncating(b == 0 ? 0 : b * 8 - random.Next(4))).ToArray();
                float[] psw = QuantizedTables.Weights(count, 7);
                Assert.True(EmbeddingThreads.For(layout.RowBytes * count, offsets.Length, 2) == 2, "the input is too small to use 2 threads");
                foreach (EmbeddingBagMode mode in new[] { EmbeddingBagMode.Sum, EmbeddingBagMode.Mean })
                {
                    float[] one = new float[offsets.Length * dim], two = new float[one.Length];
                    ReadOnlySpan<float> weights = mode == EmbeddingBagMode.Sum ? psw : default;
                    EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, offsets, packed, layout, mode, one, false, weights, 9, mapping, KernelDispatch.BestWidth, threads: 1);
                    EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, offsets, packed, layout, mode, two, false, weights, 9, mapping, KernelDispatch.BestWidth, threads: 2);
                    TestAssert.BitEqual(one, two, $"{(int)bits}-bit, {mode}, pruned {pruned}, 2 threads");
                }

                float[] lookupOne = new float[count * dim], lookupTwo = new float[count * dim];
                EmbeddingPrimitives.QuantizedEmbedding<TIndex>(indices, packed, layout, lookupOne, mapping, KernelDispatch.BestWidth, threads: 1);
                EmbeddingPrimitives.QuantizedEmbedding<TIndex>(indices, packed, layout, lookupTwo, mapping, KernelDispatch.BestWidth, threads: 2);
                TestAssert.BitEqual(lookupOne, lookupTwo, $"{(int)bits}-bit lookup, pruned {pruned}, 2 threads");
            }
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(Rows)]
    public void QuantizedEmbeddingBag_ThrowsForBadIndexAndWritesNothing(int bad)
    {
        byte[] packed = QuantizedTables.Table(QuantizedBits.Two, 8, Rows, 2);
        var layout = new QuantizedRowLayout(QuantizedBits.Two, 8);
        TIndex[] indices = [Index(0), Index(1), Index(2), Index(3), Index(bad), Index(4)];
        float[] destination = TestData.Guarded(0, 16);
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, [Offset(0), Offset(3)], packed, layout, EmbeddingBagMode.Sum, destination));
        Assert.Contains("position 4", error.Message);
        Assert.Contains($"0 to {Rows - 1}", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbedding<TIndex>(indices, packed, layout, TestData.Guarded(0, 48).AsSpan(0, 48)));
        AssertSentinels(destination, "bad index");
    }

    [Fact]
    public void QuantizedEmbeddingBag_RefusesIndicesOutsideTheMappingAndBadEntries()
    {
        byte[] packed = QuantizedTables.Table(QuantizedBits.Eight, 4, Rows, 3);
        var layout = new QuantizedRowLayout(QuantizedBits.Eight, 4);
        int[] mapping = [0, -1, 5, 10, -1];
        float[] destination = TestData.Guarded(0, 8);
        void Call(TIndex[] indices, int[] map) =>
            EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, [Offset(0), Offset(2)], packed, layout, EmbeddingBagMode.Sum, destination.AsSpan(0, 8), compressedIndicesMapping: map);

        // Indices index the mapping: 5 is outside it, although the table has 11 rows.
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => Call([Index(0), Index(1), Index(5), Index(2)], mapping));
        Assert.Contains("position 2", outside.Message);
        Assert.Contains("compressed_indices_mapping", outside.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Call([Index(0), Index(-1), Index(1), Index(2)], mapping));

        // Entries used must be -1 or a row: 11 and -2 are refused (torch reads them out of bounds), even at a padding position.
        foreach (int entry in new[] { Rows, -2, int.MinValue, int.MaxValue })
        {
            int[] bad = [0, -1, 5, entry, -1];
            var error = Assert.Throws<ArgumentOutOfRangeException>(() => Call([Index(0), Index(1), Index(2), Index(3)], bad));
            Assert.Contains($"compressed_indices_mapping[3] = {entry}", error.Message);
            Assert.Contains("position 3", error.Message);
            Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>([Index(3)], [Offset(0)], packed, layout, EmbeddingBagMode.Sum, destination.AsSpan(0, 4), paddingIndex: 3, compressedIndicesMapping: bad));
        }

        // An entry no position selects is not read.
        Call([Index(0), Index(1), Index(2), Index(4)], [0, -1, 5, Rows + 7, -1]);
        AssertSentinels(destination.AsSpan(8), "tail");
    }

    [Fact]
    public void QuantizedEmbeddingBag_ThrowsForBadArguments()
    {
        var layout = new QuantizedRowLayout(QuantizedBits.Four, 6);
        byte[] packed = QuantizedTables.Table(QuantizedBits.Four, 6, Rows, 4);
        TIndex[] input = [Index(3), Index(1), Index(1), Index(1), Index(4), Index(0)];
        TOffset[] offsets = [Offset(0), Offset(3)];
        float[] psw = [1, 1, 1, 1, 1, 1];
        float[] output = TestData.Guarded(12);
        Span<float> twelve = output.AsSpan(0, 12);

        Assert.Contains("no max mode", Assert.Throws<NotSupportedException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, EmbeddingBagMode.Max, output.AsSpan(0, 12))).Message);
        Assert.Equal("mode", Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, (EmbeddingBagMode)3, output.AsSpan(0, 12))).ParamName);
        Assert.Contains("only supported for mode='sum' (got mode='mean')", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, EmbeddingBagMode.Mean, output.AsSpan(0, 12), perSampleWeights: psw)).Message);
        Assert.Equal("perSampleWeights", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12), perSampleWeights: psw[..5])).ParamName);
        Assert.Equal("perSampleWeights", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex>(input, 3, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12), perSampleWeights: psw[..5])).ParamName);
        Assert.Equal("packed", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed.AsSpan(1), layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12))).ParamName);
        Assert.Equal("layout", Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, new QuantizedRowLayout((QuantizedBits)3, 6), EmbeddingBagMode.Sum, output.AsSpan(0, 12))).ParamName);
        Assert.Equal("layout", Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, new QuantizedRowLayout(QuantizedBits.Four, 0), EmbeddingBagMode.Sum, output.AsSpan(0, 12))).ParamName);
        Assert.Equal("paddingIndex", Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12), paddingIndex: Rows)).ParamName);
        Assert.Equal("paddingIndex", Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12), paddingIndex: 5, compressedIndicesMapping: [0, 1, 2, 3, 4])).ParamName);
        Assert.Equal("offsets", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, [Offset(1), Offset(3)], packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12))).ParamName);
        Assert.Equal("offsets", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, [Offset(0), Offset(4)], packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12), includeLastOffset: true)).ParamName);
        Assert.Equal("bagSize", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex>(input, 4, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12))).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 11))).ParamName);
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbedding<TIndex>(input, packed, layout, new float[35])).ParamName);

        // An output over the packed table's own bytes.
        float[] shared = new float[packed.Length];
        Span<byte> sharedBytes = MemoryMarshal.AsBytes(shared.AsSpan());
        packed.CopyTo(sharedBytes);
        float[] sharedCopy = (float[])shared.Clone();
        Assert.Equal("destination", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(input, offsets, MemoryMarshal.AsBytes(shared.AsSpan())[..packed.Length], layout, EmbeddingBagMode.Sum, shared.AsSpan(2, 12))).ParamName);
        Assert.Equal(sharedCopy, shared);
        Assert.Throws<NotSupportedException>(() => EmbeddingPrimitives.QuantizedEmbeddingBag<short, TOffset>([0], offsets, packed, layout, EmbeddingBagMode.Sum, output.AsSpan(0, 12)));
        Assert.Throws<NotSupportedException>(() => EmbeddingPrimitives.QuantizedEmbedding<short>([0], packed, layout, output.AsSpan(0, 12)));
        AssertSentinels(output, "bad arguments");
    }

    [Fact]
    public void QuantizedEmbeddingBag_AllocatesNothingAfterWarmUp()
    {
        const int dim = 300;
        (TIndex[] indices, TOffset[] offsets, long[] starts) = Layout(1, false, Rows);
        byte[] packed8 = QuantizedTables.Table(QuantizedBits.Eight, dim, Rows, 1), packed4 = QuantizedTables.Table(QuantizedBits.Four, dim, Rows, 1);
        float[] psw = QuantizedTables.Weights(indices.Length, 1);
        int[] mapping = QuantizedTables.Mapping(Rows, Rows, 1);
        float[] destination = new float[Math.Max(starts.Length - 1, indices.Length) * dim];
        void Run()
        {
            EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, offsets, packed8, new QuantizedRowLayout(QuantizedBits.Eight, dim), EmbeddingBagMode.Sum, destination, perSampleWeights: psw);
            EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, TOffset>(indices, offsets, packed4, new QuantizedRowLayout(QuantizedBits.Four, dim), EmbeddingBagMode.Mean, destination, paddingIndex: 2, compressedIndicesMapping: mapping);
            EmbeddingPrimitives.QuantizedEmbedding<TIndex>(indices, packed4, new QuantizedRowLayout(QuantizedBits.Four, dim), destination);
        }

        Run();
        Assert.Equal(0, TestAssert.AllocatedBytes(Run));
    }

    private static void AssertSentinels(ReadOnlySpan<float> guard, string context)
    {
        foreach (float value in guard)
        {
            Assert.True(BitConverter.SingleToInt32Bits(value) == BitConverter.SingleToInt32Bits(TestData.Sentinel), $"{context}: a guard element was written");
        }
    }

    private static TIndex Index(int value) => TIndex.CreateTruncating(value);

    private static TOffset Offset(int value) => TOffset.CreateTruncating(value);

    /// <summary>~12 bags of 0–7 positions over indices in <c>[0, range)</c>: empty bags, single-element bags, duplicates, index 3 (the padding tests' index) and both edge indices.</summary>
    private static (TIndex[] Indices, TOffset[] Offsets, long[] Starts) Layout(int seed, bool includeLastOffset, int range)
    {
        var random = new Random(seed);
        int bags = 12;
        int[] sizes = Enumerable.Range(0, bags).Select(b => b switch { 0 => 0, 1 => 1, 2 => 3, _ => random.Next(8) }).ToArray();
        int length = sizes.Sum();
        TIndex[] indices = TestData.Indices<TIndex>(length, range, seed);
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
}

public sealed class QuantizedBagTestsInt32Int32 : QuantizedBagTests<int, int>;

public sealed class QuantizedBagTestsInt32Int64 : QuantizedBagTests<int, long>;

public sealed class QuantizedBagTestsInt64Int32 : QuantizedBagTests<long, int>;

public sealed class QuantizedBagTestsInt64Int64 : QuantizedBagTests<long, long>;

/// <summary>The row operators' own pieces.</summary>
public sealed class QuantizedRowOperatorTests
{
    /// <summary>torch's step, <c>(float)((double)s · c + (double)(acc + b))</c>, written out.</summary>
    private static float TorchStep(float accumulator, float code, float scale, float bias) => (float)((double)scale * code + (double)(accumulator + bias));

    private static float RandomFloat(Random random, int minExponent, int maxExponent) =>
        (float)((random.Next(2) * 2 - 1) * (1 + random.NextDouble()) * Math.Pow(2, random.Next(minExponent, maxExponent + 1)));

    /// <summary>
    /// The claim of <see cref="QuantizedRowFactors"/>: wherever its range test passes, the float FMA has torch's bits.
    /// Sums are drawn at every exponent distance from the scale around the range's ends (−25 … +35), codes over
    /// [0, 255], plus zeros, subnormals and non-finite values; outside the range the two may differ, and do.
    /// </summary>
    [Fact]
    public void QuantizedRowFactors_FloatFmaHasTorchsBitsInsideTheRange()
    {
        var random = new Random(11);
        int inside = 0, differOutside = 0;
        for (int trial = 0; trial < 2_000_000; trial++)
        {
            float scale = trial % 97 == 0 ? BitConverter.Int32BitsToSingle(random.Next(1, 0x0080_0000)) : RandomFloat(random, -60, 60);
            int distance = random.Next(-25, 36);
            float sum = trial % 89 == 0 ? 0.0f : trial % 83 == 0 ? BitConverter.Int32BitsToSingle(random.Next(1, 0x0080_0000))
                : (float)((random.Next(2) * 2 - 1) * (1 + random.NextDouble()) * Math.Pow(2, Math.Clamp(Math.ILogB(scale) + distance, -149, 127)));
            float code = random.Next(256);
            var factors = new QuantizedRowFactors(scale, 0.0f);
            bool proven = factors.Windowed && QuantizedRowFactors.WindowOffset(sum, factors.WindowStart) < QuantizedRowFactors.WindowWidth;
            float fused = MathF.FusedMultiplyAdd(code, scale, sum), torch = TorchStep(sum, code, scale, 0.0f);
            if (proven)
            {
                inside++;
                Assert.True(BitConverter.SingleToInt32Bits(fused) == BitConverter.SingleToInt32Bits(torch) || (float.IsNaN(fused) && float.IsNaN(torch)),
                    $"scale {scale:R}, sum {sum:R}, code {code}: fma {fused:R}, torch {torch:R}");
            }
            else if (BitConverter.SingleToInt32Bits(fused) != BitConverter.SingleToInt32Bits(torch))
            {
                differOutside++;
            }

            // The operator at every width gives torch's bits whichever path it takes.
            Assert.Equal(BitConverter.SingleToInt32Bits(torch), BitConverter.SingleToInt32Bits(QuantizedCodesScalar.MultiplyAdd(sum, code, in factors)));
        }

        Assert.True(inside > 1_000_000, $"{inside} trials inside the range");
        Assert.True(differOutside > 0, "the double rounding never showed outside the range: the trials do not reach it");
        Assert.True(new QuantizedRowFactors(0.0f, 1.0f).Windowed);
        Assert.True(new QuantizedRowFactors(MathF.ScaleB(1.0f, -106), 1.0f).Windowed);
        Assert.True(new QuantizedRowFactors(MathF.ScaleB(-1.5f, 99), 1.0f).Windowed);
        foreach (float unproven in new[] { float.NaN, float.NegativeInfinity, float.Epsilon, MathF.ScaleB(1.0f, -107), MathF.ScaleB(1.0f, 100) })
        {
            Assert.False(new QuantizedRowFactors(unproven, 1.0f).Windowed);
        }
    }

    /// <summary>
    /// The window's ends, lane by lane: 2^(e(s) − 20) and the largest float below 2^(e(s) + 29) are inside, their
    /// neighbours outside, a zero sum inside for the scalar test; and the first row's start gives offset 0 exactly when
    /// its sum (the bias) is proven, zero included, which is what lets the vector widths skip the zero test.
    /// </summary>
    [Fact]
    public void QuantizedRowFactors_WindowEndsAndTheFirstRow()
    {
        foreach (float scale in new[] { 1.0f, -0.0078125f, MathF.ScaleB(1.75f, -106), MathF.ScaleB(1.0f, 99), 3e-5f })
        {
            var factors = new QuantizedRowFactors(scale, 0.0f);
            int e = Math.ILogB(scale);
            bool Inside(float sum) => QuantizedRowFactors.WindowOffset(sum, factors.WindowStart) < QuantizedRowFactors.WindowWidth;
            float low = MathF.ScaleB(1.0f, e - 20), high = MathF.BitDecrement(MathF.ScaleB(1.0f, e + 29));
            Assert.True(Inside(low) && Inside(-low) && Inside(high) && Inside(-high) && Inside(0.0f) && Inside(-0.0f), $"scale {scale}");
            Assert.False(Inside(MathF.BitDecrement(low)) || Inside(MathF.BitIncrement(high)) || Inside(float.PositiveInfinity) || Inside(float.NaN), $"scale {scale}");
            foreach (float bias in new[] { 0.0f, -0.0f, low, -high, MathF.BitDecrement(low), -MathF.BitIncrement(high), float.NaN })
            {
                var first = new QuantizedRowFactors(scale, bias);
                uint offset = unchecked((BitConverter.SingleToUInt32Bits(0.0f + bias) << 1) - first.FirstRowWindowStart);
                Assert.Equal(Inside(0.0f + bias), offset < QuantizedRowFactors.WindowWidth);
            }
        }
    }

    [Fact]
    public void MultiplyAdd_EveryWidthHasTorchsBitsOnMixedLanes()
    {
        var random = new Random(12);
        for (int trial = 0; trial < 20_000; trial++)
        {
            float scale = trial % 50 == 0 ? float.PositiveInfinity : RandomFloat(random, -50, 20);
            float bias = trial % 7 == 0 ? 0.0f : RandomFloat(random, -30, 30);
            var factors = new QuantizedRowFactors(scale, bias);
            int exponent = float.IsFinite(scale) ? Math.ILogB(scale) : 0;
            float[] accumulators = new float[16], codes = new float[16], expected = new float[16], actual = new float[16];
            for (int j = 0; j < 16; j++)
            {
                // Lanes at every distance from the scale, so a vector mixes proven and unproven lanes.
                accumulators[j] = j % 5 == 0 ? 0.0f : RandomFloat(random, exponent - 30, exponent + 40);
                codes[j] = random.Next(256);
                expected[j] = TorchStep(accumulators[j], codes[j], scale, bias);
            }

            if (Vector512.IsHardwareAccelerated)
            {
                QuantizedCodes512.MultiplyAdd(Vector512.Create(accumulators), Vector512.Create(codes), in factors).CopyTo(actual);
                TestAssert.BitEqual(expected, actual, $"V512, trial {trial}");
            }

            if (Vector256.IsHardwareAccelerated)
            {
                for (int half = 0; half < 16; half += 8)
                {
                    QuantizedCodes256.MultiplyAdd(Vector256.Create(accumulators.AsSpan(half, 8)), Vector256.Create(codes.AsSpan(half, 8)), in factors).CopyTo(actual.AsSpan(half));
                }

                TestAssert.BitEqual(expected, actual, $"V256, trial {trial}");
            }

            for (int quarter = 0; quarter < 16; quarter += 4)
            {
                QuantizedCodes128.MultiplyAdd(Vector128.Create(accumulators.AsSpan(quarter, 4)), Vector128.Create(codes.AsSpan(quarter, 4)), in factors).CopyTo(actual.AsSpan(quarter));
            }

            TestAssert.BitEqual(expected, actual, $"V128, trial {trial}");
        }
    }

    /// <summary>
    /// The speculative step at every width: float FMA lanes, and <c>AllInside</c> exactly when every lane's sum lies in the
    /// row's window (a zero sum counts as outside in the vector widths: only a pass's first row, through its own start,
    /// lets zeros in); wherever it holds for a windowed row, the lanes have torch's bits.
    /// </summary>
    [Fact]
    public void MultiplyAddTracked_EveryWidthTracksTheWindowAndIsExactInside()
    {
        var random = new Random(13);
        int provenVectors = 0;
        for (int trial = 0; trial < 20_000; trial++)
        {
            float scale = trial % 50 == 0 ? MathF.ScaleB(1.0f, -120) : RandomFloat(random, -50, 20);
            float bias = trial % 7 == 0 ? 0.0f : RandomFloat(random, -30, 30);
            var factors = new QuantizedRowFactors(scale, bias);
            int exponent = Math.ILogB(scale);
            // Mostly inside the window, so that whole vectors are proven; now and then a lane far from it, or a zero.
            int spread = trial % 3 == 0 ? 40 : 10;
            float[] accumulators = new float[16], codes = new float[16], fused = new float[16], torch = new float[16], actual = new float[16];
            bool allInside = true;
            for (int j = 0; j < 16; j++)
            {
                accumulators[j] = trial % 11 == 0 && j == 3 ? -bias : RandomFloat(random, exponent - spread + 15, exponent + spread);
                codes[j] = random.Next(256);
                float sum = accumulators[j] + bias;
                fused[j] = MathF.FusedMultiplyAdd(codes[j], scale, sum);
                torch[j] = TorchStep(accumulators[j], codes[j], scale, bias);
                allInside &= sum != 0.0f && QuantizedRowFactors.WindowOffset(sum, factors.WindowStart) < QuantizedRowFactors.WindowWidth;
            }

            void Check<TVector, TCodes>(int lanes, Func<float[], int, TVector> load, Action<TVector, float[], int> store)
                where TCodes : IQuantizedCodes<TVector>
            {
                bool inside = true;
                QuantizedRowVectors<TVector> row = TCodes.Broadcast(in factors, first: false);
                for (int at = 0; at < 16; at += lanes)
                {
                    TVector outside = TCodes.Zero;
                    store(TCodes.MultiplyAddTracked(load(accumulators, at), load(codes, at), in row, ref outside), actual, at);
                    inside &= TCodes.AllInside(outside);
                }

                TestAssert.BitEqual(fused, actual, $"{typeof(TCodes).Name}, trial {trial}");
                Assert.Equal(allInside, inside);
                if (inside && factors.Windowed)
                {
                    TestAssert.BitEqual(torch, actual, $"{typeof(TCodes).Name} proven, trial {trial}");
                }
            }

            if (Vector512.IsHardwareAccelerated)
            {
                Check<Vector512<float>, QuantizedCodes512>(16, (x, at) => Vector512.Create(x.AsSpan(at, 16)), (v, x, at) => v.CopyTo(x, at));
            }

            if (Vector256.IsHardwareAccelerated)
            {
                Check<Vector256<float>, QuantizedCodes256>(8, (x, at) => Vector256.Create(x.AsSpan(at, 8)), (v, x, at) => v.CopyTo(x, at));
            }

            Check<Vector128<float>, QuantizedCodes128>(4, (x, at) => Vector128.Create(x.AsSpan(at, 4)), (v, x, at) => v.CopyTo(x, at));
            provenVectors += allInside && factors.Windowed ? 1 : 0;
        }

        Assert.True(provenVectors > 5_000, $"{provenVectors} proven trials");
    }

    [Fact]
    public void HalfToSingle_HasTheBitsOfTheHalfCastForEveryPattern()
    {
        for (int bits = 0; bits <= ushort.MaxValue; bits++)
        {
            float expected = (float)BitConverter.UInt16BitsToHalf((ushort)bits);
            float actual = QuantizedScalars.HalfToSingle((ushort)bits);
            Assert.True(BitConverter.SingleToUInt32Bits(expected) == BitConverter.SingleToUInt32Bits(actual), $"0x{bits:X4}: 0x{BitConverter.SingleToUInt32Bits(actual):X8}, expected 0x{BitConverter.SingleToUInt32Bits(expected):X8}");
        }
    }
}
