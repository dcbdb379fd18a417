using System.ComponentModel;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// Row addressing, the one place a kernel turns a position into a row: generated kernels (in this
/// assembly and in consumers') and the generic kernels call it. Public only so that generated code in
/// a consumer assembly can call it without unsafe code; it validates nothing.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class KernelRows
{
    /// <summary>The index (or bag start) at <paramref name="position"/>, as a native integer.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Index<TIndex>(ref readonly TIndex indices, nint position)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        nint.CreateTruncating(Unsafe.Add(ref Unsafe.AsRef(in indices), position));

    /// <summary>The <paramref name="k"/>-th position of a position list, or <paramref name="k"/> itself when there is no list (a null reference).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Position(ref readonly int positions, nint k) => Unsafe.IsNullRef(in positions) ? k : At(in positions, k);

    /// <summary>The first element of row <paramref name="row"/> of a matrix with <paramref name="dimension"/> columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref T Of<T>(ref readonly T first, nint row, int dimension) =>
        ref Unsafe.Add(ref Unsafe.AsRef(in first), row * dimension);

    /// <summary>The first element of the row after <paramref name="row"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref T Next<T>(ref T row, int dimension) => ref Unsafe.Add(ref row, dimension);

    /// <summary>The element at <paramref name="position"/> (a per-sample weight).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T At<T>(ref readonly T first, nint position) => Unsafe.Add(ref Unsafe.AsRef(in first), position);

    /// <summary>True for an argument the caller left out (no counts, no arg-max).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsNull<T>(ref readonly T reference) => Unsafe.IsNullRef(in reference);

    /// <summary><c>fl(1 / counts[row])</c>: the float32 scale of <c>scale_grad_by_freq</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FrequencyScale(ref readonly int counts, nint row) => RowUpdate.FrequencyScale<float>(At(in counts, row));
}
