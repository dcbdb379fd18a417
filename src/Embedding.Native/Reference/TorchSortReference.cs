using System;
using System.Collections.Generic;

namespace Embedding.Native;

/// <summary>
/// The oracle for <see cref="TorchSortOrder"/>: torch 1.13's unstable CPU sort of an index tensor (libstdc++'s
/// <c>std::sort</c> over (value, position) pairs compared by value) as plain code over an array of pairs, with
/// no packing and no unsafe code. Returns the positions in sorted order, as <c>torch.sort(x)[1]</c> does.
/// </summary>
internal static class TorchSortReference
{
    public static int[] Order(IReadOnlyList<long> values)
    {
        var a = new (long Value, int Position)[values.Count];
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = (values[i], i);
        }

        int n = a.Length;
        if (n > 0)
        {
            Introsort(a, 0, n, 2 * (31 - int.LeadingZeroCount(n)));
            if (n > 16)
            {
                Insertion(a, 0, 16);
                for (int i = 16; i < n; i++)
                {
                    LinearInsert(a, i);
                }
            }
            else
            {
                Insertion(a, 0, n);
            }
        }

        return Array.ConvertAll(a, pair => pair.Position);
    }

    private static bool Less((long Value, int Position) x, (long Value, int Position) y) => x.Value < y.Value;

    private static void Introsort((long Value, int Position)[] a, int first, int last, int depth)
    {
        while (last - first > 16)
        {
            if (depth == 0)
            {
                HeapSort(a, first, last);
                return;
            }

            depth--;
            int mid = first + ((last - first) / 2);
            MedianToFirst(a, first, first + 1, mid, last - 1);
            int cut = Partition(a, first + 1, last, first);
            Introsort(a, cut, last, depth);
            last = cut;
        }
    }

    private static void MedianToFirst((long Value, int Position)[] a, int result, int x, int y, int z)
    {
        if (Less(a[x], a[y]))
        {
            if (Less(a[y], a[z]))
            {
                Swap(a, result, y);
            }
            else if (Less(a[x], a[z]))
            {
                Swap(a, result, z);
            }
            else
            {
                Swap(a, result, x);
            }
        }
        else if (Less(a[x], a[z]))
        {
            Swap(a, result, x);
        }
        else if (Less(a[y], a[z]))
        {
            Swap(a, result, z);
        }
        else
        {
            Swap(a, result, y);
        }
    }

    private static int Partition((long Value, int Position)[] a, int first, int last, int pivot)
    {
        while (true)
        {
            while (Less(a[first], a[pivot]))
            {
                first++;
            }

            last--;
            while (Less(a[pivot], a[last]))
            {
                last--;
            }

            if (first >= last)
            {
                return first;
            }

            Swap(a, first, last);
            first++;
        }
    }

    private static void Insertion((long Value, int Position)[] a, int first, int last)
    {
        for (int i = first + 1; i < last; i++)
        {
            if (Less(a[i], a[first]))
            {
                var value = a[i];
                Array.Copy(a, first, a, first + 1, i - first);
                a[first] = value;
            }
            else
            {
                LinearInsert(a, i);
            }
        }
    }

    private static void LinearInsert((long Value, int Position)[] a, int i)
    {
        var value = a[i];
        while (Less(value, a[i - 1]))
        {
            a[i] = a[i - 1];
            i--;
        }

        a[i] = value;
    }

    private static void HeapSort((long Value, int Position)[] a, int first, int last)
    {
        int length = last - first;
        for (int parent = (length - 2) / 2; parent >= 0; parent--)
        {
            AdjustHeap(a, first, parent, length, a[first + parent]);
        }

        while (last - first > 1)
        {
            last--;
            var value = a[last];
            a[last] = a[first];
            AdjustHeap(a, first, 0, last - first, value);
        }
    }

    private static void AdjustHeap((long Value, int Position)[] a, int first, int hole, int length, (long Value, int Position) value)
    {
        int top = hole, child = hole;
        while (child < (length - 1) / 2)
        {
            child = 2 * (child + 1);
            if (Less(a[first + child], a[first + child - 1]))
            {
                child--;
            }

            a[first + hole] = a[first + child];
            hole = child;
        }

        if ((length & 1) == 0 && child == (length - 2) / 2)
        {
            child = 2 * (child + 1);
            a[first + hole] = a[first + child - 1];
            hole = child - 1;
        }

        int parentOf = (hole - 1) / 2;
        while (hole > top && Less(a[first + parentOf], value))
        {
            a[first + hole] = a[first + parentOf];
            hole = parentOf;
            parentOf = (hole - 1) / 2;
        }

        a[first + hole] = value;
    }

    private static void Swap((long Value, int Position)[] a, int i, int j) => (a[i], a[j]) = (a[j], a[i]);
}
