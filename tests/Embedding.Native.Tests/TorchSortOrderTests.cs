using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <see cref="TorchSortOrder"/> (packed keys) against <see cref="TorchSortReference"/> (plain pairs), and the
/// properties any sort order has: a permutation, values non-decreasing. The permutations themselves are
/// compared with torch's own <c>torch.sort</c> in <c>tests/python/test_bag_backward_order.py</c>.
/// </summary>
public class TorchSortOrderTests
{
    public static IEnumerable<object[]> Patterns() =>
        new[] { "random", "few", "duplicates", "sorted", "reversed", "equal", "alternating", "organ" }.Select(p => new object[] { p });

    [Theory]
    [MemberData(nameof(Patterns))]
    public void Sort_IsTheReferencePermutationForEveryLengthUpTo300(string pattern)
    {
        for (int n = 0; n <= 300; n++)
        {
            Check(Values(pattern, n, seed: n), $"{pattern}, n={n}");
        }
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(4096)]
    [InlineData(100_000)]
    public void Sort_IsTheReferencePermutationForLargeLengths(int n)
    {
        foreach (object[] pattern in Patterns())
        {
            Check(Values((string)pattern[0], n, seed: 7), $"{pattern[0]}, n={n}");
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(64)]
    public void SplitThenFinish_InAnyOrder_IsTheSort(int partCount)
    {
        foreach (object[] pattern in Patterns())
        {
            foreach (int n in new[] { 0, 1, 16, 17, 33, 100, 1000, 20_000 })
            {
                long[] values = Values((string)pattern[0], n, seed: n + partCount);
                int shift = TorchSortOrder.ShiftFor(n);
                ulong[] expected = Keys(values, shift);
                TorchSortOrder.Sort(expected, shift);

                ulong[] keys = Keys(values, shift);
                var parts = new SortPart[partCount];
                int split = TorchSortOrder.Split(keys, shift, parts);
                Assert.InRange(split, 1, partCount);
                for (int i = split - 1; i >= 0; i--)
                {
                    // Last part first: the parts must not depend on each other.
                    TorchSortOrder.Finish(keys, parts[i], shift);
                }

                Assert.True(expected.AsSpan().SequenceEqual(keys), $"{pattern[0]}, n={n}, {split} parts");
            }
        }
    }

    [Fact]
    public void Sort_OfFewerThan17IsStable()
    {
        // libstdc++ leaves short ranges to insertion sort, which keeps equal values in position order.
        long[] values = [3, 1, 3, 1, 2, 2, 3, 1, 0, 0, 3, 2, 1, 1, 2, 3];
        int[] order = Sorted(values);
        Assert.Equal(Enumerable.Range(0, values.Length).OrderBy(i => values[i]).ToArray(), order);
    }

    [Fact]
    public void Sort_OfMoreThan16IsNotStable()
    {
        // The case the backward exists for: equal values leave the partitions out of position order.
        long[] values = Enumerable.Range(0, 64).Select(i => (long)(i % 3)).ToArray();
        int[] order = Sorted(values);
        Assert.NotEqual(Enumerable.Range(0, values.Length).OrderBy(i => values[i]).ToArray(), order);
    }

    [Fact]
    public void Fits_RefusesValuesThatOverlapThePositions()
    {
        int shift = TorchSortOrder.ShiftFor(1 << 20);
        Assert.Equal(20, shift);
        Assert.True(TorchSortOrder.Fits((1L << 44) - 1, shift));
        Assert.False(TorchSortOrder.Fits(1L << 44, shift));
        Assert.Equal(0, TorchSortOrder.ShiftFor(1));
        Assert.True(TorchSortOrder.Fits(long.MaxValue, 0));
    }

    private static void Check(long[] values, string context)
    {
        int[] order = Sorted(values);
        Assert.Equal(Enumerable.Range(0, values.Length), order.Order());
        for (int k = 1; k < order.Length; k++)
        {
            Assert.True(values[order[k - 1]] <= values[order[k]], context);
        }

        Assert.True(TorchSortReference.Order(values).AsSpan().SequenceEqual(order), context);
    }

    private static int[] Sorted(long[] values)
    {
        int shift = TorchSortOrder.ShiftFor(values.Length);
        ulong[] keys = Keys(values, shift);
        TorchSortOrder.Sort(keys, shift);
        return keys.Select(k => (int)(k & ((1UL << shift) - 1))).ToArray();
    }

    private static ulong[] Keys(long[] values, int shift) => values.Select((v, i) => ((ulong)v << shift) | (uint)i).ToArray();

    private static long[] Values(string pattern, int n, int seed)
    {
        var random = new Random(seed);
        long[] values = pattern switch
        {
            "random" => Enumerable.Range(0, n).Select(_ => (long)random.Next(Math.Max(n, 1))).ToArray(),
            "few" => Enumerable.Range(0, n).Select(_ => (long)random.Next(3)).ToArray(),
            "duplicates" => Enumerable.Range(0, n).Select(_ => (long)random.Next(Math.Max(n / 8, 1))).ToArray(),
            "sorted" => Enumerable.Range(0, n).Select(_ => (long)random.Next(50)).Order().ToArray(),
            "reversed" => Enumerable.Range(0, n).Select(_ => (long)random.Next(50)).OrderDescending().ToArray(),
            "equal" => Enumerable.Repeat(7L, n).ToArray(),
            "alternating" => Enumerable.Range(0, n).Select(i => (long)(i % 2)).ToArray(),
            _ => Enumerable.Range(0, n).Select(i => (long)Math.Min(i, n - 1 - i)).ToArray(),
        };
        return values;
    }
}
