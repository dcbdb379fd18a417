using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// scale_grad_by_freq's counts for one call: a pooled int per table row, set for the rows the indices
/// name (the others are never read), back to the pool on <see cref="Dispose"/>. <see cref="None"/> when
/// the call does not scale; then <see cref="Start"/> is the null reference the kernels take as "no counts".
/// </summary>
internal readonly struct FrequencyCounts : IDisposable
{
    private readonly int[]? _counts;

    private FrequencyCounts(int[] counts) => _counts = counts;

    /// <summary>No counts: the unscaled sums.</summary>
    public static FrequencyCounts None => default;

    /// <summary>The first count, or a null reference for <see cref="None"/>.</summary>
    public ref int Start => ref _counts is null ? ref Unsafe.NullRef<int>() : ref MemoryMarshal.GetArrayDataReference(_counts);

    /// <summary>
    /// Counts how often each row occurs among <paramref name="count"/> indices (all already in <c>[0, rows)</c>).
    /// Pooled arrays come back dirty and clearing all V entries would cost more than the backward for
    /// large tables, so only the rows this call names are zeroed before counting.
    /// </summary>
    public static FrequencyCounts Of<TIndex>(ref TIndex indices, nint count, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int[] counts = ArrayPool<int>.Shared.Rent((int)rows);
        for (nint i = 0; i < count; i++)
        {
            counts[nint.CreateTruncating(Unsafe.Add(ref indices, i))] = 0;
        }

        for (nint i = 0; i < count; i++)
        {
            counts[nint.CreateTruncating(Unsafe.Add(ref indices, i))]++;
        }

        return new FrequencyCounts(counts);
    }

    public void Dispose()
    {
        if (_counts is not null)
        {
            ArrayPool<int>.Shared.Return(_counts);
        }
    }
}
