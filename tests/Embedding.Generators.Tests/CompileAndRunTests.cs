using System;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using System.Numerics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using Embedding.Native;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Emit;
using Xunit;

namespace Embedding.Generators.Tests;

/// <summary>
/// Compiles a consumer that asks for a spread of dimensions, loads it, and runs every generated
/// kernel (every dimension × every width × both index types) against the scalar reference, bit
/// for bit, with sentinels after the destination. A Vector512 body runs everywhere: without
/// AVX-512 the JIT lowers it to narrower instructions, so every width is exercised on any machine.
/// </summary>
public sealed class CompileAndRunTests
{
    /// <summary>Tails of every length for each width, straight-line and looped rows, and dims below a vector.</summary>
    public static readonly int[] Dims = [1, 3, 4, 5, 15, 16, 17, 33, 130, 300, 1000];

    private static readonly VectorWidth[] Widths = [VectorWidth.Scalar, VectorWidth.Vector128, VectorWidth.Vector256, VectorWidth.Vector512];

    private const int Rows = 23;

    private static readonly uint SentinelBits = 0xFFA5A5A5;

    private static readonly Lazy<ConsumerBuild> s_build = new(ConsumerBuild.Create);

    public static TheoryData<int, VectorWidth, int> Cases()
    {
        var cases = new TheoryData<int, VectorWidth, int>();
        foreach (int dim in Dims)
        {
            foreach (VectorWidth width in Widths)
            {
                cases.Add(dim, width, 7919 * dim + (int)width);
            }
        }

        return cases;
    }

    [Fact]
    public void Emit_SucceedsWithoutErrorsOrWarnings()
    {
        ConsumerBuild build = s_build.Value;

        Assert.Empty(build.GeneratorDiagnostics);
        Assert.True(build.Emit.Success, string.Join("\n", build.Emit.Diagnostics));
        Assert.Empty(build.Emit.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning));
        // The kernel set, then per dimension: gathers of 16-, 32- and 64-bit elements, scatter-add, bags, quantized bags.
        Assert.Equal(1 + 6 * Dims.Length, build.HintNames.Length);
    }

    [Fact]
    public void Dimensions_ListsRequestedDimensionsAscending()
    {
        Assert.Equal(Dims, s_build.Value.Kernels.Dimensions.ToArray());
    }

    [Fact]
    public void Registry_RegistersConsumerSetWhenAssemblyLoads()
    {
        EmbeddingKernelSet kernels = s_build.Value.Kernels;

        Assert.Contains(EmbeddingKernelRegistry.Sets.ToArray(), set => set.GetType() == kernels.GetType());
        Assert.True(EmbeddingKernelRegistry.IsSpecialised(33));
    }

    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    [InlineData(8)]
    [InlineData(999)]
    [InlineData(1001)]
    [InlineData(0)]
    [InlineData(-1)]
    public void Find_ReturnsNullForDimensionNotInSet(int dim)
    {
        EmbeddingKernelSet kernels = s_build.Value.Kernels;

        foreach (VectorWidth width in Widths)
        {
            foreach (KernelOperation operation in Enum.GetValues<KernelOperation>())
            {
                foreach (EmbeddingType table in Enum.GetValues<EmbeddingType>())
                {
                    Assert.Null(kernels.Find(new KernelKey(operation, table, EmbeddingIndexType.Int32, dim, width)));
                    Assert.Null(kernels.Find(new KernelKey(operation, table, EmbeddingIndexType.Int64, dim, width)));
                }
            }
        }
    }

    [Fact]
    public void Find_AnswersEveryTableTypeForGathersAndFloat32ForTheRest()
    {
        EmbeddingKernelSet kernels = s_build.Value.Kernels;
        Assert.Equal(EmbeddingTypes.All, kernels.Types);
        foreach (EmbeddingType table in Enum.GetValues<EmbeddingType>())
        {
            Assert.NotNull(kernels.Find(new KernelKey(KernelOperation.Gather, table, EmbeddingIndexType.Int64, 300, VectorWidth.Vector128)));
            bool arithmetic = table == EmbeddingType.Float32;
            Assert.Equal(arithmetic, kernels.Find(new KernelKey(KernelOperation.BagMean, table, EmbeddingIndexType.Int64, 300, VectorWidth.Vector128)) is not null);
            Assert.Equal(arithmetic, kernels.Find(new KernelKey(KernelOperation.ScatterAdd, table, EmbeddingIndexType.Int32, 300, VectorWidth.Vector128)) is not null);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gather_Int32_MatchesReferenceBitForBit(int dim, VectorWidth width, int seed)
    {
        RunKernel(Gather<float, int>(EmbeddingType.Float32, dim, width), dim, width, seed);
        RunKernel(Gather<double, int>(EmbeddingType.Float64, dim, width), dim, width, seed);
        RunKernel(Gather<ushort, int>(EmbeddingType.Float16, dim, width), dim, width, seed);
        RunKernel(Gather<ushort, int>(EmbeddingType.BFloat16, dim, width), dim, width, seed);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gather_Int64_MatchesReferenceBitForBit(int dim, VectorWidth width, int seed)
    {
        RunKernel(Gather<float, long>(EmbeddingType.Float32, dim, width), dim, width, seed);
        RunKernel(Gather<double, long>(EmbeddingType.Float64, dim, width), dim, width, seed);
        RunKernel(Gather<ushort, long>(EmbeddingType.Float16, dim, width), dim, width, seed);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gather_WritesNothingForZeroCount(int dim, VectorWidth width, int seed)
    {
        GatherKernel<float, int>? kernel = Gather<float, int>(EmbeddingType.Float32, dim, width);
        if (kernel is null)
        {
            return;
        }

        float[] table = Table(dim, seed);
        int[] indices = [];
        float[] destination = Guarded(0);

        kernel(in table[0], dim, in MemoryMarshal.GetArrayDataReference(indices), 0, ref MemoryMarshal.GetArrayDataReference(destination));

        AssertSentinels(destination, 0);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ScatterAdd_Int32_MatchesReferenceBitForBit(int dim, VectorWidth width, int seed) =>
        RunScatterAdd<int>((ScatterAddKernel<float, int>?)Find(KernelOperation.ScatterAdd, EmbeddingIndexType.Int32, dim, width), dim, width, seed);

    [Theory]
    [MemberData(nameof(Cases))]
    public void ScatterAdd_Int64_MatchesReferenceBitForBit(int dim, VectorWidth width, int seed) =>
        RunScatterAdd<long>((ScatterAddKernel<float, long>?)Find(KernelOperation.ScatterAdd, EmbeddingIndexType.Int64, dim, width), dim, width, seed);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bag_Int32_MatchesReferenceBitForBit(int dim, VectorWidth width, int seed) =>
        RunBag<int>((mode, weighted) => (BagKernel<float, int>?)Find(BagOperation(mode, weighted), EmbeddingIndexType.Int32, dim, width), dim, width, seed);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Bag_Int64_MatchesReferenceBitForBit(int dim, VectorWidth width, int seed) =>
        RunBag<long>((mode, weighted) => (BagKernel<float, long>?)Find(BagOperation(mode, weighted), EmbeddingIndexType.Int64, dim, width), dim, width, seed);

    [Theory]
    [MemberData(nameof(Cases))]
    public void QuantizedBag_Int32_MatchesGenericKernelAndReferenceBitForBit(int dim, VectorWidth width, int seed) =>
        RunQuantizedBag<int>(dim, width, seed);

    [Theory]
    [MemberData(nameof(Cases))]
    public void QuantizedBag_Int64_MatchesGenericKernelAndReferenceBitForBit(int dim, VectorWidth width, int seed) =>
        RunQuantizedBag<long>(dim, width, seed);

    [Fact]
    public void Find_AnswersQuantizedBagsWithTheFloat32OutputTypeOnly()
    {
        EmbeddingKernelSet kernels = s_build.Value.Kernels;
        Assert.Equal(QuantizedBitWidths.All, kernels.Quantized);
        foreach (KernelOperation operation in new[] { KernelOperation.QuantizedBagByte, KernelOperation.QuantizedBag4Bit, KernelOperation.QuantizedBag2Bit })
        {
            var key = new KernelKey(operation, EmbeddingType.Float32, EmbeddingIndexType.Int64, 300, VectorWidth.Vector128);
            Assert.IsType<QuantizedBagKernel<long>>(kernels.Find(key));
            Assert.IsType<QuantizedBagKernel<int>>(kernels.Find(key with { Index = EmbeddingIndexType.Int32 }));
            Assert.Null(kernels.Find(key with { Table = EmbeddingType.Float16 }));
        }
    }

    /// <summary>The variants of a quantized bag call: what it adds to the plain sum.</summary>
    private static readonly (string Name, bool Weighted, bool Mean, bool Pruned, bool Padding)[] QuantizedVariants =
    [
        ("sum", false, false, false, false),
        ("weighted", true, false, false, false),
        ("mean", false, true, false, false),
        ("padding", false, false, false, true),
        ("pruned", false, false, true, false),
        ("pruned weighted padding", true, false, true, true),
        ("pruned mean padding", false, true, true, true),
    ];

    /// <summary>
    /// Runs every generated quantized bag kernel of one dimension and width (8-, 4- and 2-bit rows) over empty,
    /// single and duplicate-heavy bags, for every variant, against the generic kernel at the same width and the
    /// reference, bit for bit; then over a range of bags in the middle (what a thread of the parallel split passes).
    /// Codes in the padding slots of a row's last byte are random: they must not show. Sentinels guard the outputs.
    /// </summary>
    private static void RunQuantizedBag<TIndex>(int dim, VectorWidth width, int seed)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int lanes = width == VectorWidth.Scalar ? 1 : (int)width / 32;
        TIndex[] indices = Indices<TIndex>(seed);
        long[] starts = [0, 0, 1, 4, 4, 10, indices.Length];
        int bags = starts.Length - 1;
        var random = new Random(seed);
        float[] weights = Enumerable.Range(0, indices.Length).Select(_ => (float)(random.NextDouble() * 4 - 1.5)).ToArray();
        int[] mapping = Enumerable.Range(0, Rows).Select(_ => random.Next(4) == 0 ? -1 : random.Next(Rows)).ToArray();
        long[] wide = indices.Select(long.CreateTruncating).ToArray();
        foreach (QuantizedBits bits in new[] { QuantizedBits.Eight, QuantizedBits.Four, QuantizedBits.Two })
        {
            var layout = new QuantizedRowLayout(bits, dim);
            KernelOperation operation = bits switch { QuantizedBits.Eight => KernelOperation.QuantizedBagByte, QuantizedBits.Four => KernelOperation.QuantizedBag4Bit, _ => KernelOperation.QuantizedBag2Bit };
            var kernel = (QuantizedBagKernel<TIndex>?)s_build.Value.Kernels.Find(new KernelKey(operation, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), dim, width));
            int vectorColumns = dim - dim % layout.CodesPerByte;
            if (lanes > 1 && lanes > vectorColumns)
            {
                Assert.True(kernel is null, $"{(int)bits}-bit dim {dim}: {vectorColumns} columns of whole code bytes are narrower than one {width}, so no kernel should exist");
                continue;
            }

            Assert.True(kernel is not null, $"no {(int)bits}-bit quantized bag kernel for dim {dim} at {width}");
            QuantizedBagKernel<TIndex> generic = bits switch
            {
                QuantizedBits.Eight => GenericQuantizedBag<TIndex, QuantizedRow8>.At(width),
                QuantizedBits.Four => GenericQuantizedBag<TIndex, QuantizedRow4>.At(width),
                _ => GenericQuantizedBag<TIndex, QuantizedRow2>.At(width),
            };
            byte[] packed = QuantizedTable(layout, seed + (int)bits);
            foreach ((string name, bool weighted, bool mean, bool pruned, bool padded) in QuantizedVariants)
            {
                string context = $"{(int)bits}-bit dim {dim}, {width}, {typeof(TIndex).Name}, {name}";
                long padding = padded ? wide[2] : -1;
                float[] expected = new float[bags * dim];
                QuantizedBagReference.EmbeddingBag(wide, starts, packed, layout, mean, expected, weighted ? weights : [], padding, pruned ? mapping : []);
                ref readonly int map = ref pruned ? ref mapping[0] : ref System.Runtime.CompilerServices.Unsafe.NullRef<int>();
                ref readonly float sampleWeights = ref weighted ? ref weights[0] : ref System.Runtime.CompilerServices.Unsafe.NullRef<float>();

                float[] fromGeneric = Guarded(expected.Length);
                generic(in packed[0], dim, in indices[0], in starts[0], bags, padding, in map, in sampleWeights, mean, ref fromGeneric[0]);
                float[] destination = Guarded(expected.Length);
                kernel(in packed[0], dim, in indices[0], in starts[0], bags, padding, in map, in sampleWeights, mean, ref destination[0]);

                AssertSameBits(expected, fromGeneric, context + ", generic kernel against the reference");
                AssertSameBits(fromGeneric, destination, context + ", generated kernel against the generic one");
                AssertSentinels(destination, expected.Length);

                // Bags 2..4 alone, as one piece of the parallel split: starts from the middle, the output at bag 2.
                float[] piece = Guarded(3 * dim);
                kernel(in packed[0], dim, in indices[0], in starts[2], 3, padding, in map, in sampleWeights, mean, ref piece[0]);
                AssertSameBits(expected.AsSpan(2 * dim, 3 * dim).ToArray(), piece, context + ", bags 2..4");
                AssertSentinels(piece, 3 * dim);
            }
        }
    }

    /// <summary>Random packed rows (padding code slots included); scales of both signs over several binades, zero among them.</summary>
    private static byte[] QuantizedTable(QuantizedRowLayout layout, int seed)
    {
        var random = new Random(seed);
        byte[] packed = new byte[Rows * layout.RowBytes];
        random.NextBytes(packed);
        for (int r = 0; r < Rows; r++)
        {
            Span<byte> scaleBias = packed.AsSpan((int)(r * layout.RowBytes) + layout.CodeBytes);
            float scale = r % 7 == 3 ? 0.0f : (float)((random.NextDouble() - 0.3) * Math.Pow(2, random.Next(-12, 4)));
            float bias = (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-6, 6)));
            if (layout.Bits == QuantizedBits.Eight)
            {
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(scaleBias, scale);
                System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(scaleBias[4..], bias);
            }
            else
            {
                System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(scaleBias, (Half)scale);
                System.Buffers.Binary.BinaryPrimitives.WriteHalfLittleEndian(scaleBias[2..], (Half)bias);
            }
        }

        return packed;
    }

    private static void AssertSameBits(float[] expected, float[] actual, string context)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            uint want = BitConverter.SingleToUInt32Bits(expected[i]);
            uint got = BitConverter.SingleToUInt32Bits(actual[i]);
            Assert.True(want == got, $"{context}: element {i} is 0x{got:X8}, expected 0x{want:X8}");
        }
    }

    private static Delegate? Find(KernelOperation operation, EmbeddingIndexType index, int dim, VectorWidth width) =>
        s_build.Value.Kernels.Find(new KernelKey(operation, EmbeddingType.Float32, index, dim, width));

    private static GatherKernel<TElement, TIndex>? Gather<TElement, TIndex>(EmbeddingType table, int dim, VectorWidth width)
        where TElement : unmanaged
        where TIndex : unmanaged =>
        (GatherKernel<TElement, TIndex>?)s_build.Value.Kernels.Find(new KernelKey(KernelOperation.Gather, table, typeof(TIndex) == typeof(int) ? EmbeddingIndexType.Int32 : EmbeddingIndexType.Int64, dim, width));

    private static KernelOperation BagOperation(EmbeddingBagMode mode, bool weighted) => mode switch
    {
        EmbeddingBagMode.Max => KernelOperation.BagMax,
        EmbeddingBagMode.Mean => KernelOperation.BagMean,
        _ => weighted ? KernelOperation.BagWeightedSum : KernelOperation.BagSum,
    };

    /// <summary>
    /// Runs every generated bag kernel (sum, mean, max, weighted sum) with and without a padding row,
    /// over empty, single and duplicate-heavy bags, against the reference; max tables hold ties, NaN,
    /// ±0.0 and ±inf. Sum tables hold no NaN: which payload a sum of two NaNs keeps is not specified
    /// (the JIT may commute an addition), while max only ever selects an input. Sentinels guard the end of the outputs.
    /// </summary>
    private static void RunBag<TIndex>(Func<EmbeddingBagMode, bool, BagKernel<float, TIndex>?> lookup, int dim, VectorWidth width, int seed)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int lanes = width == VectorWidth.Scalar ? 1 : (int)width / 32;
        TIndex[] indices = Indices<TIndex>(seed);
        long[] starts = [0, 0, 1, 4, 4, 10, indices.Length];
        var random = new Random(seed);
        float[] special = [-1, 0.0f, -0.0f, 1, 2, float.NaN, float.PositiveInfinity, float.NegativeInfinity];
        float[] weights = Enumerable.Range(0, indices.Length).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray();
        int bags = starts.Length - 1;
        foreach ((EmbeddingBagMode mode, bool weighted) in new[] { (EmbeddingBagMode.Sum, false), (EmbeddingBagMode.Mean, false), (EmbeddingBagMode.Max, false), (EmbeddingBagMode.Sum, true) })
        {
            BagKernel<float, TIndex>? kernel = lookup(mode, weighted);
            if (lanes > dim)
            {
                Assert.True(kernel is null, $"dim {dim} is narrower than one {width}, so no kernel should exist");
                return;
            }

            Assert.True(kernel is not null, $"no {mode} (weighted {weighted}) bag kernel for dim {dim} at {width}");
            float[] table = mode == EmbeddingBagMode.Max ? Enumerable.Range(0, Rows * dim).Select(_ => special[random.Next(special.Length)]).ToArray() : Table(dim, seed).Select(value => float.IsNaN(value) ? 0.75f : value).ToArray();
            // The table's own row count (its rows ahead prefetched whole) and one past KernelHints.WholeRowTableBytes
            // (their first lines only): the prefetch changes no value.
            foreach ((long padding, long rows) in new[] { (-1L, Rows), (long.CreateTruncating(indices[2]), Rows), (-1L, 1L << 40) })
            {
                Assert.Equal(rows == Rows && dim * sizeof(float) > KernelHints.WholeRowMinBytes, KernelHints.PrefetchesWholeRows(rows, dim * sizeof(float)));
                float[] expected = new float[bags * dim];
                long[] expectedMax = new long[bags * dim];
                BagReference.EmbeddingBag(indices.Select(long.CreateTruncating).ToArray(), starts, table, dim, mode, expected, weighted ? weights : default, padding, expectedMax);

                float[] destination = Guarded(expected.Length);
                long[] maxIndices = new long[expected.Length + 1];
                maxIndices[^1] = long.MinValue;
                kernel(in table[0], rows, dim, in indices[0], in starts[0], bags, padding, in weights[0], ref destination[0], ref maxIndices[0]);

                for (int i = 0; i < expected.Length; i++)
                {
                    uint want = BitConverter.SingleToUInt32Bits(expected[i]);
                    uint got = BitConverter.SingleToUInt32Bits(destination[i]);
                    Assert.True(want == got, $"dim {dim}, {width}, {typeof(TIndex).Name}, {mode}, weighted {weighted}, padding {padding}, rows {rows}: bag {i / dim}, column {i % dim} is 0x{got:X8}, reference 0x{want:X8}");
                    Assert.True(mode != EmbeddingBagMode.Max || expectedMax[i] == maxIndices[i], $"dim {dim}, {width}, max index of bag {i / dim}, column {i % dim}: {maxIndices[i]}, reference {expectedMax[i]}");
                }

                Assert.Equal(long.MinValue, maxIndices[^1]);
                AssertSentinels(destination, expected.Length);
                if (mode == EmbeddingBagMode.Max)
                {
                    // No arg-max asked for (a null reference): the values-only loop, the same bits.
                    float[] valuesOnly = Guarded(expected.Length);
                    kernel(in table[0], rows, dim, in indices[0], in starts[0], bags, padding, in weights[0], ref valuesOnly[0], ref System.Runtime.CompilerServices.Unsafe.NullRef<long>());
                    for (int i = 0; i < expected.Length; i++)
                    {
                        Assert.True(BitConverter.SingleToUInt32Bits(expected[i]) == BitConverter.SingleToUInt32Bits(valuesOnly[i]), $"dim {dim}, {width}, {typeof(TIndex).Name}, max values only, padding {padding}: bag {i / dim}, column {i % dim}");
                    }

                    AssertSentinels(valuesOnly, expected.Length);
                }
            }
        }
    }

    /// <summary>
    /// Runs a generated scatter-add with and without frequency scaling and a padding row, on top of a
    /// non-zero gradient (accumulate), against the reference; sentinels guard the end of the table.
    /// </summary>
    private static void RunScatterAdd<TIndex>(ScatterAddKernel<float, TIndex>? kernel, int dim, VectorWidth width, int seed)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int lanes = width == VectorWidth.Scalar ? 1 : (int)width / 32;
        if (lanes > dim)
        {
            Assert.True(kernel is null, $"dim {dim} is narrower than one {width}, so no kernel should exist");
            return;
        }

        Assert.True(kernel is not null, $"no scatter-add kernel for dim {dim} at {width}");
        TIndex[] indices = Indices<TIndex>(seed);
        var random = new Random(seed);
        float[] gradient = Enumerable.Range(0, indices.Length * dim).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-6, 7)))).ToArray();
        float[] initial = Enumerable.Range(0, Rows * dim).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        int[] counts = new int[Rows];
        foreach (TIndex index in indices)
        {
            counts[int.CreateTruncating(index)]++;
        }

        foreach ((bool scaled, long padding) in new[] { (false, -1L), (true, -1L), (false, 7L), (true, 0L) })
        {
            EmbeddingGradOptions options = EmbeddingGradOptions.Accumulate | (scaled ? EmbeddingGradOptions.ScaleGradByFrequency : EmbeddingGradOptions.None);
            float[] expected = (float[])initial.Clone();
            Assert.Equal(-1, BackwardReference.EmbeddingBackward<TIndex>(gradient, indices, dim, expected, padding, options));

            float[] destination = Guarded(expected.Length);
            initial.CopyTo(destination, 0);
            ref readonly int countsStart = ref scaled ? ref counts[0] : ref System.Runtime.CompilerServices.Unsafe.NullRef<int>();
            kernel(in gradient[0], dim, in indices[0], in System.Runtime.CompilerServices.Unsafe.NullRef<int>(), indices.Length, padding, in countsStart, ref destination[0]);

            for (int i = 0; i < expected.Length; i++)
            {
                uint want = BitConverter.SingleToUInt32Bits(expected[i]);
                uint got = BitConverter.SingleToUInt32Bits(destination[i]);
                Assert.True(want == got, $"dim {dim}, {width}, {typeof(TIndex).Name}, scaled {scaled}, padding {padding}: row {i / dim}, column {i % dim} is 0x{got:X8}, reference 0x{want:X8}");
            }

            AssertSentinels(destination, expected.Length);
            if (!scaled)
            {
                // A position list (what a thread of the parallel backward passes): only the listed positions, in order.
                int[] positions = Enumerable.Range(0, indices.Length).Where(i => int.CreateTruncating(indices[i]) % 2 == 1).ToArray();
                float[] listed = (float[])initial.Clone();
                float[] listedGradient = positions.SelectMany(i => gradient.Skip(i * dim).Take(dim)).ToArray();
                Assert.Equal(-1, BackwardReference.EmbeddingBackward<TIndex>(listedGradient, positions.Select(i => indices[i]).ToArray(), dim, listed, padding, options));
                initial.CopyTo(destination, 0);
                kernel(in gradient[0], dim, in indices[0], in positions[0], positions.Length, padding, in countsStart, ref destination[0]);
                Assert.True(listed.AsSpan().SequenceEqual(destination.AsSpan(0, listed.Length)), $"dim {dim}, {width}, {typeof(TIndex).Name}, padding {padding}: the position list differs from the reference");
                AssertSentinels(destination, listed.Length);
            }
        }
    }

    private static void RunKernel<TElement, TIndex>(GatherKernel<TElement, TIndex>? kernel, int dim, VectorWidth width, int seed)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int lanes = width == VectorWidth.Scalar ? 1 : (int)width / 8 / System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>();
        if (lanes > dim)
        {
            Assert.True(kernel is null, $"dim {dim} is narrower than one {width} of {typeof(TElement).Name}, so no kernel should exist");
            return;
        }

        Assert.True(kernel is not null, $"no {typeof(TElement).Name} kernel for dim {dim} at {width}");

        // The float table's random bits, reinterpreted: a gather must copy any pattern.
        TElement[] table = MemoryMarshal.Cast<float, TElement>(Table(dim * 2, seed).AsSpan())[..(Rows * dim)].ToArray();
        TIndex[] indices = Indices<TIndex>(seed);
        TElement[] expected = new TElement[indices.Length * dim];
        for (int i = 0; i < indices.Length; i++)
        {
            Array.Copy(table, int.CreateChecked(indices[i]) * dim, expected, i * dim, dim);
        }

        byte[] buffer = new byte[(expected.Length + 19) * System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>()];
        buffer.AsSpan().Fill(0xA5);
        Span<TElement> destination = MemoryMarshal.Cast<byte, TElement>(buffer.AsSpan());
        kernel(in table[0], dim, in indices[0], indices.Length, ref destination[0]);

        int bytes = expected.Length * System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>();
        int first = MemoryMarshal.AsBytes(expected.AsSpan()).CommonPrefixLength(buffer.AsSpan(0, bytes));
        Assert.True(first == bytes, $"dim {dim}, {width}, {typeof(TElement).Name}, {typeof(TIndex).Name}: byte {first} differs from the reference");
        Assert.True(buffer.AsSpan(bytes).IndexOfAnyExcept((byte)0xA5) < 0, "a byte after the destination was overwritten");
    }

    /// <summary>Random bits (NaN payloads, infinities, subnormals and signed zeros included) so a copy that is not bit-exact shows.</summary>
    private static float[] Table(int dim, int seed)
    {
        var random = new Random(seed);
        float[] table = new float[Rows * dim];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = (i % 7) switch
            {
                0 => BitConverter.UInt32BitsToSingle((uint)random.Next() | 0x7FC0_0000u),
                1 => BitConverter.UInt32BitsToSingle((uint)random.Next(1, 0x007F_FFFF)),
                2 => -0.0f,
                _ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 0x7F80_0000) | (random.Next(2) == 0 ? 0u : 0x8000_0000u)),
            };
        }

        return table;
    }

    /// <summary>Both boundary rows, runs of one repeated row, and random rows with duplicates.</summary>
    private static TIndex[] Indices<TIndex>(int seed)
        where TIndex : IBinaryInteger<TIndex>
    {
        var random = new Random(seed + 1);
        int[] rows = [0, Rows - 1, 7, 7, 7, 0, 0, Rows - 1, .. Enumerable.Range(0, 40).Select(_ => random.Next(Rows)), Rows - 1];
        return rows.Select(TIndex.CreateTruncating).ToArray();
    }

    private static float[] Guarded(int length)
    {
        float[] buffer = new float[length + 19];
        // Filled as integers: a signalling-NaN float constant may be quieted once the JIT recompiles
        // this method at a higher tier, which would read as an overwritten sentinel.
        MemoryMarshal.Cast<float, uint>(buffer.AsSpan()).Fill(SentinelBits);
        return buffer;
    }

    private static void AssertSentinels(float[] destination, int start)
    {
        for (int i = start; i < destination.Length; i++)
        {
            Assert.True(BitConverter.SingleToUInt32Bits(destination[i]) == SentinelBits, $"sentinel {i - start} after the destination was overwritten");
        }
    }

    /// <summary>The consumer compiled once for all tests in this class, and its loaded kernel set.</summary>
    private sealed class ConsumerBuild
    {
        private const string Source = """
            using Embedding.Native;

            namespace Consumer;

            [EmbeddingKernels(1, 3, 4, 5, 15, 16, 17, 33, 130, 300, 1000, Types = EmbeddingTypes.All, Quantized = QuantizedBitWidths.All)]
            public sealed partial class ConsumerKernels;
            """;

        private ConsumerBuild(ImmutableArray<Diagnostic> generatorDiagnostics, EmitResult emit, ImmutableArray<string> hintNames, EmbeddingKernelSet? kernels)
        {
            GeneratorDiagnostics = generatorDiagnostics;
            Emit = emit;
            HintNames = hintNames;
            _kernels = kernels;
        }

        private readonly EmbeddingKernelSet? _kernels;

        public ImmutableArray<Diagnostic> GeneratorDiagnostics { get; }

        public EmitResult Emit { get; }

        public ImmutableArray<string> HintNames { get; }

        public EmbeddingKernelSet Kernels => _kernels
            ?? throw new InvalidOperationException("The consumer did not compile:\n" + string.Join("\n", Emit.Diagnostics));

        public static ConsumerBuild Create()
        {
            (Compilation output, ImmutableArray<Diagnostic> generatorDiagnostics, GeneratorRunResult result) = GeneratorHarness.RunAndUpdate(Source);
            using var stream = new MemoryStream();
            EmitResult emit = output.Emit(stream);
            ImmutableArray<string> hintNames = result.GeneratedSources.Select(source => source.HintName).ToImmutableArray();
            if (!emit.Success)
            {
                return new ConsumerBuild(generatorDiagnostics, emit, hintNames, null);
            }

            // Not collectible: the module initializer registers the set with the process-wide
            // registry, which would keep the context alive anyway.
            stream.Position = 0;
            Assembly assembly = new AssemblyLoadContext("GeneratedConsumer").LoadFromStream(stream);
            Type type = assembly.GetType("Consumer.ConsumerKernels", throwOnError: true)!;
            return new ConsumerBuild(generatorDiagnostics, emit, hintNames, (EmbeddingKernelSet)Activator.CreateInstance(type)!);
        }
    }
}
