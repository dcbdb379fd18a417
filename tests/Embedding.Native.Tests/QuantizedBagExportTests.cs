using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The quantized exports, called through their C function pointers: results equal to the span API, and every status.</summary>
public sealed unsafe class QuantizedBagExportTests
{
    private const int Int32 = 5, Int64 = 6;

    private static readonly delegate* unmanaged<void*, int, long, long, EmbBags*, int, int*, long, float*, long, int> Bag = &NativeExports.QuantizedEmbeddingBag;
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, int*, long, float*, long, int> Lookup = &NativeExports.QuantizedEmbedding;

    private const int Rows = 9;

    public static TheoryData<QuantizedBits, int, bool, bool> Cases()
    {
        var data = new TheoryData<QuantizedBits, int, bool, bool>();
        foreach (QuantizedBits bits in QuantizedTables.AllBits)
        {
            foreach (int dim in new[] { 1, 7, 8, 64, 67 })
            {
                data.Add(bits, dim, false, false);
                data.Add(bits, dim, true, false);
                data.Add(bits, dim, false, true);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void QuantizedEmbeddingBag_EqualsTheSpanApi(QuantizedBits bits, int dim, bool pruned, bool mean)
    {
        var layout = new QuantizedRowLayout(bits, dim);
        byte[] packed = QuantizedTables.Table(bits, dim, Rows, dim);
        int[] mapping = pruned ? QuantizedTables.Mapping(13, Rows, dim) : [];
        long[] indices = TestData.Indices<long>(20, pruned ? 13 : Rows, dim);
        int[] offsets = [0, 0, 3, 9, 9, 15];
        float[] psw = mean ? [] : QuantizedTables.Weights(20, dim);
        EmbeddingBagMode mode = mean ? EmbeddingBagMode.Mean : EmbeddingBagMode.Sum;
        float[] expected = new float[offsets.Length * dim];
        EmbeddingPrimitives.QuantizedEmbeddingBag<long, int>(indices, offsets, packed, layout, mode, expected, false, psw, 2, mapping);

        float[] actual = TestData.Guarded(expected.Length);
        fixed (byte* p = packed)
        fixed (long* i = indices)
        fixed (int* o = offsets, m = mapping)
        fixed (float* w = psw, output = actual)
        {
            EmbBags bags = Layout(i, Int64, indices.Length, o, offsets.Length) with { PerSampleWeights = mean ? null : w, PaddingIdx = 2 };
            Assert.Equal(0, Bag(p, (int)bits, Rows, dim, &bags, (int)mode, pruned ? m : null, mapping.Length, output, expected.Length));
        }

        TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"{(int)bits}-bit, dim {dim}");
        Assert.All(actual[expected.Length..], value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));

        float[] expectedLookup = new float[indices.Length * dim], actualLookup = new float[indices.Length * dim];
        int[] indices32 = indices.Select(x => (int)x).ToArray();
        EmbeddingPrimitives.QuantizedEmbedding<int>(indices32, packed, layout, expectedLookup, mapping);
        fixed (byte* p = packed)
        fixed (int* i = indices32, m = mapping)
        fixed (float* output = actualLookup)
        {
            Assert.Equal(0, Lookup(p, (int)bits, Rows, dim, i, Int32, indices32.Length, pruned ? m : null, mapping.Length, output, actualLookup.Length));
        }

        TestAssert.BitEqual(expectedLookup, actualLookup, $"{(int)bits}-bit lookup, dim {dim}");
    }

    [Fact]
    public void QuantizedEmbeddingBag_FixedSizeBagsAndEmptyCalls()
    {
        var layout = new QuantizedRowLayout(QuantizedBits.Eight, 5);
        byte[] packed = QuantizedTables.Table(QuantizedBits.Eight, 5, Rows, 1);
        int[] indices = [1, 2, 3, 4, 5, 6];
        float[] expected = new float[10], actual = new float[10];
        EmbeddingPrimitives.QuantizedEmbeddingBag<int>(indices, 3, packed, layout, EmbeddingBagMode.Mean, expected);
        fixed (byte* p = packed)
        fixed (int* i = indices)
        fixed (float* output = actual)
        {
            EmbBags bags = Layout(i, Int32, 6, null, 0) with { BagSize = 3 };
            Assert.Equal(0, Bag(p, 8, Rows, 5, &bags, 1, null, 0, output, 10));

            // No indices, no offsets: nothing to do, every pointer may be NULL.
            EmbBags none = Layout(null, Int64, 0, null, 0);
            Assert.Equal(0, Bag(null, 4, 0, 5, &none, 0, null, 0, null, 0));
            Assert.Equal(0, Lookup(null, 2, 0, 5, null, Int64, 0, null, 0, null, 0));
        }

        TestAssert.BitEqual(expected, actual, "fixed-size mean");
    }

    [Fact]
    public void QuantizedEmbeddingBag_ReportsEveryStatusAndWritesNothing()
    {
        byte[] packed = QuantizedTables.Table(QuantizedBits.Four, 6, Rows, 2);
        long[] indices = [0, 1, 2, 3, 4, 5];
        int[] offsets = [0, 3];
        int[] mapping = [0, 1, -1, 3, 4, 5, 6, 7];
        float[] psw = new float[6];
        float[] output = new float[12];
        output.AsSpan().Fill(42);
        fixed (byte* p = packed)
        fixed (long* i = indices)
        fixed (int* o = offsets, m = mapping)
        fixed (float* w = psw, destination = output)
        {
            EmbBags good = Layout(i, Int64, 6, o, 2);
            byte* table = p;
            float* target = destination;
            int Call(EmbBags bags, int bits = 4, long rows = Rows, long dim = 6, int mode = 0, int* map = null, long mapSize = 0, long capacity = 12) =>
                Bag(table, bits, rows, dim, &bags, mode, map, mapSize, target, capacity);

            Assert.Equal((int)EmbStatus.BufferTooSmall, Call(good, capacity: 0));
            Assert.Contains("2 bags × 6 columns need 12", LastMessage());
            Assert.Equal((int)EmbStatus.NullPointer, Bag(p, 4, Rows, 6, null, 0, null, 0, destination, 12));
            Assert.Equal((int)EmbStatus.NullPointer, Bag(null, 4, Rows, 6, &good, 0, null, 0, destination, 12));
            Assert.Equal((int)EmbStatus.NullPointer, Call(good, map: null, mapSize: 3));
            Assert.Equal((int)EmbStatus.NullPointer, Bag(p, 4, Rows, 6, &good, 0, null, 0, null, 12));
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good, bits: 3));
            Assert.Contains("bit_width is 3", LastMessage());
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good, dim: 0));
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good, rows: -1));
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good, map: m, mapSize: -1));
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good, mode: 3));
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { Reserved = 1 }));
            Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { Offsets = o + 1, NumOffsets = 1 }));
            Assert.Equal((int)EmbStatus.InvalidArgument, Bag(p, 4, Rows, 6, &good, 0, null, 0, (float*)p, 12));
            Assert.Equal("out overlaps packed; the output must be a separate buffer", LastMessage());
            Assert.Equal((int)EmbStatus.InvalidArgument, Bag(p, 4, Rows, 6, &good, 0, (int*)destination, 3, destination, 12));
            Assert.Equal("out overlaps compressed_indices_mapping; the output must be a separate buffer", LastMessage());
            Assert.Equal((int)EmbStatus.InvalidArgument, Bag(p, 4, Rows, 6, &good, 0, null, 0, (float*)i, 12));
            Assert.Equal((int)EmbStatus.UnsupportedDtype, Call(good with { IndexDtype = 1 }));
            Assert.Equal((int)EmbStatus.SizeOverflow, Call(good, dim: (long)int.MaxValue + 1));
            Assert.Equal((int)EmbStatus.SizeOverflow, Call(good, rows: long.MaxValue / 2));
            Assert.Equal((int)EmbStatus.NotSupported, Call(good, mode: 2));
            Assert.Contains("no max mode", LastMessage());
            Assert.Equal((int)EmbStatus.NotSupported, Call(good with { PerSampleWeights = w }, mode: 1));
            Assert.Equal((int)EmbStatus.NotSupported, Call(good, map: m, mapSize: (long)int.MaxValue + 1));
            Assert.Equal((int)EmbStatus.BufferTooSmall, Call(good, capacity: 11));

            // Index errors: emb_last_index_error reports bad indices, not bad mapping entries or padding_idx.
            Assert.Equal((int)EmbStatus.IndexOutOfRange, Call(good, rows: 5));
            Assert.Contains("index 5 at position 5", LastMessage());
            Assert.Equal(1, LastIndex(out long position, out long value));
            Assert.Equal((5L, 5L), (position, value));
            Assert.Equal((int)EmbStatus.IndexOutOfRange, Call(good, map: m, mapSize: 4));
            Assert.Contains("outside compressed_indices_mapping", LastMessage());
            Assert.Equal(1, LastIndex(out position, out value));
            Assert.Equal((4L, 4L), (position, value));
            Assert.Equal((int)EmbStatus.IndexOutOfRange, Call(good, rows: 5, map: m, mapSize: 8));
            Assert.Contains("compressed_indices_mapping[5] = 5", LastMessage());
            Assert.Equal(0, LastIndex(out _, out _));
            Assert.Equal((int)EmbStatus.IndexOutOfRange, Call(good with { PaddingIdx = 8 }, map: m, mapSize: 8));
            Assert.Equal(0, LastIndex(out _, out _));
            Assert.Equal((int)EmbStatus.Ok, Call(good with { PaddingIdx = 7 }, map: m, mapSize: 8));
            float[] written = output.ToArray();
            output.AsSpan().Fill(42);

            // The lookup's own arguments.
            Assert.Equal((int)EmbStatus.NullPointer, Lookup(p, 4, Rows, 6, null, Int64, 2, null, 0, destination, 12));
            Assert.Equal((int)EmbStatus.UnsupportedDtype, Lookup(p, 4, Rows, 6, i, 2, 2, null, 0, destination, 12));
            Assert.Equal((int)EmbStatus.InvalidArgument, Lookup(p, 4, Rows, 6, i, Int64, -1, null, 0, destination, 12));
            Assert.Equal((int)EmbStatus.NotSupported, Lookup(p, 4, Rows, 6, i, Int64, (long)int.MaxValue + 1, null, 0, destination, 12));
            Assert.Equal((int)EmbStatus.BufferTooSmall, Lookup(p, 4, Rows, 6, i, Int64, 3, null, 0, destination, 12));
            Assert.Contains("3 indices × 6 columns need 18", LastMessage());
            Assert.Equal((int)EmbStatus.InvalidArgument, Lookup(p, 4, Rows, 6, i, Int64, 2, null, 0, (float*)(i + 1), 12));
            Assert.Equal("out overlaps indices; the output must be a separate buffer", LastMessage());
            float[] large = new float[36];
            fixed (float* l = large)
            {
                Assert.Equal((int)EmbStatus.IndexOutOfRange, Lookup(p, 4, 4, 6, i, Int64, 6, null, 0, l, 36));
            }

            Assert.Equal(1, LastIndex(out position, out value));
            Assert.Equal((4L, 4L), (position, value));
            Assert.All(large, v => Assert.Equal(0, v));
            Assert.All(output, v => Assert.Equal(42, v));
            Assert.NotEqual(42, written[0]);
        }
    }

    [Fact]
    public void Exports_AreTheFunctionsTheHeaderDeclares()
    {
        HeaderDeclarations.AssertExportedAndDeclared("emb_quantized_embedding_bag", "emb_quantized_embedding");
        string header = HeaderDeclarations.Text();

        int section = header.IndexOf("/* ---- Quantized tables: lookups and bags", StringComparison.Ordinal);
        Assert.True(section > header.IndexOf("EMB_API int32_t emb_embedding_bag_per_sample_weights_backward(", StringComparison.Ordinal), "the quantized section ends the header");
    }

    private static EmbBags Layout(void* indices, int indexDtype, long numIndices, int* offsets, long numOffsets) => new()
    {
        Indices = indices,
        NumIndices = numIndices,
        IndexDtype = indexDtype,
        OffsetsDtype = Int32,
        Offsets = offsets,
        NumOffsets = numOffsets,
        PaddingIdx = EmbeddingPrimitives.NoPadding,
    };

    private static string LastMessage() => Marshal.PtrToStringUTF8((nint)NativeExportsAccess.LastErrorMessage())!;

    private static int LastIndex(out long position, out long value)
    {
        long p, v;
        int found = NativeExportsAccess.LastIndexError(&p, &v);
        position = p;
        value = v;
        return found;
    }

    /// <summary>The error exports as function pointers.</summary>
    private static class NativeExportsAccess
    {
        public static readonly delegate* unmanaged<byte*> LastErrorMessage = &NativeExports.LastErrorMessage;
        public static readonly delegate* unmanaged<long*, long*, int> LastIndexError = &NativeExports.LastIndexError;
    }
}
