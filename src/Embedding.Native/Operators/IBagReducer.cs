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
            ? Vector128.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
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

/// <summary>
/// Exact float16 → float32 widening of whole vectors: the bit steps of .NET's <c>(float)Half</c>
/// (normals rebias the exponent; subnormals are made normal and the implicit bit subtracted in float32,
/// so no float32 subnormal is ever an operand; ±inf and NaN keep their payload), lane for lane.
/// </summary>
internal static class HalfLanes
{
    private const uint SignMask = 0x8000;
    private const uint ExponentMask = 0x7C00;
    private const uint ExponentAndFractionMask = 0x0FFF_E000;
    private const uint ExponentOffset = 0x3800_0000;
    private const uint SubnormalBound = 0x3880_0000;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Widen(Vector512<uint> half)
    {
        Vector512<uint> exponent = half & Vector512.Create(ExponentMask);
        Vector512<uint> subnormal = Vector512.Equals(exponent, Vector512<uint>.Zero) & Vector512.Create(SubnormalBound);
        Vector512<uint> special = Vector512.Equals(exponent, Vector512.Create(ExponentMask)) & Vector512.Create(ExponentOffset);
        Vector512<uint> bits = ((half << 13) & Vector512.Create(ExponentAndFractionMask)) + (Vector512.Create(ExponentOffset) | subnormal) + special;
        Vector512<uint> magnitude = (bits.AsSingle() - subnormal.AsSingle()).AsUInt32();
        return (magnitude | ((half & Vector512.Create(SignMask)) << 16)).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Widen(Vector256<uint> half)
    {
        Vector256<uint> exponent = half & Vector256.Create(ExponentMask);
        Vector256<uint> subnormal = Vector256.Equals(exponent, Vector256<uint>.Zero) & Vector256.Create(SubnormalBound);
        Vector256<uint> special = Vector256.Equals(exponent, Vector256.Create(ExponentMask)) & Vector256.Create(ExponentOffset);
        Vector256<uint> bits = ((half << 13) & Vector256.Create(ExponentAndFractionMask)) + (Vector256.Create(ExponentOffset) | subnormal) + special;
        Vector256<uint> magnitude = (bits.AsSingle() - subnormal.AsSingle()).AsUInt32();
        return (magnitude | ((half & Vector256.Create(SignMask)) << 16)).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Widen(Vector128<uint> half)
    {
        Vector128<uint> exponent = half & Vector128.Create(ExponentMask);
        Vector128<uint> subnormal = Vector128.Equals(exponent, Vector128<uint>.Zero) & Vector128.Create(SubnormalBound);
        Vector128<uint> special = Vector128.Equals(exponent, Vector128.Create(ExponentMask)) & Vector128.Create(ExponentOffset);
        Vector128<uint> bits = ((half << 13) & Vector128.Create(ExponentAndFractionMask)) + (Vector128.Create(ExponentOffset) | subnormal) + special;
        Vector128<uint> magnitude = (bits.AsSingle() - subnormal.AsSingle()).AsUInt32();
        return (magnitude | ((half & Vector128.Create(SignMask)) << 16)).AsSingle();
    }

    /// <summary>Rounds each of <paramref name="lanes"/> floats to half (to nearest, ties to even) and stores it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Narrow(ref float values, int lanes, ref Half target, nuint offset)
    {
        for (int j = 0; j < lanes; j++)
        {
            Unsafe.Add(ref target, offset + (nuint)j) = (Half)Unsafe.Add(ref values, j);
        }
    }

    /// <summary>Each of <paramref name="lanes"/> floats rounded to half and widened back, in place.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Round(ref float values, int lanes)
    {
        for (int j = 0; j < lanes; j++)
        {
            ref float value = ref Unsafe.Add(ref values, j);
            value = (float)(Half)value;
        }
    }
}

/// <summary>
/// AVX-512 bag operations on a float16 table: 16 halves widened to 16 float32 accumulators per load; the
/// arithmetic is <see cref="BagVector512{T}"/> of float, and the store rounds each lane to half once.
/// </summary>
internal readonly struct BagHalf512 : IBagVector<Vector512<float>, Half>
{
    /// <inheritdoc/>
    public static int Lanes => Vector512<float>.Count;
    /// <inheritdoc/>
    public static Vector512<float> Zero => Vector512<float>.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(ref Half source, nuint offset) => HalfConversions.Load512(ref source, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref Half target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Round(Vector512<float> value) => HalfConversions.RoundToHalf(value);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(Half value) => Vector512.Create((float)value);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Count(int count) => Vector512.Create((float)count);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> left, Vector512<float> right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> left, Vector512<float> right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> FusedMultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> left, Vector512<float> right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> GreaterThan(Vector512<float> left, Vector512<float> right) => Vector512.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Select(Vector512<float> mask, Vector512<float> whenTrue, Vector512<float> whenFalse) => Vector512.ConditionalSelect(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Larger(Vector512<float> row, Vector512<float> accumulator) => BagVector512<float>.Larger(row, accumulator);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Position(nint position) => BagVector512<float>.Position(position);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StorePositions(Vector512<float> positions, ref long target, nuint offset) => BagVector512<float>.StorePositions(positions, ref target, offset);
}

/// <summary>
/// AVX2 bag operations on a float16 table: 8 halves widened to 8 float32 accumulators per load; the
/// arithmetic is <see cref="BagVector256{T}"/> of float, and the store rounds each lane to half once.
/// </summary>
internal readonly struct BagHalf256 : IBagVector<Vector256<float>, Half>
{
    /// <inheritdoc/>
    public static int Lanes => Vector256<float>.Count;
    /// <inheritdoc/>
    public static Vector256<float> Zero => Vector256<float>.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(ref Half source, nuint offset) => HalfConversions.Load256(ref source, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref Half target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Round(Vector256<float> value) => HalfConversions.RoundToHalf(value);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(Half value) => Vector256.Create((float)value);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Count(int count) => Vector256.Create((float)count);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> left, Vector256<float> right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> left, Vector256<float> right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> FusedMultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> left, Vector256<float> right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> GreaterThan(Vector256<float> left, Vector256<float> right) => Vector256.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Select(Vector256<float> mask, Vector256<float> whenTrue, Vector256<float> whenFalse) => Vector256.ConditionalSelect(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Larger(Vector256<float> row, Vector256<float> accumulator) => BagVector256<float>.Larger(row, accumulator);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Position(nint position) => BagVector256<float>.Position(position);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StorePositions(Vector256<float> positions, ref long target, nuint offset) => BagVector256<float>.StorePositions(positions, ref target, offset);
}

/// <summary>
/// SSE / NEON bag operations on a float16 table: 4 halves widened to 4 float32 accumulators per load; the
/// arithmetic is <see cref="BagVector128{T}"/> of float, and the store rounds each lane to half once.
/// </summary>
internal readonly struct BagHalf128 : IBagVector<Vector128<float>, Half>
{
    /// <inheritdoc/>
    public static int Lanes => Vector128<float>.Count;
    /// <inheritdoc/>
    public static Vector128<float> Zero => Vector128<float>.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(ref Half source, nuint offset) => HalfConversions.Load128(ref source, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref Half target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Round(Vector128<float> value) => HalfConversions.RoundToHalf(value);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(Half value) => Vector128.Create((float)value);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Count(int count) => Vector128.Create((float)count);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> left, Vector128<float> right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> left, Vector128<float> right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> FusedMultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Divide(Vector128<float> left, Vector128<float> right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> GreaterThan(Vector128<float> left, Vector128<float> right) => Vector128.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Select(Vector128<float> mask, Vector128<float> whenTrue, Vector128<float> whenFalse) => Vector128.ConditionalSelect(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Larger(Vector128<float> row, Vector128<float> accumulator) => BagVector128<float>.Larger(row, accumulator);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Position(nint position) => BagVector128<float>.Position(position);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StorePositions(Vector128<float> positions, ref long target, nuint offset) => BagVector128<float>.StorePositions(positions, ref target, offset);
}

/// <summary>Scalar bag operations on a float16 table: one half widened to a float32 accumulator, rounded to half at the store.</summary>
internal readonly struct BagHalfScalar : IBagVector<float, Half>
{
    /// <inheritdoc/>
    public static int Lanes => 1;
    /// <inheritdoc/>
    public static float Zero => 0.0f;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(ref Half source, nuint offset) => (float)Unsafe.Add(ref source, offset);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float value, ref Half target, nuint offset) => Unsafe.Add(ref target, offset) = (Half)value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Round(float value) => (float)(Half)value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(Half value) => (float)value;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Count(int count) => count;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float left, float right) => left + right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Multiply(float left, float right) => left * right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float FusedMultiplyAdd(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Divide(float left, float right) => left / right;
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GreaterThan(float left, float right) => BagScalar<float>.GreaterThan(left, right);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Select(float mask, float whenTrue, float whenFalse) => BagScalar<float>.Select(mask, whenTrue, whenFalse);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Larger(float row, float accumulator) => BagScalar<float>.Larger(row, accumulator);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Position(nint position) => BagScalar<float>.Position(position);
    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void StorePositions(float positions, ref long target, nuint offset) => BagScalar<float>.StorePositions(positions, ref target, offset);
}
