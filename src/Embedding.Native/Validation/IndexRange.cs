using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// Finds the first index outside <c>[0, rows)</c> before any kernel runs, so a failed call writes
/// nothing. One unsigned compare per element catches negatives and too-large values together.
/// </summary>
internal static class IndexRange
{
    /// <summary>The position of the first index outside <c>[0, rows)</c>, or -1 when all are valid.</summary>
    public static nint FindFirstOutOfRange<TIndex>(ref TIndex indices, nint count, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (typeof(TIndex) == typeof(int))
        {
            // Every non-negative int is below a table of 2³¹ rows or more.
            uint limit = (uint)Math.Min(rows, (long)int.MaxValue + 1);
            return FindFirstAtOrAbove(ref Unsafe.As<TIndex, uint>(ref indices), count, limit);
        }

        return FindFirstAtOrAbove(ref Unsafe.As<TIndex, ulong>(ref indices), count, (ulong)rows);
    }

    private static nint FindFirstAtOrAbove<T>(ref T values, nint count, T limit)
        where T : unmanaged, IUnsignedNumber<T>, IComparisonOperators<T, T, bool>
    {
        var limits = new Vector<T>(limit);
        nint i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i <= count - Vector<T>.Count; i += Vector<T>.Count)
            {
                if (Vector.GreaterThanOrEqualAny(Vector.LoadUnsafe(ref values, (nuint)i), limits))
                {
                    break;
                }
            }
        }

        // The scalar loop finishes the tail, or pinpoints the element inside the vector that failed.
        for (; i < count; i++)
        {
            if (Unsafe.Add(ref values, i) >= limit)
            {
                return i;
            }
        }

        return -1;
    }
}
