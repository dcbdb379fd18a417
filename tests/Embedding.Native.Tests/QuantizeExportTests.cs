using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <c>emb_quantized_row_bytes</c>, <c>emb_quantize</c>, <c>emb_quantize_optimized</c> and
/// <c>emb_dequantize</c>, called in-process through unmanaged function pointers: the span API's
/// bytes and floats for both weight types and every bit width, and each refusal with its status,
/// its message and nothing written.
/// </summary>
public sealed unsafe class QuantizeExportTests
{
    private static readonly delegate* unmanaged<int, long, long*, int> RowBytes = &NativeExports.QuantizedRowBytes;
    private static readonly delegate* unmanaged<void*, int, long, long, int, void*, long, int> Quantize = &NativeExports.Quantize;
    private static readonly delegate* unmanaged<void*, int, long, long, int, long, double, void*, long, int> QuantizeOptimized = &NativeExports.QuantizeOptimized;
    private static readonly delegate* unmanaged<void*, long, long, int, float*, long, int> Dequantize = &NativeExports.Dequantize;

    private const int Float32 = (int)EmbDtype.Float32, Float16 = (int)EmbDtype.Float16;

    [Theory]
    [InlineData(8, 1, 9)]
    [InlineData(8, 300, 308)]
    [InlineData(4, 1, 5)]
    [InlineData(4, 7, 8)]
    [InlineData(4, 8, 8)]
    [InlineData(2, 1, 5)]
    [InlineData(2, 5, 6)]
    [InlineData(2, 8, 6)]
    [InlineData(4, int.MaxValue, 1073741828L)]
    public void RowBytes_IsTheLayoutsRowSize(int bitWidth, long dim, long expected)
    {
        long bytes = -1;
        Assert.Equal(EmbStatus.Ok, (EmbStatus)RowBytes(bitWidth, dim, &bytes));
        Assert.Equal(expected, bytes);
        Assert.Equal(new QuantizedRowLayout((QuantizedBits)bitWidth, (int)dim).RowBytes, bytes);
    }

    [Fact]
    public void RowBytes_RefusesBadWidthsAndDimensions()
    {
        long bytes = -1;
        Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)RowBytes(3, 8, &bytes));
        Assert.StartsWith("bit_width is 3;", LastMessage());
        Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)RowBytes(8, 0, &bytes));
        Assert.StartsWith("embedding_dim is 0;", LastMessage());
        Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)RowBytes(8, -2, &bytes));
        Assert.Equal(EmbStatus.SizeOverflow, (EmbStatus)RowBytes(8, 1L << 31, &bytes));
        Assert.Equal(EmbStatus.NullPointer, (EmbStatus)RowBytes(8, 4, null));
        Assert.Equal(-1, bytes);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(4)]
    [InlineData(2)]
    public void Quantize_MatchesTheSpanApiForBothWeightTypes(int bitWidth)
    {
        var bits = (QuantizedBits)bitWidth;
        foreach (int dim in new[] { 1, 2, 3, 5, 8, 31, 64, 130 })
        {
            const int Rows = 17;
            long rowBytes = new QuantizedRowLayout(bits, dim).RowBytes;
            float[] weight = Weight(Rows, dim, seed: dim);
            Half[] half = weight.Select(x => (Half)x).ToArray();

            byte[] expected = new byte[Rows * rowBytes], expectedHalf = new byte[Rows * rowBytes];
            EmbeddingPrimitives.Quantize(weight, dim, bits, expected);
            EmbeddingPrimitives.Quantize(half, dim, bits, expectedHalf);

            byte[] packed = new byte[(Rows * rowBytes) + 5], packedHalf = new byte[(Rows * rowBytes) + 5];
            packed.AsSpan().Fill(0xA5);
            packedHalf.AsSpan().Fill(0xA5);
            fixed (float* w = weight)
            fixed (Half* h = half)
            fixed (byte* p = packed)
            fixed (byte* ph = packedHalf)
            {
                Assert.Equal(EmbStatus.Ok, (EmbStatus)Quantize(w, Float32, Rows, dim, bitWidth, p, packed.Length));
                Assert.Equal(EmbStatus.Ok, (EmbStatus)Quantize(h, Float16, Rows, dim, bitWidth, ph, packedHalf.Length));
            }

            Assert.Equal(expected, packed[..expected.Length]);
            Assert.Equal(expectedHalf, packedHalf[..expected.Length]);
            Assert.All(packed[expected.Length..], b => Assert.Equal(0xA5, b));

            float[] restored = new float[Rows * dim], expectedRestored = new float[Rows * dim];
            EmbeddingPrimitives.Dequantize(expected, dim, bits, expectedRestored);
            fixed (byte* p = expected)
            fixed (float* o = restored)
            {
                Assert.Equal(EmbStatus.Ok, (EmbStatus)Dequantize(p, Rows, dim, bitWidth, o, restored.Length));
            }

            TestAssert.BitEqual(expectedRestored, restored, $"{bitWidth}-bit dequantize, dim {dim}");
        }
    }

    [Theory]
    [InlineData(4, 200, 0.16)]
    [InlineData(2, 200, 0.16)]
    [InlineData(4, 37, 0.5)]
    [InlineData(2, 1, 1.0)]
    public void QuantizeOptimized_MatchesTheSpanApi(int bitWidth, long numBins, double ratio)
    {
        var bits = (QuantizedBits)bitWidth;
        const int Rows = 9, Dim = 24;
        long bytes = Rows * new QuantizedRowLayout(bits, Dim).RowBytes;
        float[] weight = Weight(Rows, Dim, seed: 4);
        Half[] half = weight.Select(x => (Half)x).ToArray();
        byte[] expected = new byte[bytes], expectedHalf = new byte[bytes], packed = new byte[bytes], packedHalf = new byte[bytes];
        EmbeddingPrimitives.QuantizeOptimized(weight, Dim, bits, expected, (int)numBins, ratio);
        EmbeddingPrimitives.QuantizeOptimized(half, Dim, bits, expectedHalf, (int)numBins, ratio);
        fixed (float* w = weight)
        fixed (Half* h = half)
        fixed (byte* p = packed)
        fixed (byte* ph = packedHalf)
        {
            Assert.Equal(EmbStatus.Ok, (EmbStatus)QuantizeOptimized(w, Float32, Rows, Dim, bitWidth, numBins, ratio, p, bytes));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)QuantizeOptimized(h, Float16, Rows, Dim, bitWidth, numBins, ratio, ph, bytes));
        }

        Assert.Equal(expected, packed);
        Assert.Equal(expectedHalf, packedHalf);
    }

    [Fact]
    public void Quantize_RefusesBadArgumentsWithoutWriting()
    {
        float[] weight = Weight(2, 4, seed: 1);
        byte[] packed = new byte[64];
        packed.AsSpan().Fill(0xA5);
        fixed (float* w = weight)
        fixed (byte* p = packed)
        {
            Expect(EmbStatus.UnsupportedDtype, "not dtype 2", Quantize(w, (int)EmbDtype.Float64, 2, 4, 8, p, 64));
            Expect(EmbStatus.UnsupportedDtype, "not dtype 4", Quantize(w, (int)EmbDtype.BFloat16, 2, 4, 8, p, 64));
            Expect(EmbStatus.UnsupportedDtype, "not dtype 5", Quantize(w, (int)EmbDtype.Int32, 2, 4, 8, p, 64));
            Expect(EmbStatus.InvalidArgument, "bit_width is 1;", Quantize(w, Float32, 2, 4, 1, p, 64));
            Expect(EmbStatus.InvalidArgument, "bit_width is 16;", Quantize(w, Float32, 2, 4, 16, p, 64));
            Expect(EmbStatus.InvalidArgument, "embedding_dim is 0;", Quantize(w, Float32, 2, 0, 8, p, 64));
            Expect(EmbStatus.InvalidArgument, "num_embeddings is -1;", Quantize(w, Float32, -1, 4, 8, p, 64));
            Expect(EmbStatus.InvalidArgument, "packed_capacity is -1;", Quantize(w, Float32, 2, 4, 8, p, -1));
            Expect(EmbStatus.NullPointer, "weight is NULL", Quantize(null, Float32, 2, 4, 8, p, 64));
            Expect(EmbStatus.NullPointer, "packed is NULL", Quantize(w, Float32, 2, 4, 8, null, 64));
            Expect(EmbStatus.BufferTooSmall, "packed holds 23 bytes; 2 rows of 12 bytes (8-bit, dimension 4) need 24", Quantize(w, Float32, 2, 4, 8, p, 23));
            Expect(EmbStatus.SizeOverflow, "more than memory can address", Quantize(w, Float32, long.MaxValue / 4, 4, 8, p, 64));
            Expect(EmbStatus.SizeOverflow, "exceeds the largest supported row", Quantize(w, Float32, 1, int.MaxValue, 8, p, 64));
            Expect(EmbStatus.InvalidArgument, "packed overlaps weight", Quantize(w, Float32, 2, 4, 8, (byte*)w + 4, 64));

            Expect(EmbStatus.InvalidArgument, "bit_width is 8;", QuantizeOptimized(w, Float32, 2, 4, 8, 200, 0.16, p, 64));
            Expect(EmbStatus.InvalidArgument, "num_bins is 0;", QuantizeOptimized(w, Float32, 2, 4, 4, 0, 0.16, p, 64));
            Expect(EmbStatus.InvalidArgument, "num_bins is 2147483648;", QuantizeOptimized(w, Float32, 2, 4, 4, 1L << 31, 0.16, p, 64));
            Expect(EmbStatus.InvalidArgument, "ratio is 1.5;", QuantizeOptimized(w, Float32, 2, 4, 4, 200, 1.5, p, 64));
            Expect(EmbStatus.InvalidArgument, "ratio is NaN;", QuantizeOptimized(w, Float32, 2, 4, 2, 200, double.NaN, p, 64));
            Expect(EmbStatus.UnsupportedDtype, "not dtype 2", QuantizeOptimized(w, (int)EmbDtype.Float64, 2, 4, 4, 200, 0.16, p, 64));
            Expect(EmbStatus.BufferTooSmall, "need 12", QuantizeOptimized(w, Float32, 2, 4, 4, 200, 0.16, p, 11));
        }

        Assert.All(packed, b => Assert.Equal(0xA5, b));
        Assert.Equal(Weight(2, 4, seed: 1), weight);

        // No rows: NULL buffers are fine and nothing is written.
        Assert.Equal(EmbStatus.Ok, (EmbStatus)Quantize(null, Float32, 0, 4, 4, null, 0));
        Assert.Equal(EmbStatus.Ok, (EmbStatus)QuantizeOptimized(null, Float16, 0, 4, 2, 200, 0.16, null, 0));
    }

    [Fact]
    public void Dequantize_RefusesBadArgumentsWithoutWriting()
    {
        byte[] packed = new byte[64];   // two 8-bit rows of dimension 4 use the first 24 bytes
        float[] output = TestData.Guarded(8);
        float[] before = output.ToArray();
        fixed (byte* p = packed)
        fixed (float* o = output)
        {
            Expect(EmbStatus.InvalidArgument, "bit_width is 0;", Dequantize(p, 2, 4, 0, o, 8));
            Expect(EmbStatus.InvalidArgument, "embedding_dim is 0;", Dequantize(p, 2, 0, 8, o, 8));
            Expect(EmbStatus.InvalidArgument, "num_embeddings is -3;", Dequantize(p, -3, 4, 8, o, 8));
            Expect(EmbStatus.InvalidArgument, "out_capacity is -1;", Dequantize(p, 2, 4, 8, o, -1));
            Expect(EmbStatus.NullPointer, "packed is NULL", Dequantize(null, 2, 4, 8, o, 8));
            Expect(EmbStatus.NullPointer, "out is NULL", Dequantize(p, 2, 4, 8, null, 8));
            Expect(EmbStatus.BufferTooSmall, "out holds 7 elements; 2 rows × 4 columns need 8", Dequantize(p, 2, 4, 8, o, 7));
            Expect(EmbStatus.SizeOverflow, "more than memory can address", Dequantize(p, long.MaxValue / 8, 4, 8, o, 8));
            Expect(EmbStatus.InvalidArgument, "out overlaps packed", Dequantize(p, 2, 4, 8, (float*)(p + 20), 8));
        }

        TestAssert.BitEqual(before, output, "after refused calls");
        Assert.All(packed, b => Assert.Equal(0, b));
        Assert.Equal(EmbStatus.Ok, (EmbStatus)Dequantize(null, 0, 4, 2, null, 0));
    }

    [Fact]
    public void Exports_AreTheFunctionsTheHeaderDeclares()
    {
        HeaderDeclarations.AssertExportedAndDeclared("emb_quantized_row_bytes", "emb_quantize", "emb_quantize_optimized", "emb_dequantize");
    }

    private static void Expect(EmbStatus expected, string message, int status)
    {
        Assert.Equal(expected, (EmbStatus)status);
        Assert.Contains(message, LastMessage());
    }

    /// <summary>Values in [-4, 4) with a few exact ties and repeated extremes.</summary>
    private static float[] Weight(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        float[] weight = Enumerable.Range(0, rows * dim).Select(_ => ((float)random.NextDouble() * 8) - 4).ToArray();
        for (int i = 0; i < weight.Length; i += 7)
        {
            weight[i] = (random.Next(16) / 2.0f) - 4;
        }

        return weight;
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
