using System.ComponentModel;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// Per-bag bookkeeping of the bag kernels, generated and generic: where a max bag starts, what an empty
/// bag holds, and the arg-max positions turned into rows. Public only so that kernels generated into a
/// consumer assembly can call it; it validates nothing.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class BagRows
{
    /// <summary>The first position in <c>[start, end)</c> whose row is not the padding row, or <paramref name="end"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint FirstIncluded<TIndex>(ref readonly TIndex indices, nint start, nint end, long paddingIndex)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        nint i = start;
        while (i < end && KernelRows.Index(in indices, i) == paddingIndex)
        {
            i++;
        }

        return i;
    }

    /// <summary>An empty or all-padding bag in max mode, values only: +0.0 (all-zero bits in every table type).</summary>
    public static void Zero<T>(ref T target, int dimension) => MemoryMarshal.CreateSpan(ref target, dimension).Clear();

    /// <summary>An empty or all-padding bag in max mode: +0.0, and arg-max row -1 unless <paramref name="argMax"/> is a null reference (values only).</summary>
    public static void Empty<T>(ref T target, ref long argMax, int dimension)
    {
        Zero(ref target, dimension);
        if (!Unsafe.IsNullRef(ref argMax))
        {
            MemoryMarshal.CreateSpan(ref argMax, dimension).Fill(-1);
        }
    }

    /// <summary>Replaces the winning position of each column by the row it names.</summary>
    public static void PositionsToRows<TIndex>(ref long argMax, ref readonly TIndex indices, int dimension)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        for (nint column = 0; column < dimension; column++)
        {
            ref long slot = ref Unsafe.Add(ref argMax, column);
            slot = KernelRows.Index(in indices, (nint)slot);
        }
    }

    /// <summary>Copies, for <paramref name="lanes"/> columns from <paramref name="column"/>, the element of the row at each winning position.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void CopyWinners<T, TIndex>(ref T weight, int dimension, ref readonly TIndex indices, ref long positions, int lanes, ref T target, nuint column)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        for (int j = 0; j < lanes; j++)
        {
            nint row = KernelRows.Index(in indices, (nint)Unsafe.Add(ref positions, j));
            nuint at = column + (nuint)j;
            Unsafe.Add(ref target, at) = Unsafe.Add(ref KernelRows.Of(in weight, row, dimension), at);
        }
    }
}
