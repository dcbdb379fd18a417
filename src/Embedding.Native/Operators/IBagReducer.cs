using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The vector operations a bag reduction needs, for one vector type (<see cref="float"/> for the
/// scalar width). With <see cref="IBagReducer"/> this lets <see cref="GenericBag{TIndex, TMode}"/> be written once and
/// specialised per width by the compiler, accumulators held in registers of <typeparamref name="TVector"/>.
/// </summary>
/// <typeparam name="TVector"><see cref="float"/>, <see cref="Vector128{T}"/>, <see cref="Vector256{T}"/> or <see cref="Vector512{T}"/> of float.</typeparam>
internal interface IBagVector<TVector>
{
    /// <summary>Floats per vector.</summary>
    static abstract int Lanes { get; }

    /// <summary>Every lane +0.0: the start of a sum.</summary>
    static abstract TVector Zero { get; }

    static abstract TVector Load(ref float source, nuint offset);

    static abstract void Store(TVector value, ref float target, nuint offset);

    static abstract TVector Broadcast(float value);

    static abstract TVector Add(TVector left, TVector right);

    static abstract TVector Multiply(TVector left, TVector right);

    /// <summary><c>a·b + c</c> rounded once on every ISA.</summary>
    static abstract TVector FusedMultiplyAdd(TVector a, TVector b, TVector c);

    static abstract TVector Divide(TVector left, TVector right);

    /// <summary>All-ones lanes where <paramref name="left"/> &gt; <paramref name="right"/> (false for NaN).</summary>
    static abstract TVector GreaterThan(TVector left, TVector right);

    /// <summary>Bitwise select: <paramref name="mask"/> lanes from <paramref name="whenTrue"/>, the rest from <paramref name="whenFalse"/>.</summary>
    static abstract TVector Select(TVector mask, TVector whenTrue, TVector whenFalse);

    /// <summary>Widens the int32 lanes (stored as float bits) to int64 and stores them at <paramref name="offset"/>.</summary>
    static abstract void StorePositions(TVector positions, ref long target, nuint offset);
}

/// <summary>
/// One sum-family bag reduction as an operator (the TensorPrimitives shape): the start value, the step
/// that folds one row into the accumulator and the finish applied once per bag, over any
/// <see cref="IBagVector{TVector}"/> width. Max, which tracks positions, is <see cref="BagMax"/>.
/// </summary>
internal interface IBagReducer
{
    /// <summary>True when <see cref="Accumulate"/> reads the per-sample weight.</summary>
    static abstract bool IsWeighted { get; }

    /// <summary>The accumulator before the first row: +0.0, so a bag of -0.0 rows sums to +0.0 as in torch.</summary>
    static abstract TVector Identity<TVector, TOps>() where TOps : IBagVector<TVector>;

    /// <summary>Folds one row (and its broadcast per-sample weight) into the accumulator.</summary>
    static abstract TVector Accumulate<TVector, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector>;

    /// <summary>The bag's result from the accumulator and its non-padding row count.</summary>
    static abstract TVector Finish<TVector, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector>;
}

/// <summary>A bag reduction as it names its kernels: the <see cref="KernelOperation"/> of its key.</summary>
internal interface IBagMode
{
    static abstract KernelOperation Operation { get; }
}

/// <summary>Sum: <c>acc = acc + row</c>.</summary>
internal readonly struct BagSum : IBagReducer, IBagMode
{
    public static KernelOperation Operation => KernelOperation.BagSum;

    public static bool IsWeighted => false;

    public static TVector Identity<TVector, TOps>() where TOps : IBagVector<TVector> => TOps.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector> =>
        TOps.Add(accumulator, row);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector> => accumulator;
}

/// <summary>Mean: the sum, then a true division by <c>max(count, 1)</c> (torch divides; a reciprocal multiply differs).</summary>
internal readonly struct BagMean : IBagReducer, IBagMode
{
    public static KernelOperation Operation => KernelOperation.BagMean;

    public static bool IsWeighted => false;

    public static TVector Identity<TVector, TOps>() where TOps : IBagVector<TVector> => TOps.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector> =>
        TOps.Add(accumulator, row);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector> =>
        TOps.Divide(accumulator, TOps.Broadcast(Math.Max(count, 1)));
}

/// <summary>The weighted sum as a kernel: <see cref="BagWeightedSumFused"/> without a padding row, <see cref="BagWeightedSumRounded"/> with one.</summary>
internal readonly struct BagWeightedSum : IBagMode
{
    public static KernelOperation Operation => KernelOperation.BagWeightedSum;
}

/// <summary>Weighted sum without padding: <c>acc = fma(row, w, acc)</c>, one rounding (torch 1.13's fast path).</summary>
internal readonly struct BagWeightedSumFused : IBagReducer
{
    public static bool IsWeighted => true;

    public static TVector Identity<TVector, TOps>() where TOps : IBagVector<TVector> => TOps.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector> =>
        TOps.FusedMultiplyAdd(row, weight, accumulator);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector> => accumulator;
}

/// <summary>Weighted sum with a padding row: <c>acc = acc + fl(row·w)</c>, two roundings (torch 1.13's padding path).</summary>
internal readonly struct BagWeightedSumRounded : IBagReducer
{
    public static bool IsWeighted => true;

    public static TVector Identity<TVector, TOps>() where TOps : IBagVector<TVector> => TOps.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Accumulate<TVector, TOps>(TVector accumulator, TVector row, TVector weight) where TOps : IBagVector<TVector> =>
        TOps.Add(accumulator, TOps.Multiply(row, weight));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Finish<TVector, TOps>(TVector accumulator, int count) where TOps : IBagVector<TVector> => accumulator;
}

/// <summary>
/// Max: the accumulator starts at the bag's first non-padding row and a later row replaces a lane only
/// when strictly greater, so the first maximum wins, NaN sticks only when first, and -0.0 vs 0.0 keeps
/// the first. The position each lane came from travels alongside, as int32 bits in a float vector.
/// </summary>
internal readonly struct BagMax : IBagMode
{
    public static KernelOperation Operation => KernelOperation.BagMax;

    /// <summary>Where <paramref name="row"/> replaces the accumulator: strictly greater.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Replaces<TVector, TOps>(TVector accumulator, TVector row) where TOps : IBagVector<TVector> =>
        TOps.GreaterThan(row, accumulator);

    /// <summary>A position broadcast as int32 bits, for <see cref="IBagVector{TVector}.Select"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Position<TVector, TOps>(nint position) where TOps : IBagVector<TVector> =>
        TOps.Broadcast(BitConverter.Int32BitsToSingle((int)position));
}

/// <summary>AVX-512 bag operations.</summary>
internal readonly struct BagVector512 : IBagVector<Vector512<float>>
{
    public static int Lanes => Vector512<float>.Count;
    public static Vector512<float> Zero => Vector512<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(ref float source, nuint offset) => Vector512.LoadUnsafe(ref source, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector512<float> value, ref float target, nuint offset) => value.StoreUnsafe(ref target, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float value) => Vector512.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Add(Vector512<float> left, Vector512<float> right) => left + right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Multiply(Vector512<float> left, Vector512<float> right) => left * right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> FusedMultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Divide(Vector512<float> left, Vector512<float> right) => left / right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> GreaterThan(Vector512<float> left, Vector512<float> right) => Vector512.GreaterThan(left, right);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Select(Vector512<float> mask, Vector512<float> whenTrue, Vector512<float> whenFalse) => Vector512.ConditionalSelect(mask, whenTrue, whenFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(Vector512<float> positions, ref long target, nuint offset)
    {
        Vector512<int> bits = positions.AsInt32();
        Vector512.WidenLower(bits).StoreUnsafe(ref target, offset);
        Vector512.WidenUpper(bits).StoreUnsafe(ref target, offset + (nuint)Vector512<long>.Count);
    }
}

/// <summary>AVX2 bag operations.</summary>
internal readonly struct BagVector256 : IBagVector<Vector256<float>>
{
    public static int Lanes => Vector256<float>.Count;
    public static Vector256<float> Zero => Vector256<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(ref float source, nuint offset) => Vector256.LoadUnsafe(ref source, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector256<float> value, ref float target, nuint offset) => value.StoreUnsafe(ref target, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float value) => Vector256.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Add(Vector256<float> left, Vector256<float> right) => left + right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Multiply(Vector256<float> left, Vector256<float> right) => left * right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> FusedMultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Divide(Vector256<float> left, Vector256<float> right) => left / right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> GreaterThan(Vector256<float> left, Vector256<float> right) => Vector256.GreaterThan(left, right);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Select(Vector256<float> mask, Vector256<float> whenTrue, Vector256<float> whenFalse) => Vector256.ConditionalSelect(mask, whenTrue, whenFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(Vector256<float> positions, ref long target, nuint offset)
    {
        Vector256<int> bits = positions.AsInt32();
        Vector256.WidenLower(bits).StoreUnsafe(ref target, offset);
        Vector256.WidenUpper(bits).StoreUnsafe(ref target, offset + (nuint)Vector256<long>.Count);
    }
}

/// <summary>SSE / NEON bag operations.</summary>
internal readonly struct BagVector128 : IBagVector<Vector128<float>>
{
    public static int Lanes => Vector128<float>.Count;
    public static Vector128<float> Zero => Vector128<float>.Zero;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(ref float source, nuint offset) => Vector128.LoadUnsafe(ref source, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(Vector128<float> value, ref float target, nuint offset) => value.StoreUnsafe(ref target, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float value) => Vector128.Create(value);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Add(Vector128<float> left, Vector128<float> right) => left + right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Multiply(Vector128<float> left, Vector128<float> right) => left * right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> FusedMultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Divide(Vector128<float> left, Vector128<float> right) => left / right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> GreaterThan(Vector128<float> left, Vector128<float> right) => Vector128.GreaterThan(left, right);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Select(Vector128<float> mask, Vector128<float> whenTrue, Vector128<float> whenFalse) => Vector128.ConditionalSelect(mask, whenTrue, whenFalse);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(Vector128<float> positions, ref long target, nuint offset)
    {
        Vector128<int> bits = positions.AsInt32();
        Vector128.WidenLower(bits).StoreUnsafe(ref target, offset);
        Vector128.WidenUpper(bits).StoreUnsafe(ref target, offset + (nuint)Vector128<long>.Count);
    }
}

/// <summary>Scalar bag operations: one float per "vector"; the select works on the bits, as the vector ones do.</summary>
internal readonly struct BagScalar : IBagVector<float>
{
    public static int Lanes => 1;
    public static float Zero => 0.0f;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(ref float source, nuint offset) => Unsafe.Add(ref source, offset);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float value, ref float target, nuint offset) => Unsafe.Add(ref target, offset) = value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(float value) => value;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Add(float left, float right) => left + right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Multiply(float left, float right) => left * right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float FusedMultiplyAdd(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Divide(float left, float right) => left / right;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float GreaterThan(float left, float right) => BitConverter.Int32BitsToSingle(left > right ? -1 : 0);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Select(float mask, float whenTrue, float whenFalse) => BitConverter.Int32BitsToSingle(
        (BitConverter.SingleToInt32Bits(mask) & BitConverter.SingleToInt32Bits(whenTrue)) | (~BitConverter.SingleToInt32Bits(mask) & BitConverter.SingleToInt32Bits(whenFalse)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void StorePositions(float positions, ref long target, nuint offset) => Unsafe.Add(ref target, offset) = BitConverter.SingleToInt32Bits(positions);
}
