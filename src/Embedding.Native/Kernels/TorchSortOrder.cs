using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// The order in which torch 1.13's CPU <c>indices.sort()</c> (not stable) leaves equal indices: its
/// kernel (<c>aten/src/ATen/native/cpu/SortingKernel.cpp</c>) runs libstdc++'s <c>std::sort</c> over
/// (value, position) pairs compared by value alone, so the positions of one value come out in an
/// order fixed by the algorithm and the whole input. This is that algorithm, step for step: an
/// introsort (median of three moved to the front, an unguarded partition, the right part recursed and
/// the left part looped) that stops at 16 elements, a heapsort for any part still unsorted after
/// <c>2·⌊log2 n⌋</c> levels, then one insertion sort over the whole array (guarded over the first 16).
/// </summary>
/// <remarks>
/// <para>
/// Each element is a key packed as <c>value &lt;&lt; shift | position</c> and only <c>key &gt;&gt; shift</c>
/// is compared, so the position rides along with its value as in torch's pairs, and a move is one
/// 64-bit store. int32 and int64 index tensors sort the same way (the comparison is on the value only).
/// </para>
/// <para>
/// Evidence: <c>torch.sort(x)[1]</c> equals this permutation for every length 0…300 and 1000, 4096,
/// 100000 with random, few-valued, sorted, reverse-sorted and constant inputs, and for inputs built to
/// exhaust the depth limit (<c>tests/python/test_bag_backward_order.py</c>).
/// </para>
/// </remarks>
internal static class TorchSortOrder
{
    /// <summary>Parts of at most this many elements are left to the final insertion sort (libstdc++'s <c>_S_threshold</c>).</summary>
    private const int InsertionThreshold = 16;

    /// <summary>The shift that leaves room for positions <c>0 … count-1</c> below the value.</summary>
    public static int ShiftFor(int count) => count <= 1 ? 0 : 64 - BitOperations.LeadingZeroCount((ulong)(count - 1));

    /// <summary>Whether values up to <paramref name="largestValue"/> fit above <paramref name="shift"/> bits of position.</summary>
    public static bool Fits(long largestValue, int shift) => shift == 0 || ((ulong)largestValue >> (64 - shift)) == 0;

    /// <summary>Sorts <paramref name="keys"/> by <c>key &gt;&gt; shift</c> into exactly the order torch's sort gives.</summary>
    public static void Sort(Span<ulong> keys, int shift) => Finish(keys, Whole(keys.Length), shift);

    /// <summary>The whole array as one part: <c>2·⌊log2 n⌋</c> levels before the heapsort.</summary>
    public static SortPart Whole(int count) => new(0, count, count < 2 ? 0 : 2 * BitOperations.Log2((uint)count));

    /// <summary>
    /// Runs the introsort's first partitions, largest part first, until there are <paramref name="parts"/>.Length
    /// parts or none has more than 16 elements and levels left; returns how many parts there are. Each part can
    /// then be <see cref="Finish"/>ed on its own, on any thread, with the bits of <see cref="Sort"/>: a partition
    /// leaves every element of a part between the parts around it, so the introsort of one part never touches
    /// another, and the final insertion sort never moves an element across a part boundary.
    /// </summary>
    public static int Split(Span<ulong> keys, int shift, Span<SortPart> parts)
    {
        ref ulong first = ref MemoryMarshal.GetReference(keys);
        parts[0] = Whole(keys.Length);
        int count = 1;
        while (count < parts.Length)
        {
            int largest = -1;
            for (int i = 0; i < count; i++)
            {
                SortPart candidate = parts[i];
                if (candidate.End - candidate.Start > InsertionThreshold && candidate.Depth > 0 && (largest < 0 || candidate.End - candidate.Start > parts[largest].End - parts[largest].Start))
                {
                    largest = i;
                }
            }

            if (largest < 0)
            {
                break;
            }

            // One step of the introsort loop: the right part and the left part each have one level fewer.
            SortPart part = parts[largest];
            int cut = (int)PartitionAroundMedian(ref first, part.Start, part.End, shift);
            parts[largest] = new SortPart(part.Start, cut, part.Depth - 1);
            parts[count++] = new SortPart(cut, part.End, part.Depth - 1);
        }

        return count;
    }

    /// <summary>
    /// Finishes one part: the introsort with the part's levels left, then libstdc++'s final insertion sort over
    /// the part: guarded over its first 16 elements, unguarded after them (the part's smallest element is among
    /// its first 16 after the introsort, and nothing walks back past the start of a part).
    /// </summary>
    public static void Finish(Span<ulong> keys, SortPart part, int shift)
    {
        ref ulong first = ref MemoryMarshal.GetReference(keys);
        Introsort(ref first, part.Start, part.End, part.Depth, shift);
        nint guarded = Math.Min(part.End, part.Start + InsertionThreshold);
        InsertionSort(ref first, part.Start, guarded, shift);
        for (nint i = guarded; i < part.End; i++)
        {
            UnguardedLinearInsert(ref first, i, shift);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(ulong a, ulong b, int shift) => a >> shift < b >> shift;

    private static void Introsort(ref ulong a, nint lo, nint hi, int depth, int shift)
    {
        while (hi - lo > InsertionThreshold)
        {
            if (depth == 0)
            {
                HeapSort(ref Unsafe.Add(ref a, lo), hi - lo, shift);
                return;
            }

            depth--;
            nint cut = PartitionAroundMedian(ref a, lo, hi, shift);
            Introsort(ref a, cut, hi, depth, shift);
            hi = cut;
        }
    }

    /// <summary>The median of the second, middle and last elements moved to the front, the rest partitioned around it; returns the cut.</summary>
    private static nint PartitionAroundMedian(ref ulong a, nint lo, nint hi, int shift)
    {
        nint mid = lo + ((hi - lo) / 2);
        MoveMedianToFirst(ref a, lo, lo + 1, mid, hi - 1, shift);
        return UnguardedPartition(ref a, lo + 1, hi, Unsafe.Add(ref a, lo), shift);
    }

    /// <summary>Swaps the median of the elements at <paramref name="x"/>, <paramref name="y"/>, <paramref name="z"/> into <paramref name="result"/>, with libstdc++'s tie rules.</summary>
    private static void MoveMedianToFirst(ref ulong a, nint result, nint x, nint y, nint z, int shift)
    {
        ulong ax = Unsafe.Add(ref a, x), ay = Unsafe.Add(ref a, y), az = Unsafe.Add(ref a, z);
        nint median;
        if (Less(ax, ay, shift))
        {
            median = Less(ay, az, shift) ? y : Less(ax, az, shift) ? z : x;
        }
        else
        {
            median = Less(ax, az, shift) ? x : Less(ay, az, shift) ? z : y;
        }

        Swap(ref a, result, median);
    }

    /// <summary>
    /// Partitions <c>[left, right)</c> around <paramref name="pivot"/> (held at <c>left - 1</c>, where both scans stop)
    /// and returns the first element of the upper part.
    /// </summary>
    private static nint UnguardedPartition(ref ulong a, nint left, nint right, ulong pivot, int shift)
    {
        // By value, x < pivot exactly when x < the pivot's value with a zero position, and pivot < x exactly
        // when x > the pivot's value with the largest position: plain compares in the inner loops.
        ulong positions = (1UL << shift) - 1;
        ulong below = pivot & ~positions, above = pivot | positions;
        while (true)
        {
            while (Unsafe.Add(ref a, left) < below)
            {
                left++;
            }

            right--;
            while (Unsafe.Add(ref a, right) > above)
            {
                right--;
            }

            if (left >= right)
            {
                return left;
            }

            Swap(ref a, left, right);
            left++;
        }
    }

    /// <summary>Insertion sort of <c>[lo, hi)</c>: an element smaller than the first moves to the front, the others walk back.</summary>
    private static void InsertionSort(ref ulong a, nint lo, nint hi, int shift)
    {
        for (nint i = lo + 1; i < hi; i++)
        {
            ulong value = Unsafe.Add(ref a, i);
            if (Less(value, Unsafe.Add(ref a, lo), shift))
            {
                MemoryMarshal.CreateSpan(ref Unsafe.Add(ref a, lo), (int)(i - lo)).CopyTo(MemoryMarshal.CreateSpan(ref Unsafe.Add(ref a, lo + 1), (int)(i - lo)));
                Unsafe.Add(ref a, lo) = value;
            }
            else
            {
                UnguardedLinearInsert(ref a, i, shift);
            }
        }
    }

    /// <summary>Moves the element at <paramref name="i"/> back past every larger one; the caller knows a smaller-or-equal one precedes it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void UnguardedLinearInsert(ref ulong a, nint i, int shift)
    {
        // previous > value by value exactly when previous > value with the largest position.
        ulong value = Unsafe.Add(ref a, i);
        ulong above = value | ((1UL << shift) - 1);
        ulong previous = Unsafe.Add(ref a, i - 1);
        while (previous > above)
        {
            Unsafe.Add(ref a, i) = previous;
            i--;
            previous = Unsafe.Add(ref a, i - 1);
        }

        Unsafe.Add(ref a, i) = value;
    }

    /// <summary>libstdc++'s heapsort (<c>std::partial_sort(first, last, last)</c>): build a max-heap, then pop the top to the end.</summary>
    private static void HeapSort(ref ulong a, nint length, int shift)
    {
        for (nint parent = (length - 2) / 2; parent >= 0; parent--)
        {
            AdjustHeap(ref a, parent, length, Unsafe.Add(ref a, parent), shift);
        }

        for (nint last = length - 1; last > 0; last--)
        {
            ulong value = Unsafe.Add(ref a, last);
            Unsafe.Add(ref a, last) = a;
            AdjustHeap(ref a, 0, last, value, shift);
        }
    }

    /// <summary>Sifts the hole at <paramref name="hole"/> down to a leaf along the larger children (the right one on ties), then pushes <paramref name="value"/> up.</summary>
    private static void AdjustHeap(ref ulong a, nint hole, nint length, ulong value, int shift)
    {
        nint top = hole, child = hole;
        while (child < (length - 1) / 2)
        {
            child = 2 * (child + 1);
            if (Less(Unsafe.Add(ref a, child), Unsafe.Add(ref a, child - 1), shift))
            {
                child--;
            }

            Unsafe.Add(ref a, hole) = Unsafe.Add(ref a, child);
            hole = child;
        }

        if ((length & 1) == 0 && child == (length - 2) / 2)
        {
            child = 2 * (child + 1);
            Unsafe.Add(ref a, hole) = Unsafe.Add(ref a, child - 1);
            hole = child - 1;
        }

        nint parent = (hole - 1) / 2;
        while (hole > top && Less(Unsafe.Add(ref a, parent), value, shift))
        {
            Unsafe.Add(ref a, hole) = Unsafe.Add(ref a, parent);
            hole = parent;
            parent = (hole - 1) / 2;
        }

        Unsafe.Add(ref a, hole) = value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Swap(ref ulong a, nint i, nint j) => (Unsafe.Add(ref a, i), Unsafe.Add(ref a, j)) = (Unsafe.Add(ref a, j), Unsafe.Add(ref a, i));
}

/// <summary>A part of a <see cref="TorchSortOrder"/> sort: the elements <c>[Start, End)</c> and the introsort levels left.</summary>
internal readonly record struct SortPart(int Start, int End, int Depth);
