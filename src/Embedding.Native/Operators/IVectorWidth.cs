using System;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// One vector width as a type, so a generic kernel body is written once and the JIT or NativeAOT
/// compiler specialises it per width (the TensorPrimitives operator-struct pattern). Generated kernels
/// call the same structs by name with the dimension folded in, so the row arithmetic of the gather and
/// the scatter-add exists once; public only so that kernels generated into a consumer assembly can.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IVectorWidth
{
    /// <summary>Floats per vector; 1 for the scalar width.</summary>
    static abstract int Lanes { get; }

    /// <summary>Elements of <typeparamref name="T"/> per vector; 1 for the scalar width.</summary>
    static abstract int LanesOf<T>();

    /// <summary>Copies one vector of <typeparamref name="T"/> at element <paramref name="offset"/> from source to target (a copy moves bits: any element type of a supported size).</summary>
    static abstract void Copy<T>(ref T source, ref T target, nuint offset)
        where T : unmanaged;

    /// <summary><c>target[j] = target[j] + source[j]</c> for the <see cref="Lanes"/> floats at <paramref name="offset"/>.</summary>
    static abstract void Add(ref float source, ref float target, nuint offset);

    /// <summary><c>target[j] = fma(source[j], scale, target[j])</c> (one rounding) for the <see cref="Lanes"/> floats at <paramref name="offset"/>.</summary>
    static abstract void MultiplyAdd(ref float source, float scale, ref float target, nuint offset);

    /// <summary>
    /// <see cref="Add"/> for lanes <paramref name="keep"/> and up only; lanes below it are stored back as
    /// loaded. The masked tail of a scatter-add: its vector overlaps columns already updated, which must
    /// not be added twice.
    /// </summary>
    static abstract void AddMasked(ref float source, ref float target, nuint offset, int keep);

    /// <summary><see cref="MultiplyAdd"/> for lanes <paramref name="keep"/> and up only; lanes below it are stored back as loaded.</summary>
    static abstract void MultiplyAddMasked(ref float source, float scale, ref float target, nuint offset, int keep);
}

/// <summary>AVX-512: 16 floats.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct Width512 : IVectorWidth
{
    /// <inheritdoc/>
    public static int Lanes => Vector512<float>.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => Vector512<T>.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy<T>(ref T source, ref T target, nuint offset)
        where T : unmanaged =>
        Vector512.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(ref float source, ref float target, nuint offset) =>
        (Vector512.LoadUnsafe(ref target, offset) + Vector512.LoadUnsafe(ref source, offset)).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float source, float scale, ref float target, nuint offset) =>
        Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref source, offset), Vector512.Create(scale), Vector512.LoadUnsafe(ref target, offset)).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddMasked(ref float source, ref float target, nuint offset, int keep)
    {
        Vector512<float> old = Vector512.LoadUnsafe(ref target, offset);
        Vector512.ConditionalSelect(Fresh(keep), old + Vector512.LoadUnsafe(ref source, offset), old).StoreUnsafe(ref target, offset);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAddMasked(ref float source, float scale, ref float target, nuint offset, int keep)
    {
        Vector512<float> old = Vector512.LoadUnsafe(ref target, offset);
        Vector512<float> sum = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref source, offset), Vector512.Create(scale), old);
        Vector512.ConditionalSelect(Fresh(keep), sum, old).StoreUnsafe(ref target, offset);
    }

    /// <summary>All-ones in lanes <paramref name="keep"/> and up: the columns a masked tail updates.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fresh(int keep) =>
        Vector512.GreaterThanOrEqual(Vector512<int>.Indices, Vector512.Create(keep)).AsSingle();
}

/// <summary>AVX2: 8 floats.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct Width256 : IVectorWidth
{
    /// <inheritdoc/>
    public static int Lanes => Vector256<float>.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => Vector256<T>.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy<T>(ref T source, ref T target, nuint offset)
        where T : unmanaged =>
        Vector256.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(ref float source, ref float target, nuint offset) =>
        (Vector256.LoadUnsafe(ref target, offset) + Vector256.LoadUnsafe(ref source, offset)).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float source, float scale, ref float target, nuint offset) =>
        Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref source, offset), Vector256.Create(scale), Vector256.LoadUnsafe(ref target, offset)).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddMasked(ref float source, ref float target, nuint offset, int keep)
    {
        Vector256<float> old = Vector256.LoadUnsafe(ref target, offset);
        Vector256.ConditionalSelect(Fresh(keep), old + Vector256.LoadUnsafe(ref source, offset), old).StoreUnsafe(ref target, offset);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAddMasked(ref float source, float scale, ref float target, nuint offset, int keep)
    {
        Vector256<float> old = Vector256.LoadUnsafe(ref target, offset);
        Vector256<float> sum = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref source, offset), Vector256.Create(scale), old);
        Vector256.ConditionalSelect(Fresh(keep), sum, old).StoreUnsafe(ref target, offset);
    }

    /// <summary>All-ones in lanes <paramref name="keep"/> and up: the columns a masked tail updates.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fresh(int keep) =>
        Vector256.GreaterThanOrEqual(Vector256<int>.Indices, Vector256.Create(keep)).AsSingle();
}

/// <summary>SSE / NEON: 4 floats.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct Width128 : IVectorWidth
{
    /// <inheritdoc/>
    public static int Lanes => Vector128<float>.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => Vector128<T>.Count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy<T>(ref T source, ref T target, nuint offset)
        where T : unmanaged =>
        Vector128.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(ref float source, ref float target, nuint offset) =>
        (Vector128.LoadUnsafe(ref target, offset) + Vector128.LoadUnsafe(ref source, offset)).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float source, float scale, ref float target, nuint offset) =>
        ExactFusedMultiplyAdd.MultiplyAdd(Vector128.LoadUnsafe(ref source, offset), Vector128.Create(scale), Vector128.LoadUnsafe(ref target, offset)).StoreUnsafe(ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddMasked(ref float source, ref float target, nuint offset, int keep)
    {
        Vector128<float> old = Vector128.LoadUnsafe(ref target, offset);
        Vector128.ConditionalSelect(Fresh(keep), old + Vector128.LoadUnsafe(ref source, offset), old).StoreUnsafe(ref target, offset);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAddMasked(ref float source, float scale, ref float target, nuint offset, int keep)
    {
        Vector128<float> old = Vector128.LoadUnsafe(ref target, offset);
        Vector128<float> sum = ExactFusedMultiplyAdd.MultiplyAdd(Vector128.LoadUnsafe(ref source, offset), Vector128.Create(scale), old);
        Vector128.ConditionalSelect(Fresh(keep), sum, old).StoreUnsafe(ref target, offset);
    }

    /// <summary>All-ones in lanes <paramref name="keep"/> and up: the columns a masked tail updates.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Fresh(int keep) =>
        Vector128.GreaterThanOrEqual(Vector128<int>.Indices, Vector128.Create(keep)).AsSingle();
}

/// <summary>No vectors: one float at a time.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct WidthScalar : IVectorWidth
{
    /// <inheritdoc/>
    public static int Lanes => 1;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => 1;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy<T>(ref T source, ref T target, nuint offset)
        where T : unmanaged =>
        Unsafe.Add(ref target, offset) = Unsafe.Add(ref source, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add(ref float source, ref float target, nuint offset) =>
        Unsafe.Add(ref target, offset) = Unsafe.Add(ref target, offset) + Unsafe.Add(ref source, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float source, float scale, ref float target, nuint offset) =>
        Unsafe.Add(ref target, offset) = MathF.FusedMultiplyAdd(Unsafe.Add(ref source, offset), scale, Unsafe.Add(ref target, offset));

    /// <summary>A scalar row has no tail (one lane covers every column), so the mask can only keep nothing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AddMasked(ref float source, ref float target, nuint offset, int keep) => Add(ref source, ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAddMasked(ref float source, float scale, ref float target, nuint offset, int keep) =>
        MultiplyAdd(ref source, scale, ref target, offset);
}
