using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// One gradient row added into one destination row: the update every scatter makes (the embedding and
/// bag backward, on one thread or split by row range). Whole vectors, then, when the dimension is not a
/// multiple of the width, one masked vector that ends at the row end and updates only the columns the
/// loop did not reach: adding an overlapped column twice would be wrong, not merely redundant.
/// </summary>
/// <remarks>
/// <para>
/// The element-generic members serve every table type with torch 1.13's arithmetic
/// (docs/table-types.md, "Embedding dense backward"): float32 runs the float members below;
/// float64 the same operations on vectors of doubles (whole vectors, then the last columns one at a
/// time: an add or a fused multiply-add gives the same bits in a lane and in a scalar); float16 the
/// same shape on vectors of float lanes (<see cref="HalfConversions"/> widens exactly and rounds where torch
/// rounds, as the scalar casts do); bfloat16 one element at a time, widened to float, computed, and
/// rounded back where torch rounds. Every width therefore gives the same bits.
/// </para>
/// <para>
/// The frequency-scaled update with a scale <c>a = fl(1/c)</c> (<see cref="FrequencyScale{T}"/>) is, with
/// torch's FMA kernels (AVX2, AVX-512): float32 and float64 <c>fma(g, a, acc)</c>; float16 <c>rd(acc + rd(g·a))</c>;
/// bfloat16 <c>rd(fma_f32(g, a, acc))</c> in the first <c>D − D % 32</c> columns (torch's add kernel runs
/// whole 32-element chunks of the row, 64 with AVX-512: <see cref="BFloat16FusedChunk"/>) and <c>rd(acc + rd(g·a))</c>
/// in the rest (its scalar kernel). With torch's default kernels every product is rounded to the type before it is added, in every column
/// (<see cref="RoundedProducts"/>).
/// Without the scale every type adds, one rounding: <c>rd(acc + g)</c>.
/// </para>
/// </remarks>
internal static class RowUpdate
{
    /// <summary>
    /// bfloat16 columns per chunk of torch 1.13's vectorised add (<c>Vectorized&lt;BFloat16&gt;</c> holds 16 with
    /// AVX2, 32 with AVX-512; its add kernel unrolls two): the frequency-scaled update is fused in whole chunks
    /// and rounded twice in the rest of the row. Its default kernels fuse nothing (<see cref="RoundedProducts"/>).
    /// </summary>
    public static readonly int BFloat16FusedChunk = TorchCpuCapabilities.Current == TorchCpuCapability.Avx512 ? 64 : 32;

    /// <summary><c>target[c] = target[c] + gradient[c]</c> for every column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add<TWidth>(ref float gradient, ref float target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            TWidth.Add(ref gradient, ref target, column);
        }

        if (wholeColumns != (nuint)dimension)
        {
            nuint lastVector = (nuint)dimension - lanes;
            TWidth.AddMasked(ref gradient, ref target, lastVector, (int)(wholeColumns - lastVector));
        }
    }

    /// <summary><c>target[c] = fma(gradient[c], scale, target[c])</c> for every column, one rounding each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<TWidth>(ref float gradient, float scale, ref float target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            TWidth.MultiplyAdd(ref gradient, scale, ref target, column);
        }

        if (wholeColumns != (nuint)dimension)
        {
            nuint lastVector = (nuint)dimension - lanes;
            TWidth.MultiplyAddMasked(ref gradient, scale, ref target, lastVector, (int)(wholeColumns - lastVector));
        }
    }

    /// <summary>
    /// torch's <c>scale_grad_by_freq</c> factor for a row named <paramref name="count"/> times, in the
    /// table's type: <c>1.0 / count</c> in double, then converted as c10 converts a double
    /// (float64 keeps it; float32 rounds once; float16 and bfloat16 round to float, then to the type).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T FrequencyScale<T>(int count)
        where T : unmanaged
    {
        double scale = 1.0 / count;
        if (typeof(T) == typeof(double))
        {
            return Unsafe.BitCast<double, T>(scale);
        }

        if (typeof(T) == typeof(Half))
        {
            return Unsafe.BitCast<Half, T>((Half)(float)scale);
        }

        if (typeof(T) == typeof(BFloat16))
        {
            return Unsafe.BitCast<BFloat16, T>((BFloat16)(float)scale);
        }

        return Unsafe.BitCast<float, T>((float)scale);
    }

    /// <summary><c>target[c] = rd(target[c] + gradient[c])</c> for every column, in the table's type.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add<TWidth, T>(ref T gradient, ref T target, int dimension)
        where TWidth : IVectorWidth
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            Add<TWidth>(ref Unsafe.As<T, float>(ref gradient), ref Unsafe.As<T, float>(ref target), dimension);
        }
        else if (typeof(T) == typeof(double))
        {
            AddDoubles<TWidth>(ref Unsafe.As<T, double>(ref gradient), ref Unsafe.As<T, double>(ref target), dimension);
        }
        else if (typeof(T) == typeof(Half))
        {
            AddHalves<TWidth>(ref Unsafe.As<T, Half>(ref gradient), ref Unsafe.As<T, Half>(ref target), dimension);
        }
        else if (typeof(T) == typeof(BFloat16))
        {
            ref BFloat16 g = ref Unsafe.As<T, BFloat16>(ref gradient);
            ref BFloat16 t = ref Unsafe.As<T, BFloat16>(ref target);
            for (nint column = 0; column < dimension; column++)
            {
                Unsafe.Add(ref t, column) = (BFloat16)((float)Unsafe.Add(ref t, column) + (float)Unsafe.Add(ref g, column));
            }
        }
        else
        {
            throw new NotSupportedException(typeof(T).Name);
        }
    }

    /// <summary>
    /// The frequency-scaled update of every column with <paramref name="scale"/> = <see cref="FrequencyScale{T}"/>,
    /// with torch's rounding per type (see the remarks on <see cref="RowUpdate"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<TWidth, T, TProducts>(ref T gradient, T scale, ref T target, int dimension)
        where TWidth : IVectorWidth
        where T : unmanaged
        where TProducts : ITorchProducts
    {
        if (typeof(T) == typeof(float) && TProducts.AreFused)
        {
            MultiplyAdd<TWidth>(ref Unsafe.As<T, float>(ref gradient), Unsafe.BitCast<T, float>(scale), ref Unsafe.As<T, float>(ref target), dimension);
        }
        else if (typeof(T) == typeof(float))
        {
            MultiplyThenAdd<TWidth>(ref Unsafe.As<T, float>(ref gradient), Unsafe.BitCast<T, float>(scale), ref Unsafe.As<T, float>(ref target), dimension);
        }
        else if (typeof(T) == typeof(double))
        {
            MultiplyAddDoubles<TWidth, TProducts>(ref Unsafe.As<T, double>(ref gradient), Unsafe.BitCast<T, double>(scale), ref Unsafe.As<T, double>(ref target), dimension);
        }
        else if (typeof(T) == typeof(Half))
        {
            MultiplyAddHalves<TWidth>(ref Unsafe.As<T, Half>(ref gradient), (float)Unsafe.BitCast<T, Half>(scale), ref Unsafe.As<T, Half>(ref target), dimension);
        }
        else if (typeof(T) == typeof(BFloat16))
        {
            float a = (float)Unsafe.BitCast<T, BFloat16>(scale);
            ref BFloat16 g = ref Unsafe.As<T, BFloat16>(ref gradient);
            ref BFloat16 t = ref Unsafe.As<T, BFloat16>(ref target);

            // torch's FMA kernels: whole chunks of 32 columns, one fused float operation, one rounding. Its default
            // kernels round the product to bfloat16 there too, as the scalar kernel does below.
            nint fused = TProducts.AreFused ? dimension - dimension % BFloat16FusedChunk : 0;
            nint column = 0;
            for (; column < fused; column++)
            {
                Unsafe.Add(ref t, column) = (BFloat16)MathF.FusedMultiplyAdd((float)Unsafe.Add(ref g, column), a, (float)Unsafe.Add(ref t, column));
            }

            // Its scalar kernel for the last D % 32 columns: c10::BFloat16 operators, two roundings.
            for (; column < dimension; column++)
            {
                BFloat16 product = (BFloat16)((float)Unsafe.Add(ref g, column) * a);
                Unsafe.Add(ref t, column) = (BFloat16)((float)Unsafe.Add(ref t, column) + (float)product);
            }
        }
        else
        {
            throw new NotSupportedException(typeof(T).Name);
        }
    }

    /// <summary>
    /// <c>target[c] = rd(source[c] · scale)</c> for every column, one rounding in the table's type
    /// (float16 and bfloat16: the float product, which is exact, rounded once). Each column on its own,
    /// so any split gives the same bits.
    /// </summary>
    public static void Multiply<T>(ref T source, T scale, ref T target, int dimension)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            ref float from = ref Unsafe.As<T, float>(ref source);
            ref float to = ref Unsafe.As<T, float>(ref target);
            float a = Unsafe.BitCast<T, float>(scale);
            nint column = 0;
            for (; column <= dimension - Vector128<float>.Count; column += Vector128<float>.Count)
            {
                (Vector128.LoadUnsafe(ref from, (nuint)column) * a).StoreUnsafe(ref to, (nuint)column);
            }

            for (; column < dimension; column++)
            {
                Unsafe.Add(ref to, column) = Unsafe.Add(ref from, column) * a;
            }
        }
        else if (typeof(T) == typeof(double))
        {
            ref double from = ref Unsafe.As<T, double>(ref source);
            ref double to = ref Unsafe.As<T, double>(ref target);
            double a = Unsafe.BitCast<T, double>(scale);
            nint column = 0;
            for (; column <= dimension - Vector128<double>.Count; column += Vector128<double>.Count)
            {
                (Vector128.LoadUnsafe(ref from, (nuint)column) * a).StoreUnsafe(ref to, (nuint)column);
            }

            for (; column < dimension; column++)
            {
                Unsafe.Add(ref to, column) = Unsafe.Add(ref from, column) * a;
            }
        }
        else if (typeof(T) == typeof(Half))
        {
            float a = (float)Unsafe.BitCast<T, Half>(scale);
            ref Half from = ref Unsafe.As<T, Half>(ref source);
            ref Half to = ref Unsafe.As<T, Half>(ref target);
            for (nint column = 0; column < dimension; column++)
            {
                Unsafe.Add(ref to, column) = (Half)((float)Unsafe.Add(ref from, column) * a);
            }
        }
        else if (typeof(T) == typeof(BFloat16))
        {
            float a = (float)Unsafe.BitCast<T, BFloat16>(scale);
            ref BFloat16 from = ref Unsafe.As<T, BFloat16>(ref source);
            ref BFloat16 to = ref Unsafe.As<T, BFloat16>(ref target);
            for (nint column = 0; column < dimension; column++)
            {
                Unsafe.Add(ref to, column) = (BFloat16)((float)Unsafe.Add(ref from, column) * a);
            }
        }
        else
        {
            throw new NotSupportedException(typeof(T).Name);
        }
    }

    /// <summary>float64 <c>target[c] = target[c] + gradient[c]</c>: whole vectors of the width, then one column at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddDoubles<TWidth>(ref double gradient, ref double target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.LanesOf<double>();
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            if (typeof(TWidth) == typeof(Width512))
            {
                (Vector512.LoadUnsafe(ref target, column) + Vector512.LoadUnsafe(ref gradient, column)).StoreUnsafe(ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width256))
            {
                (Vector256.LoadUnsafe(ref target, column) + Vector256.LoadUnsafe(ref gradient, column)).StoreUnsafe(ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width128))
            {
                (Vector128.LoadUnsafe(ref target, column) + Vector128.LoadUnsafe(ref gradient, column)).StoreUnsafe(ref target, column);
            }
            else
            {
                Unsafe.Add(ref target, column) = Unsafe.Add(ref target, column) + Unsafe.Add(ref gradient, column);
            }
        }

        // The last columns one at a time: a vector overlapping the ones above would add them twice.
        for (nuint column = wholeColumns; column < (nuint)dimension; column++)
        {
            Unsafe.Add(ref target, column) = Unsafe.Add(ref target, column) + Unsafe.Add(ref gradient, column);
        }
    }

    /// <summary>
    /// float32 <c>target[c] = rd(target[c] + rd(gradient[c] · scale))</c>, torch's default kernels: whole vectors of
    /// the width, then one column at a time (a product and a sum round the same in a lane and in a scalar).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyThenAdd<TWidth>(ref float gradient, float scale, ref float target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            if (typeof(TWidth) == typeof(Width512))
            {
                (Vector512.LoadUnsafe(ref gradient, column) * scale + Vector512.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width256))
            {
                (Vector256.LoadUnsafe(ref gradient, column) * scale + Vector256.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width128))
            {
                (Vector128.LoadUnsafe(ref gradient, column) * scale + Vector128.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
            }
            else
            {
                Unsafe.Add(ref target, column) = Unsafe.Add(ref gradient, column) * scale + Unsafe.Add(ref target, column);
            }
        }

        // The last columns one at a time: a vector overlapping the ones above would add them twice.
        for (nuint column = wholeColumns; column < (nuint)dimension; column++)
        {
            Unsafe.Add(ref target, column) = Unsafe.Add(ref gradient, column) * scale + Unsafe.Add(ref target, column);
        }
    }

    /// <summary>
    /// float64 <c>target[c] = gradient[c] · scale + target[c]</c>, rounded as <typeparamref name="TProducts"/>: whole
    /// vectors of the width, then one column at a time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAddDoubles<TWidth, TProducts>(ref double gradient, double scale, ref double target, int dimension)
        where TWidth : IVectorWidth
        where TProducts : ITorchProducts
    {
        nuint lanes = (nuint)TWidth.LanesOf<double>();
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            if (!TProducts.AreFused && typeof(TWidth) != typeof(WidthScalar))
            {
                RoundedMultiplyAddDoubles<TWidth>(ref gradient, scale, ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width512))
            {
                Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref gradient, column), Vector512.Create(scale), Vector512.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width256))
            {
                Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref gradient, column), Vector256.Create(scale), Vector256.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width128))
            {
                Vector128.FusedMultiplyAdd(Vector128.LoadUnsafe(ref gradient, column), Vector128.Create(scale), Vector128.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
            }
            else
            {
                Unsafe.Add(ref target, column) = TProducts.MultiplyAdd(Unsafe.Add(ref gradient, column), scale, Unsafe.Add(ref target, column));
            }
        }

        // The last columns one at a time: a vector overlapping the ones above would add them twice.
        for (nuint column = wholeColumns; column < (nuint)dimension; column++)
        {
            Unsafe.Add(ref target, column) = TProducts.MultiplyAdd(Unsafe.Add(ref gradient, column), scale, Unsafe.Add(ref target, column));
        }
    }

    /// <summary>One vector of float64 <c>rd(rd(gradient · scale) + target)</c> at <paramref name="column"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void RoundedMultiplyAddDoubles<TWidth>(ref double gradient, double scale, ref double target, nuint column)
        where TWidth : IVectorWidth
    {
        if (typeof(TWidth) == typeof(Width512))
        {
            (Vector512.LoadUnsafe(ref gradient, column) * scale + Vector512.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
        }
        else if (typeof(TWidth) == typeof(Width256))
        {
            (Vector256.LoadUnsafe(ref gradient, column) * scale + Vector256.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
        }
        else
        {
            (Vector128.LoadUnsafe(ref gradient, column) * scale + Vector128.LoadUnsafe(ref target, column)).StoreUnsafe(ref target, column);
        }
    }

    /// <summary>
    /// float16 <c>target[c] = rd(target[c] + gradient[c])</c>: whole vectors of the width's float lanes (the
    /// halves widened exactly, added in float32, rounded once by <see cref="HalfConversions"/>), then the last
    /// columns one at a time with the scalar casts, which give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddHalves<TWidth>(ref Half gradient, ref Half target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            if (typeof(TWidth) == typeof(Width512))
            {
                HalfConversions.Store(HalfConversions.Load512(ref target, column) + HalfConversions.Load512(ref gradient, column), ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width256))
            {
                HalfConversions.Store(HalfConversions.Load256(ref target, column) + HalfConversions.Load256(ref gradient, column), ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width128))
            {
                HalfConversions.Store(HalfConversions.Load128(ref target, column) + HalfConversions.Load128(ref gradient, column), ref target, column);
            }
            else
            {
                Unsafe.Add(ref target, column) = (Half)((float)Unsafe.Add(ref target, column) + (float)Unsafe.Add(ref gradient, column));
            }
        }

        // The last columns one at a time: a vector overlapping the ones above would add them twice.
        for (nuint column = wholeColumns; column < (nuint)dimension; column++)
        {
            Unsafe.Add(ref target, column) = (Half)((float)Unsafe.Add(ref target, column) + (float)Unsafe.Add(ref gradient, column));
        }
    }

    /// <summary>
    /// float16 <c>target[c] = rd(target[c] + rd(gradient[c] · scale))</c> (c10::Half operators: the product
    /// rounded to half, then the sum), <paramref name="scale"/> a half widened: whole vectors of the width's
    /// float lanes, then the last columns one at a time with the scalar casts, which give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAddHalves<TWidth>(ref Half gradient, float scale, ref Half target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            if (typeof(TWidth) == typeof(Width512))
            {
                Vector512<float> product = HalfConversions.RoundToHalf(HalfConversions.Load512(ref gradient, column) * Vector512.Create(scale));
                HalfConversions.Store(HalfConversions.Load512(ref target, column) + product, ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width256))
            {
                Vector256<float> product = HalfConversions.RoundToHalf(HalfConversions.Load256(ref gradient, column) * Vector256.Create(scale));
                HalfConversions.Store(HalfConversions.Load256(ref target, column) + product, ref target, column);
            }
            else if (typeof(TWidth) == typeof(Width128))
            {
                Vector128<float> product = HalfConversions.RoundToHalf(HalfConversions.Load128(ref gradient, column) * Vector128.Create(scale));
                HalfConversions.Store(HalfConversions.Load128(ref target, column) + product, ref target, column);
            }
            else
            {
                Half product = (Half)((float)Unsafe.Add(ref gradient, column) * scale);
                Unsafe.Add(ref target, column) = (Half)((float)Unsafe.Add(ref target, column) + (float)product);
            }
        }

        // The last columns one at a time: a vector overlapping the ones above would add them twice.
        for (nuint column = wholeColumns; column < (nuint)dimension; column++)
        {
            Half product = (Half)((float)Unsafe.Add(ref gradient, column) * scale);
            Unsafe.Add(ref target, column) = (Half)((float)Unsafe.Add(ref target, column) + (float)product);
        }
    }
}
