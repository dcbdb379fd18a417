using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>emb_embedding_bag on float64 and float16 tables through its C function pointer, and the bfloat16 refusal.</summary>
public sealed unsafe class BagTableTypeExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, EmbBags*, int, void*, long, long*, long, int> Bag = &NativeExports.EmbeddingBag;

    private const int Float64 = 2, Float16 = 3, BFloat16 = 4, Int64 = 6;
    private const int Rows = 9, Dim = 37;

    // Bags [], [3,1,1], [8], [1,4,0,5,5] with padding row 5 in some calls.
    private static readonly long[] Indices = [3, 1, 1, 8, 1, 4, 0, 5, 5];
    private static readonly long[] Offsets = [0, 0, 3, 4];

    [Theory]
    [InlineData(0, false, -1L)]
    [InlineData(1, false, 5L)]
    [InlineData(2, false, -1L)]
    [InlineData(0, true, -1L)]
    [InlineData(0, true, 5L)]
    public void EmbeddingBag_Float64MatchesTheSpanApi(int mode, bool weighted, long padding)
    {
        var random = new Random(mode * 10 + padding.GetHashCode());
        double[] table = Enumerable.Range(0, Rows * Dim).Select(_ => random.NextDouble() * 8 - 4).ToArray();
        double[] psw = Enumerable.Range(0, Indices.Length).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        double[] expected = new double[Offsets.Length * Dim];
        long[] expectedMax = new long[expected.Length];
        EmbeddingPrimitives.EmbeddingBag<long, long>(Indices, Offsets, table, Dim, (EmbeddingBagMode)mode, expected, false, weighted ? psw : default, padding, mode == 2 ? expectedMax : default);

        double[] output = new double[expected.Length + 1];
        output[^1] = -7.25;
        long[] maxIndices = new long[expected.Length];
        Assert.Equal((int)EmbStatus.Ok, Call(table, Float64, mode, weighted ? psw : null, padding, output, expected.Length, maxIndices));
        Assert.Equal(expected.Select(BitConverter.DoubleToInt64Bits), output[..^1].Select(BitConverter.DoubleToInt64Bits));
        Assert.Equal(-7.25, output[^1]);
        if (mode == 2)
        {
            Assert.Equal(expectedMax, maxIndices);
        }
    }

    [Theory]
    [InlineData(0, false, -1L)]
    [InlineData(1, false, 5L)]
    [InlineData(2, false, -1L)]
    [InlineData(0, true, -1L)]
    [InlineData(0, true, 5L)]
    public void EmbeddingBag_Float16MatchesTheSpanApi(int mode, bool weighted, long padding)
    {
        var random = new Random(mode * 10 + padding.GetHashCode());
        Half[] table = Enumerable.Range(0, Rows * Dim).Select(_ => (Half)(random.NextDouble() * 8 - 4)).ToArray();
        Half[] psw = Enumerable.Range(0, Indices.Length).Select(_ => (Half)(random.NextDouble() * 2 - 1)).ToArray();
        Half[] expected = new Half[Offsets.Length * Dim];
        long[] expectedMax = new long[expected.Length];
        EmbeddingPrimitives.EmbeddingBag<long, long>(Indices, Offsets, table, Dim, (EmbeddingBagMode)mode, expected, false, weighted ? psw : default, padding, mode == 2 ? expectedMax : default);

        Half[] output = new Half[expected.Length + 1];
        output[^1] = (Half)(-7.25);
        long[] maxIndices = new long[expected.Length];
        Assert.Equal((int)EmbStatus.Ok, Call(table, Float16, mode, weighted ? psw : null, padding, output, expected.Length, maxIndices));
        Assert.Equal(expected.Select(BitConverter.HalfToUInt16Bits), output[..^1].Select(BitConverter.HalfToUInt16Bits));
        Assert.Equal((Half)(-7.25), output[^1]);
        if (mode == 2)
        {
            Assert.Equal(expectedMax, maxIndices);
        }
    }

    [Fact]
    public void EmbeddingBag_RefusesBFloat16AsTorchDoesAndWritesNothing()
    {
        ushort[] table = new ushort[Rows * Dim];
        ushort[] output = Enumerable.Repeat((ushort)0xA5A5, Offsets.Length * Dim).ToArray();
        Assert.Equal((int)EmbStatus.UnsupportedDtype, Call(table, BFloat16, 0, null, -1, output, output.Length, null));
        string message = Marshal.PtrToStringUTF8((nint)((delegate* unmanaged<byte*>)&NativeExports.LastErrorMessage)())!;
        Assert.Contains("torch 1.13 has no bfloat16 EmbeddingBag on CPU", message);
        Assert.All(output, value => Assert.Equal(0xA5A5, value));
    }

    [Fact]
    public void EmbeddingBag_RefusesAnUnknownTableDtype()
    {
        float[] table = new float[Rows * Dim];
        float[] output = new float[Offsets.Length * Dim];
        Assert.Equal((int)EmbStatus.UnsupportedDtype, Call(table, 7, 0, null, -1, output, output.Length, null));
        Assert.Equal((int)EmbStatus.UnsupportedDtype, Call(table, Int64, 0, null, -1, output, output.Length, null));
    }

    [Fact]
    public void EmbeddingBag_RefusesAFloat16OutputOverTheFloat16Weights()
    {
        Half[] weights = new Half[Indices.Length + Offsets.Length * Dim];
        Half[] table = new Half[Rows * Dim];
        fixed (Half* psw = weights)
        fixed (Half* t = table)
        fixed (long* index = Indices)
        fixed (long* offset = Offsets)
        {
            EmbBags bags = Layout(index, offset, psw, -1);
            // The output starts on the last per-sample weight: overlap is measured in 2-byte elements.
            Assert.Equal((int)EmbStatus.InvalidArgument, Bag(t, Float16, Rows, Dim, &bags, 0, psw + Indices.Length - 1, Offsets.Length * Dim, null, 0));
        }
    }

    private static int Call<T>(T[] table, int dtype, int mode, T[]? psw, long padding, T[] output, long capacity, long[]? maxIndices)
        where T : unmanaged
    {
        fixed (T* t = table)
        fixed (T* weights = psw)
        fixed (T* o = output)
        fixed (long* m = maxIndices)
        fixed (long* index = Indices)
        fixed (long* offset = Offsets)
        {
            EmbBags bags = Layout(index, offset, weights, padding);
            return Bag(t, dtype, Rows, Dim, &bags, mode, o, capacity, m, maxIndices?.Length ?? 0);
        }
    }

    private static EmbBags Layout(long* indices, long* offsets, void* perSampleWeights, long padding) => new()
    {
        Indices = indices,
        NumIndices = Indices.Length,
        IndexDtype = Int64,
        OffsetsDtype = Int64,
        Offsets = offsets,
        NumOffsets = Offsets.Length,
        PerSampleWeights = perSampleWeights,
        PaddingIdx = padding,
    };
}
