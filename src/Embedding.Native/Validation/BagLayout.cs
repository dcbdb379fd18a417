using System;
using System.Globalization;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// Turns the ways torch describes bags — 1-D <c>offsets</c> (with or without
/// <c>include_last_offset</c>) or fixed-size bags from a 2-D input — into one form every bag kernel
/// reads: <c>numBags + 1</c> non-decreasing boundaries, bag <c>b</c> covering positions
/// <c>[starts[b], starts[b + 1])</c>. Offsets are validated on the way (torch 1.13 crashes or returns
/// garbage for several malformed offsets; see docs/divergences.md), so kernels can trust the result.
/// </summary>
internal static class BagLayout
{
    /// <summary>Bags described by <paramref name="numOffsets"/> offsets.</summary>
    public static long CountBags(long numOffsets, bool includeLastOffset) =>
        includeLastOffset ? Math.Max(numOffsets - 1, 0) : numOffsets;

    /// <summary>
    /// Validates <paramref name="offsets"/> and writes the boundaries:
    /// <code>
    /// K = offsets.Length, L = numIndices
    /// includeLastOffset: require K &gt;= 1 and offsets[K-1] == L;  bags = K - 1
    /// otherwise:         bags = K;  starts[K] = L                 (the last bag runs to the end)
    /// require offsets[0] == 0 (when K &gt; 0), offsets non-decreasing, every offset &lt;= L
    /// </code>
    /// Zero offsets without <c>includeLastOffset</c> describe zero bags: positions then belong to no
    /// bag (torch 1.13 crashes in max mode and in backward here).
    /// </summary>
    /// <returns>null on success; otherwise the message, and <paramref name="starts"/> may be partly written.</returns>
    public static string? Build<TOffset>(ReadOnlySpan<TOffset> offsets, long numIndices, bool includeLastOffset, Span<long> starts)
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        if (includeLastOffset && offsets.Length == 0)
        {
            return "include_last_offset: number of offset should be at least 1";
        }

        long previous = 0;
        for (int b = 0; b < offsets.Length; b++)
        {
            long offset = long.CreateTruncating(offsets[b]);
            if (b == 0 && offset != 0)
            {
                return Text($"offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from position 0. However, got {offset}");
            }

            if (offset < previous)
            {
                return Text($"offsets must be non-decreasing, but offsets[{b}] = {offset} is smaller than offsets[{b - 1}] = {previous}");
            }

            if (offset > numIndices)
            {
                return Text($"offsets[{b}] = {offset} is greater than the input's length {numIndices}");
            }

            starts[b] = offset;
            previous = offset;
        }

        if (includeLastOffset)
        {
            if (previous != numIndices)
            {
                return Text($"include_last_offset: the last offset ({previous}) must equal the input's length ({numIndices}); positions after it would belong to no bag");
            }
        }
        else
        {
            starts[offsets.Length] = numIndices;
        }

        return null;
    }

    /// <summary>Boundaries of <c>numIndices / bagSize</c> bags of exactly <paramref name="bagSize"/> positions (a 2-D input).</summary>
    /// <returns>null on success, otherwise the message.</returns>
    public static string? BuildFixed(long numIndices, long bagSize, Span<long> starts)
    {
        if (bagSize <= 0 || numIndices % bagSize != 0)
        {
            return Text($"fixed-size bags need a positive bag size that divides the {numIndices} indices, got {bagSize}");
        }

        for (long b = 0, start = 0; start <= numIndices; b++, start += bagSize)
        {
            starts[(int)b] = start;
        }

        return null;
    }

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
