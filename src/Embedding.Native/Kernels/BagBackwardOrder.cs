using System;
using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// The order of a dense sum/mean bag backward, torch 1.13's (<c>_embedding_bag_dense_backward_cpu_sum_mean</c>
/// in <c>aten/src/ATen/native/EmbeddingBag.cpp</c>): every position of the indices (padding ones included,
/// as torch sorts them all) sorted by <see cref="TorchSortOrder"/>, so each row's contributions are added in
/// the order torch's unstable sort leaves them. Also the bag of each position and, in mean mode, each bag's
/// |P_b|, which the sorted walk needs at random. Pooled arrays, back to the pool on <see cref="Dispose"/>.
/// </summary>
internal readonly struct BagBackwardOrder : IDisposable
{
    /// <summary>Fewer positions are sorted on the calling thread: a split would cost more than it saves.</summary>
    private const int MinParallelCount = 16384;

    private readonly ulong[]? _keys;
    private readonly int[]? _bagOf;
    private readonly int[]? _members;

    private BagBackwardOrder(ulong[] keys, int count, int shift, int[] bagOf, int[]? members)
    {
        _keys = keys;
        Count = count;
        Shift = shift;
        _bagOf = bagOf;
        _members = members;
    }

    /// <summary>The positions sorted.</summary>
    public int Count { get; }

    /// <summary>Bits of position below the value in each key.</summary>
    public int Shift { get; }

    /// <summary>The sorted keys, <c>row &lt;&lt; Shift | position</c>.</summary>
    public ReadOnlySpan<ulong> Keys => _keys.AsSpan(0, Count);

    /// <summary>The bag of each position (-1 for a position in no bag).</summary>
    public ReadOnlySpan<int> BagOf => _bagOf.AsSpan(0, Count);

    /// <summary>|P_b| of each bag in mean mode; empty otherwise.</summary>
    public ReadOnlySpan<int> Members => _members is null ? default : _members.AsSpan();

    /// <summary>
    /// Sorts the positions of <paramref name="bags"/> (every index already in <c>[0, rows)</c>) as torch does;
    /// with <paramref name="threads"/> &gt; 1 the introsort's first levels split the keys into parts finished in
    /// parallel (<see cref="TorchSortWork"/>), with the same order.
    /// </summary>
    /// <exception cref="NotSupportedException">
    /// The row numbers and the positions together need more than 64 bits (more than 2^64 rows × positions), which no
    /// table in memory reaches.
    /// </exception>
    public static unsafe BagBackwardOrder Of<TIndex>(Bags<TIndex> bags, long rows, bool mean, int threads)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ReadOnlySpan<TIndex> indices = bags.Indices;
        int count = indices.Length;
        int shift = TorchSortOrder.ShiftFor(count);
        if (!TorchSortOrder.Fits(rows - 1, shift))
        {
            throw new NotSupportedException($"The EmbeddingBag backward sorts {count} positions of a table of {rows} rows: more than 64 bits of row and position.");
        }

        ulong[] keys = ArrayPool<ulong>.Shared.Rent(Math.Max(count, 1));
        for (int i = 0; i < count; i++)
        {
            keys[i] = (ulong.CreateTruncating(indices[i]) << shift) | (uint)i;
        }

        if (threads <= 1 || count < MinParallelCount)
        {
            TorchSortOrder.Sort(keys.AsSpan(0, count), shift);
        }
        else
        {
            // A few parts per thread: the partitions are uneven, and the pool hands out parts as threads free up.
            Span<SortPart> parts = stackalloc SortPart[Math.Min(4 * threads, 64)];
            int split = TorchSortOrder.Split(keys.AsSpan(0, count), shift, parts);
            fixed (ulong* sorted = keys)
            fixed (SortPart* first = parts)
            {
                var work = new TorchSortWork { Keys = sorted, Count = count, Parts = first, Shift = shift };
                WorkerPool.Run(ref work, split, threads);
            }
        }

        int[] bagOf = ArrayPool<int>.Shared.Rent(Math.Max(count, 1));
        ReadOnlySpan<long> starts = bags.Starts;
        int covered = 0;
        for (int b = 0; b < bags.Count; b++)
        {
            int start = (int)starts[b], end = (int)starts[b + 1];
            bagOf.AsSpan(covered, start - covered).Fill(-1);
            bagOf.AsSpan(start, end - start).Fill(b);
            covered = end;
        }

        bagOf.AsSpan(covered, count - covered).Fill(-1);

        int[]? members = null;
        if (mean)
        {
            members = bags.Count == 0 ? [] : ArrayPool<int>.Shared.Rent(bags.Count);
            for (int b = 0; b < bags.Count; b++)
            {
                members[b] = GenericBagBackward.Members(bags, b);
            }
        }

        return new BagBackwardOrder(keys, count, shift, bagOf, members);
    }

    /// <summary>The position in a key.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int PositionOf(ulong key, int shift) => (int)(key & ((1UL << shift) - 1));

    /// <summary>The first of the sorted <paramref name="keys"/> whose row is at least <paramref name="row"/> (their length if none).</summary>
    public static int FirstOfRow(ReadOnlySpan<ulong> keys, int shift, long row)
    {
        int lo = 0, hi = keys.Length;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if ((long)(keys[mid] >> shift) < row)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    public void Dispose()
    {
        if (_keys is not null)
        {
            ArrayPool<ulong>.Shared.Return(_keys);
        }

        if (_bagOf is not null)
        {
            ArrayPool<int>.Shared.Return(_bagOf);
        }

        if (_members is { Length: > 0 })
        {
            ArrayPool<int>.Shared.Return(_members);
        }
    }
}
