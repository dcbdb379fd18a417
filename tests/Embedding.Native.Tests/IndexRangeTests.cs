using System;
using System.Numerics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The up-front index check finds the first bad index wherever it sits relative to vector blocks.</summary>
public sealed class IndexRangeTests
{
    [Fact]
    public void FindFirstOutOfRange_FindsTheFirstBadIndexAtEveryPosition()
    {
        for (int count = 0; count <= 70; count++)
        {
            for (int bad = 0; bad < count; bad++)
            {
                AssertFindsFirst<int>(count, bad, -1);
                AssertFindsFirst<int>(count, bad, 50);
                AssertFindsFirst<long>(count, bad, long.MinValue);
                AssertFindsFirst<long>(count, bad, 50);
            }

            Assert.Equal(-1, Find(TestData.Indices<long>(count, 50, count), 50));
        }
    }

    [Fact]
    public void FindFirstOutOfRange_AcceptsEveryNonNegativeInt32ForHugeTables() =>
        Assert.Equal(-1, Find(new[] { int.MaxValue, 0 }, 1L << 40));

    [Fact]
    public void FindFirstOutOfRange_RejectsEverythingForAnEmptyTable() =>
        Assert.Equal(0, Find(new long[] { 0 }, 0));

    private static void AssertFindsFirst<TIndex>(int count, int bad, long value)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        TIndex[] indices = TestData.Indices<TIndex>(count, 50, seed: count * 100 + bad);
        indices[bad] = TIndex.CreateTruncating(value);
        if (bad + 1 < count)
        {
            indices[count - 1] = TIndex.CreateTruncating(value);   // a later bad index must not be reported first
        }

        Assert.Equal(bad, Find(indices, 50));
    }

    private static nint Find<TIndex>(TIndex[] indices, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        IndexRange.FindFirstOutOfRange(ref indices.AsSpan().GetPinnableReferenceOrNull(), indices.Length, rows);
}

internal static class SpanTestExtensions
{
    /// <summary>A ref to the first element, or a null ref for an empty span (the kernels never read it then).</summary>
    public static ref T GetPinnableReferenceOrNull<T>(this Span<T> span) =>
        ref System.Runtime.InteropServices.MemoryMarshal.GetReference(span);
}
