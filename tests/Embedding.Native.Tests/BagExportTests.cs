using System;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The bag-forward exports, called through their C function pointers, and the emb_bags layout.</summary>
public sealed unsafe class BagExportTests
{
    private static readonly delegate* unmanaged<EmbBags*, long*, int> Count = &NativeExports.EmbeddingBagCount;
    private static readonly delegate* unmanaged<void*, int, long, long, EmbBags*, int, void*, long, long*, long, int> Bag = &NativeExports.EmbeddingBag;

    // W = arange(1,11).view(5,2); input [3,1,1,1,4,0]; offsets [0,0,3,3,6] (spec §3.4).
    private static readonly float[] W = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    private static readonly long[] Input = [3, 1, 1, 1, 4, 0];
    private static readonly int[] Offsets = [0, 0, 3, 3, 6];

    [Fact]
    public void EmbBags_MatchesTheCLayout()
    {
        // Offsets printed by gcc for emb_bags on x86-64 / arm64 Linux (offsetof / sizeof).
        Assert.Equal(72, Marshal.SizeOf<EmbBags>());
        Assert.Equal(72, sizeof(EmbBags));
        Assert.Equal(0, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.Indices)));
        Assert.Equal(8, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.NumIndices)));
        Assert.Equal(16, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.IndexDtype)));
        Assert.Equal(20, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.OffsetsDtype)));
        Assert.Equal(24, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.Offsets)));
        Assert.Equal(32, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.NumOffsets)));
        Assert.Equal(40, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.BagSize)));
        Assert.Equal(48, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.IncludeLastOffset)));
        Assert.Equal(52, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.Reserved)));
        Assert.Equal(56, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.PerSampleWeights)));
        Assert.Equal(64, (int)Marshal.OffsetOf<EmbBags>(nameof(EmbBags.PaddingIdx)));
    }

    [Theory]
    [InlineData(0, 0, new float[] { 0, 0, 13, 16, 0, 0, 13, 16, 0, 0 })]
    [InlineData(0, 1, new float[] { 0, 0, 13, 16, 0, 0, 13, 16 })]
    [InlineData(1, 0, new float[] { 0, 0, 4.333333492279053f, 5.333333492279053f, 0, 0, 4.333333492279053f, 5.333333492279053f, 0, 0 })]
    [InlineData(2, 0, new float[] { 0, 0, 7, 8, 0, 0, 9, 10, 0, 0 })]
    public void EmbeddingBag_ReproducesTorchExample(int mode, int includeLastOffset, float[] expected)
    {
        fixed (float* weight = W)
        fixed (long* input = Input)
        fixed (int* offsets = Offsets)
        {
            EmbBags bags = Layout(input, offsets, Offsets.Length);
            bags.IncludeLastOffset = includeLastOffset;
            long numBags;
            Assert.Equal(0, Count(&bags, &numBags));
            Assert.Equal(expected.Length / 2, numBags);

            float[] output = new float[expected.Length];
            long[] maxIndices = new long[expected.Length];
            fixed (float* o = output)
            fixed (long* m = maxIndices)
            {
                Assert.Equal(0, Bag(weight, 1, 5, 2, &bags, mode, o, output.Length, mode == 2 ? m : null, mode == 2 ? maxIndices.Length : 0));
            }

            TestAssert.BitEqual(expected, output, $"mode {mode}");
            if (mode == 2)
            {
                Assert.Equal(new long[] { -1, -1, 3, 3, -1, -1, 4, 4, -1, -1 }, maxIndices);
            }
        }
    }

    [Fact]
    public void EmbeddingBag_FixedSizeBagsWithWeightsAndPadding()
    {
        float[] psw = [2, 0.5f, -1, 3, 0.25f, 10];
        fixed (float* weight = W)
        fixed (long* input = Input)
        fixed (float* w = psw)
        {
            EmbBags bags = Layout(input, null, 0);
            bags.BagSize = 3;
            bags.PerSampleWeights = w;
            bags.PaddingIdx = 1;
            float[] output = new float[4];
            fixed (float* o = output)
            {
                Assert.Equal(0, Bag(weight, 1, 5, 2, &bags, 0, o, 4, null, 0));
            }

            TestAssert.BitEqual([14, 16, 12.25f, 22.5f], output, "psw + padding");
        }
    }

    [Fact]
    public void EmbeddingBag_ReportsFailuresAndWritesNothing()
    {
        float[] psw = new float[6];
        fixed (float* weight = W)
        fixed (long* input = Input)
        fixed (int* offsets = Offsets)
        fixed (float* w = psw)
        {
            float[] output = new float[10];
            output.AsSpan().Fill(42);
            long[] maxIndices = new long[10];
            fixed (float* o = output)
            fixed (long* m = maxIndices)
            {
                EmbBags good = Layout(input, offsets, 5);
                float* table = weight, destination = o;
                long* argMax = m;
                int Call(EmbBags bags, int mode = 0, long rows = 5, long capacity = 10) => Invoke(table, rows, &bags, mode, destination, capacity, argMax);

                Assert.Equal((int)EmbStatus.NullPointer, Bag(weight, 1, 5, 2, null, 0, o, 10, null, 0));
                Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { Reserved = 1 }));
                Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { IncludeLastOffset = 2 }));
                Assert.Equal((int)EmbStatus.UnsupportedDtype, Call(good with { IndexDtype = 1 }));
                Assert.Equal((int)EmbStatus.UnsupportedDtype, Call(good with { OffsetsDtype = 2 }));
                Assert.Equal((int)EmbStatus.InvalidArgument, Call(good, mode: 3));
                Assert.Equal((int)EmbStatus.NotSupported, Call(good with { PerSampleWeights = w }, mode: 1));
                Assert.Equal((int)EmbStatus.IndexOutOfRange, Call(good with { PaddingIdx = 5 }));
                Assert.Equal((int)EmbStatus.IndexOutOfRange, Call(good, rows: 4));
                Assert.Contains("position 4", Marshal.PtrToStringUTF8((nint)LastErrorMessage()));
                Assert.Equal((int)EmbStatus.BufferTooSmall, Call(good, capacity: 9));
                Assert.Equal((int)EmbStatus.NullPointer, Call(good with { Offsets = null }));
                Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { Offsets = null, NumOffsets = 0, BagSize = 4 }));
                Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { IncludeLastOffset = 1, NumOffsets = 4 }));
                Assert.Contains("last offset", Marshal.PtrToStringUTF8((nint)LastErrorMessage()));
                Assert.Equal((int)EmbStatus.InvalidArgument, Call(good with { Offsets = offsets + 2, NumOffsets = 3 }));
                Assert.Contains("offsets[0] has to be 0", Marshal.PtrToStringUTF8((nint)LastErrorMessage()));
                Assert.Equal((int)EmbStatus.InvalidArgument, Bag(weight, 1, 5, 2, &good, 0, weight, 10, null, 0));
                EmbBags copy = good;
                Assert.Equal((int)EmbStatus.InvalidArgument, Bag(weight, 1, 5, 2, &copy, 0, (float*)&copy, 10, null, 0));
                Assert.Equal("out overlaps bags; the output must be a separate buffer", Marshal.PtrToStringUTF8((nint)LastErrorMessage()));
                Assert.Equal(good, copy);
            }

            Assert.All(output, value => Assert.Equal(42, value));
            Assert.All(maxIndices, value => Assert.Equal(0, value));
        }
    }

    [Theory]
    [InlineData("bags->indices", 0)]
    [InlineData("bags->offsets", 2)]
    [InlineData("bags->per_sample_weights", 4)]
    [InlineData("bags", 4)]
    public void EmbeddingBagCount_RefusesANumBagsInsideTheBagsAndWritesNothing(string buffer, int element)
    {
        long[] input = (long[])Input.Clone();
        int[] offsets = (int[])Offsets.Clone();
        float[] psw = [2, 0.5f, -1, 3, 0.25f, 10];
        fixed (long* index = input)
        fixed (int* offset = offsets)
        fixed (float* weights = psw)
        {
            EmbBags bags = Layout(index, offset, offsets.Length);
            bags.PerSampleWeights = weights;
            EmbBags before = bags;
            long* numBags = buffer switch
            {
                "bags->indices" => index + element,
                "bags->offsets" => (long*)(offset + element),
                "bags" => (long*)&bags + element,
                _ => (long*)(weights + element),
            };
            Assert.Equal((int)EmbStatus.InvalidArgument, Count(&bags, numBags));
            Assert.Equal($"num_bags overlaps {buffer}; the output must be a separate buffer", Marshal.PtrToStringUTF8((nint)LastErrorMessage()));
            Assert.Equal(before, bags);
        }

        Assert.Equal(Input, input);
        Assert.Equal(Offsets, offsets);
        Assert.Equal([2f, 0.5f, -1, 3, 0.25f, 10], psw);
    }

    private static int Invoke(float* weight, long rows, EmbBags* bags, int mode, float* output, long capacity, long* maxIndices) =>
        Bag(weight, 1, rows, 2, bags, mode, output, capacity, maxIndices, 10);

    private static byte* LastErrorMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return lastError();
    }

    private static EmbBags Layout(long* input, int* offsets, long numOffsets) => new()
    {
        Indices = input,
        NumIndices = Input.Length,
        IndexDtype = 6,
        OffsetsDtype = 5,
        Offsets = offsets,
        NumOffsets = numOffsets,
        PaddingIdx = EmbeddingPrimitives.NoPadding,
    };
}
