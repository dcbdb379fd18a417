using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The one vector member the bag backward needs beyond <see cref="IVectorWidth"/>: an element-wise
/// scaled copy, for the values of the sparse bag gradient. Kept in its own interface (and its own
/// structs) so <see cref="IVectorWidth"/> stays the set the gather and scatter-add kernels share.
/// </summary>
internal interface IMultiplyWidth
{
    /// <summary>Floats per vector; 1 for the scalar width.</summary>
    static abstract int Lanes { get; }

    /// <summary>Copies <see cref="Lanes"/> floats at <paramref name="offset"/> from source to target.</summary>
    static abstract void Copy(ref float source, ref float target, nuint offset);

    /// <summary><c>target[j] = source[j] * scale</c> (one rounding) for the <see cref="Lanes"/> floats at <paramref name="offset"/>.</summary>
    static abstract void Multiply(ref float source, float scale, ref float target, nuint offset);

    /// <summary>
    /// <c>target[j] = (source[j] * first) * second</c>, each product rounded, for the <see cref="Lanes"/>
    /// floats at <paramref name="offset"/>: two factors applied in one pass, so the result depends only
    /// on the source and an overlapping tail vector stores the same bits twice.
    /// </summary>
    static abstract void Multiply(ref float source, float first, float second, ref float target, nuint offset);
}

/// <summary>AVX-512: 16 floats.</summary>
internal readonly struct MultiplyWidth512 : IMultiplyWidth
{
    public static int Lanes => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Vector512.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float scale, ref float target, nuint offset) =>
        (Vector512.LoadUnsafe(ref source, offset) * Vector512.Create(scale)).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float first, float second, ref float target, nuint offset) =>
        (Vector512.LoadUnsafe(ref source, offset) * Vector512.Create(first) * Vector512.Create(second)).StoreUnsafe(ref target, offset);
}

/// <summary>AVX2: 8 floats.</summary>
internal readonly struct MultiplyWidth256 : IMultiplyWidth
{
    public static int Lanes => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Vector256.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float scale, ref float target, nuint offset) =>
        (Vector256.LoadUnsafe(ref source, offset) * Vector256.Create(scale)).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float first, float second, ref float target, nuint offset) =>
        (Vector256.LoadUnsafe(ref source, offset) * Vector256.Create(first) * Vector256.Create(second)).StoreUnsafe(ref target, offset);
}

/// <summary>SSE / NEON: 4 floats.</summary>
internal readonly struct MultiplyWidth128 : IMultiplyWidth
{
    public static int Lanes => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Vector128.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float scale, ref float target, nuint offset) =>
        (Vector128.LoadUnsafe(ref source, offset) * Vector128.Create(scale)).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float first, float second, ref float target, nuint offset) =>
        (Vector128.LoadUnsafe(ref source, offset) * Vector128.Create(first) * Vector128.Create(second)).StoreUnsafe(ref target, offset);
}

/// <summary>No vectors: one float at a time.</summary>
internal readonly struct MultiplyWidthScalar : IMultiplyWidth
{
    public static int Lanes => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Unsafe.Add(ref target, offset) = Unsafe.Add(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float scale, ref float target, nuint offset) =>
        Unsafe.Add(ref target, offset) = Unsafe.Add(ref source, offset) * scale;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Multiply(ref float source, float first, float second, ref float target, nuint offset) =>
        Unsafe.Add(ref target, offset) = Unsafe.Add(ref source, offset) * first * second;
}
