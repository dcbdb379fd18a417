using System;
using System.ComponentModel;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>
/// The vector operations a bag reduction needs, for one accumulator vector type over one table
/// element type. With <see cref="IBagReducer"/> this lets <see cref="GenericBag{TElement, TIndex, TMode}"/> be
/// written once and specialised per width and element by the compiler, accumulators held in registers.
/// </summary>
/// <remarks>
/// float32 and float64 tables accumulate in their own type (<typeparamref name="TVector"/> is a vector of
/// <typeparamref name="TElement"/>). float16 tables accumulate in float32, as torch 1.13 does: the loads widen
/// (exactly), the store rounds to half once, and <see cref="Round"/> lets the mean round the sum first.
/// </remarks>
/// <typeparam name="TVector">The accumulator: <c>T</c>, <see cref="Vector128{T}"/>, <see cref="Vector256{T}"/> or <see cref="Vector512{T}"/> of float or double.</typeparam>
/// <typeparam name="TElement">The table element: <see cref="float"/>, <see cref="double"/> or <see cref="Half"/>.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IBagVector<TVector, TElement>
{
    /// <summary>Columns per vector (accumulator lanes).</summary>
    static abstract int Lanes { get; }

    /// <summary>Every lane +0.0: the start of a sum.</summary>
    static abstract TVector Zero { get; }

    /// <summary>The <see cref="Lanes"/> table elements at <paramref name="offset"/>, widened to the accumulator type (exactly).</summary>
    static abstract TVector Load(ref TElement source, nuint offset);

    /// <summary>Stores the <see cref="Lanes"/> accumulators at <paramref name="offset"/>, rounded to the table element (once).</summary>
    static abstract void Store(TVector value, ref TElement target, nuint offset);

    /// <summary>A table element (a per-sample weight) in every lane, widened.</summary>
    static abstract TVector Broadcast(TElement value);

    /// <summary>A row count in every lane, for the mean's division (exact below 2^24).</summary>
    static abstract TVector Count(int count);

    /// <summary>Each lane rounded to the table element and widened back: the identity unless the accumulator is wider than the element.</summary>
    static abstract TVector Round(TVector value);

    /// <summary>Lane-wise <c>left + right</c>, rounded once in the accumulator type.</summary>
    static abstract TVector Add(TVector left, TVector right);

    /// <summary>Lane-wise <c>left · right</c>, rounded once in the accumulator type.</summary>
    static abstract TVector Multiply(TVector left, TVector right);

    /// <summary><c>a·b + c</c> rounded once on every ISA.</summary>
    static abstract TVector FusedMultiplyAdd(TVector a, TVector b, TVector c);

    /// <summary>Lane-wise <c>left / right</c>, a true division (no reciprocal multiply).</summary>
    static abstract TVector Divide(TVector left, TVector right);

    /// <summary>All-ones lanes where <paramref name="left"/> &gt; <paramref name="right"/> (false for NaN).</summary>
    static abstract TVector GreaterThan(TVector left, TVector right);

    /// <summary>Bitwise select: <paramref name="mask"/> lanes from <paramref name="whenTrue"/>, the rest from <paramref name="whenFalse"/>.</summary>
    static abstract TVector Select(TVector mask, TVector whenTrue, TVector whenFalse);

    /// <summary>
    /// <paramref name="row"/> where it is greater than <paramref name="accumulator"/>, else <paramref name="accumulator"/>:
    /// <see cref="Select"/> of <see cref="GreaterThan"/>, the max without positions. x86's MAX instruction is exactly
    /// this rule (it returns its second operand unless the first is greater, so a NaN never replaces and a NaN
    /// already there stays): one instruction where compare-and-select costs three. ARM's FMAX propagates NaN, so there the select.
    /// </summary>
    static abstract TVector Larger(TVector row, TVector accumulator);

    /// <summary>A position in every lane, as integer bits of the lane's width (int32 in float lanes, int64 in double lanes).</summary>
    static abstract TVector Position(nint position);

    /// <summary>Widens the positions <see cref="Position"/> made to int64 and stores them at <paramref name="offset"/>.</summary>
    static abstract void StorePositions(TVector positions, ref long target, nuint offset);
}

/// <summary>
/// One sum-family bag reduction as an operator (the TensorPrimitives shape): the start value, the step
/// that folds one row into the accumulator and the finish applied once per bag, over any
/// <see cref="IBagVector{TVector, TElement}"/> width. Max, which tracks positions, is <see cref="BagMax"/>.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IBagReducer
{
    /// <summary>True when <see cref="Accumulate"/> reads the per-sample weight.</summary>
    static abstract bool IsWeighted { get; }

    /// <summary>The accumulator before the first row: +0.0, so a bag of -0.0 rows sums to +0.0 as in torch.</summary>
    static abstract TVector Identity<TVector, TElement, TOps>() where TOps : IBagVector<TVector, TElement>;

    /// <summary>Folds one row (and its broadcast per-sample weight) into the accumulator.</summary>
    static abstract TVector Accumulate<TVector, TElement, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector, TElement>;

    /// <summary>The bag's result from the accumulator and its non-padding row count (the store rounds it to the element).</summary>
    static abstract TVector Finish<TVector, TElement, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector, TElement>;
}

/// <summary>A bag reduction as it names its kernels: the <see cref="KernelOperation"/> of its key.</summary>
internal interface IBagMode
{
    static abstract KernelOperation Operation { get; }
}

/// <summary>Sum: <c>acc = acc + row</c>.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagSum : IBagReducer, IBagMode
{
    /// <inheritdoc/>
    public static KernelOperation Operation => KernelOperation.BagSum;

    /// <inheritdoc/>
    public static bool IsWeighted => false;

    /// <inheritdoc/>
    public static TVector Identity<TVector, TElement, TOps>() where TOps : IBagVector<TVector, TElement> => TOps.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TElement, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector, TElement> =>
        TOps.Add(accumulator, row);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TElement, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector, TElement> => accumulator;
}

/// <summary>
/// Mean: the sum rounded to the element, then a true division by <c>max(count, 1)</c> (torch divides; a
/// reciprocal multiply differs). For float16 that is <c>half(float(half(sum32)) / count)</c>, two roundings.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagMean : IBagReducer, IBagMode
{
    /// <inheritdoc/>
    public static KernelOperation Operation => KernelOperation.BagMean;

    /// <inheritdoc/>
    public static bool IsWeighted => false;

    /// <inheritdoc/>
    public static TVector Identity<TVector, TElement, TOps>() where TOps : IBagVector<TVector, TElement> => TOps.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TElement, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector, TElement> =>
        TOps.Add(accumulator, row);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TElement, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector, TElement> =>
        TOps.Divide(TOps.Round(accumulator), TOps.Count(Math.Max(count, 1)));
}

/// <summary>
/// The weighted sum as a kernel: float32 takes <see cref="BagWeightedSumFused"/> without a padding row and
/// <see cref="BagWeightedSumRounded"/> with one; float64 and float16 always take <see cref="BagWeightedSumRounded"/>.
/// </summary>
internal readonly struct BagWeightedSum : IBagMode
{
    /// <inheritdoc/>
    public static KernelOperation Operation => KernelOperation.BagWeightedSum;
}

/// <summary>Weighted sum, float32 without padding: <c>acc = fma(row, w, acc)</c>, one rounding (torch 1.13's fast path).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagWeightedSumFused : IBagReducer
{
    /// <inheritdoc/>
    public static bool IsWeighted => true;

    /// <summary>Whether the 128-bit multiply-add is the exact emulation in double (x86-64-v2), which needs more registers; a constant to the JIT.</summary>
    public static bool IsEmulated
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ExactFusedMultiplyAdd.IsEmulated;
    }

    /// <inheritdoc/>
    public static TVector Identity<TVector, TElement, TOps>() where TOps : IBagVector<TVector, TElement> => TOps.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TElement, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector, TElement> =>
        TOps.FusedMultiplyAdd(row, weight, accumulator);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TElement, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector, TElement> => accumulator;
}

/// <summary>
/// Weighted sum with two roundings, <c>acc = acc + fl(row·w)</c>: float32 with a padding row (torch 1.13's
/// padding path) and float64 always. For float16 the float32 product of two halves is exact, so this is
/// torch's <c>acc + float(w)·float(psw)</c> with the one rounding at the store.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagWeightedSumRounded : IBagReducer
{
    /// <inheritdoc/>
    public static bool IsWeighted => true;

    /// <inheritdoc/>
    public static TVector Identity<TVector, TElement, TOps>() where TOps : IBagVector<TVector, TElement> => TOps.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TElement, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector, TElement> =>
        TOps.Add(accumulator, TOps.Multiply(row, weight));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TElement, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector, TElement> => accumulator;
}

/// <summary>
/// Max: the accumulator starts at the bag's first non-padding row and a later row replaces a lane only
/// when strictly greater, so the first maximum wins, NaN sticks only when first, and -0.0 vs 0.0 keeps
/// the first. float16 compares the widened values (exact), and the store gives back the row's half.
/// The position each lane came from travels alongside, as integer bits in the accumulator vector.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagMax : IBagMode
{
    /// <inheritdoc/>
    public static KernelOperation Operation => KernelOperation.BagMax;

    /// <summary>Where <paramref name="row"/> replaces the accumulator: strictly greater.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Replaces<TVector, TElement, TOps>(TVector accumulator, TVector row) where TOps : IBagVector<TVector, TElement> =>
        TOps.GreaterThan(row, accumulator);
}

/// <summary>AVX-512 bag operations on float or double lanes.</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>: the table element and the accumulator.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagVector512<T> : IBagVector<Vector512<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <inheritdoc/>
    public static int Lanes => Vector512<T>.Count;
    /// <inheritdoc/>
    public static Vector512<T> Zero => Vector512<T>.Zero;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Load(ref T source, nuint offset) => Vector512.LoadUnsafe(ref source, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<T> value, ref T target, nuint offset) => value.StoreUnsafe(ref target, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Broadcast(T value) => Vector512.Create(value);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Count(int count) => Vector512.Create(T.CreateTruncating(count));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Round(Vector512<T> value) => value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Add(Vector512<T> left, Vector512<T> right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Multiply(Vector512<T> left, Vector512<T> right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Divide(Vector512<T> left, Vector512<T> right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> GreaterThan(Vector512<T> left, Vector512<T> right) => Vector512.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<T> Select(Vector512<T> mask, Vector512<T> whenTrue, Vector512<T> whenFalse) => Vector512.ConditionalSelect(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Larger(Vector512<T> row, Vector512<T> accumulator) =>
        !Avx512F.IsSupported ? Select(GreaterThan(row, accumulator), row, accumulator)
        : typeof(T) == typeof(float) ? Avx512F.Max(row.AsSingle(), accumulator.AsSingle()).As<float, T>() : Avx512F.Max(row.AsDouble(), accumulator.AsDouble()).As<double, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> FusedMultiplyAdd(Vector512<T> a, Vector512<T> b, Vector512<T> c) =>
        typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<T> Position(nint position) =>
        typeof(T) == typeof(float) ? Vector512.Create((int)position).As<int, T>() : Vector512.Create((long)position).As<long, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(Vector512<T> positions, ref long target, nuint offset)
    {
        if (typeof(T) == typeof(float))
        {
            Vector512<int> bits = positions.AsInt32();
            Vector512.WidenLower(bits).StoreUnsafe(ref target, offset);
            Vector512.WidenUpper(bits).StoreUnsafe(ref target, offset + (nuint)Vector512<long>.Count);
        }
        else
        {
            positions.AsInt64().StoreUnsafe(ref target, offset);
        }
    }
}

/// <summary>AVX2 bag operations on float or double lanes.</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>: the table element and the accumulator.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagVector256<T> : IBagVector<Vector256<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <inheritdoc/>
    public static int Lanes => Vector256<T>.Count;
    /// <inheritdoc/>
    public static Vector256<T> Zero => Vector256<T>.Zero;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Load(ref T source, nuint offset) => Vector256.LoadUnsafe(ref source, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<T> value, ref T target, nuint offset) => value.StoreUnsafe(ref target, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Broadcast(T value) => Vector256.Create(value);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Count(int count) => Vector256.Create(T.CreateTruncating(count));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Round(Vector256<T> value) => value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Add(Vector256<T> left, Vector256<T> right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Multiply(Vector256<T> left, Vector256<T> right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Divide(Vector256<T> left, Vector256<T> right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> GreaterThan(Vector256<T> left, Vector256<T> right) => Vector256.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<T> Select(Vector256<T> mask, Vector256<T> whenTrue, Vector256<T> whenFalse) => Vector256.ConditionalSelect(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Larger(Vector256<T> row, Vector256<T> accumulator) =>
        !Avx.IsSupported ? Select(GreaterThan(row, accumulator), row, accumulator)
        : typeof(T) == typeof(float) ? Avx.Max(row.AsSingle(), accumulator.AsSingle()).As<float, T>() : Avx.Max(row.AsDouble(), accumulator.AsDouble()).As<double, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> FusedMultiplyAdd(Vector256<T> a, Vector256<T> b, Vector256<T> c) =>
        typeof(T) == typeof(float)
            ? Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<T> Position(nint position) =>
        typeof(T) == typeof(float) ? Vector256.Create((int)position).As<int, T>() : Vector256.Create((long)position).As<long, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(Vector256<T> positions, ref long target, nuint offset)
    {
        if (typeof(T) == typeof(float))
        {
            Vector256<int> bits = positions.AsInt32();
            Vector256.WidenLower(bits).StoreUnsafe(ref target, offset);
            Vector256.WidenUpper(bits).StoreUnsafe(ref target, offset + (nuint)Vector256<long>.Count);
        }
        else
        {
            positions.AsInt64().StoreUnsafe(ref target, offset);
        }
    }
}

/// <summary>SSE / NEON bag operations on float or double lanes.</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>: the table element and the accumulator.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagVector128<T> : IBagVector<Vector128<T>, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <inheritdoc/>
    public static int Lanes => Vector128<T>.Count;
    /// <inheritdoc/>
    public static Vector128<T> Zero => Vector128<T>.Zero;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Load(ref T source, nuint offset) => Vector128.LoadUnsafe(ref source, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<T> value, ref T target, nuint offset) => value.StoreUnsafe(ref target, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Broadcast(T value) => Vector128.Create(value);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Count(int count) => Vector128.Create(T.CreateTruncating(count));
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Round(Vector128<T> value) => value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Add(Vector128<T> left, Vector128<T> right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Multiply(Vector128<T> left, Vector128<T> right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Divide(Vector128<T> left, Vector128<T> right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> GreaterThan(Vector128<T> left, Vector128<T> right) => Vector128.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<T> Select(Vector128<T> mask, Vector128<T> whenTrue, Vector128<T> whenFalse) => Vector128.ConditionalSelect(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Larger(Vector128<T> row, Vector128<T> accumulator) =>
        !Sse2.IsSupported ? Select(GreaterThan(row, accumulator), row, accumulator)
        : typeof(T) == typeof(float) ? Sse.Max(row.AsSingle(), accumulator.AsSingle()).As<float, T>() : Sse2.Max(row.AsDouble(), accumulator.AsDouble()).As<double, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> FusedMultiplyAdd(Vector128<T> a, Vector128<T> b, Vector128<T> c) =>
        typeof(T) == typeof(float)
            ? ExactFusedMultiplyAdd.MultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector128.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<T> Position(nint position) =>
        typeof(T) == typeof(float) ? Vector128.Create((int)position).As<int, T>() : Vector128.Create((long)position).As<long, T>();

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(Vector128<T> positions, ref long target, nuint offset)
    {
        if (typeof(T) == typeof(float))
        {
            Vector128<int> bits = positions.AsInt32();
            Vector128.WidenLower(bits).StoreUnsafe(ref target, offset);
            Vector128.WidenUpper(bits).StoreUnsafe(ref target, offset + (nuint)Vector128<long>.Count);
        }
        else
        {
            positions.AsInt64().StoreUnsafe(ref target, offset);
        }
    }
}

/// <summary>Scalar bag operations on a float or double: one element per "vector"; the select works on the bits, as the vector ones do.</summary>
/// <typeparam name="T"><see cref="float"/> or <see cref="double"/>: the table element and the accumulator.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct BagScalar<T> : IBagVector<T, T>
    where T : unmanaged, IBinaryFloatingPointIeee754<T>
{
    /// <inheritdoc/>
    public static int Lanes => 1;
    /// <inheritdoc/>
    public static T Zero => T.Zero;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Load(ref T source, nuint offset) => Unsafe.Add(ref source, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(T value, ref T target, nuint offset) => Unsafe.Add(ref target, offset) = value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Broadcast(T value) => value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Count(int count) => T.CreateTruncating(count);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Round(T value) => value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Add(T left, T right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Multiply(T left, T right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T FusedMultiplyAdd(T a, T b, T c) => T.FusedMultiplyAdd(a, b, c);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Divide(T left, T right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T GreaterThan(T left, T right) => left > right ? T.AllBitsSet : T.Zero;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Select(T mask, T whenTrue, T whenFalse) => (mask & whenTrue) | (~mask & whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static T Larger(T row, T accumulator) => row > accumulator ? row : accumulator;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Position(nint position) =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<int, T>((int)position) : Unsafe.BitCast<long, T>(position);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(T positions, ref long target, nuint offset) =>
        Unsafe.Add(ref target, offset) = typeof(T) == typeof(float) ? Unsafe.BitCast<T, int>(positions) : Unsafe.BitCast<T, long>(positions);
}
