using System;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>Assertions every kernel test shares.</summary>
internal static class TestAssert
{
    /// <summary>Bit-for-bit float equality (NaN payloads and the sign of zero included).</summary>
    public static void BitEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string context)
    {
        Assert.True(expected.Length == actual.Length, $"{context}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            int want = BitConverter.SingleToInt32Bits(expected[i]), got = BitConverter.SingleToInt32Bits(actual[i]);
            if (want != got)
            {
                Assert.Fail($"{context}: element {i} is {actual[i]:R} (0x{got:X8}), expected {expected[i]:R} (0x{want:X8})");
            }
        }
    }

    /// <summary>
    /// Bytes <paramref name="body"/> allocates on this thread, measured up to three times, keeping the
    /// smallest. A real per-call allocation shows in every round; a one-off one does not fail the
    /// test (the shared ArrayPool drops its cached arrays when a gen-2 GC from tests running in
    /// parallel trims it, and the next rent allocates once).
    /// </summary>
    public static long AllocatedBytes(Action body)
    {
        long least = long.MaxValue;
        for (int round = 0; round < 3 && least != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            body();
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        return least;
    }
}
