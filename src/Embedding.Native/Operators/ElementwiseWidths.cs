using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The in-place element-wise updates of renormalisation and the optimizer steps, one vector
/// width per type (the <see cref="IVectorWidth"/> pattern), so each row driver is written once and
/// specialised per width by the compiler.
/// </summary>
/// <remarks>
/// <para>
/// Every member reads and writes <see cref="Lanes"/> independent columns starting at
/// <c>offset</c> (the optimizer members, generic over float and double, <see cref="LanesOf{T}"/>
/// columns); no member reduces across lanes. Each lane performs the same IEEE operations in
/// the same order as the scalar member (multiply, add, divide and square root are correctly
/// rounded at every width, and <c>FusedMultiplyAdd</c> always rounds once, in hardware or in
/// software), so a column gets the same bits whichever width computes it.
/// </para>
/// <para>
/// The updates are read-modify-write, so a column must be computed exactly once: the row drivers
/// run whole vectors and finish the row with the scalar members instead of an overlapping last
/// vector (which would apply the update twice to the overlapped columns).
/// </para>
/// <para>
/// The four width bodies are textually identical except for the vector type; keep them that way.
/// </para>
/// </remarks>
internal interface IElementwiseWidth
{
    /// <summary>Floats per vector; 1 for the scalar width.</summary>
    static abstract int Lanes { get; }

    /// <summary><c>row[c] = row[c] * scale</c> (one rounding).</summary>
    static abstract void Scale(ref float row, nuint offset, float scale);

    // ---- Optimizer members: float32 and float64 (T is float or double) -------------------------

    /// <summary>Elements of <typeparamref name="T"/> per vector; 1 for the scalar width.</summary>
    static abstract int LanesOf<T>();

    /// <summary>
    /// <c>target[c] = source[c]·factor + target[c]</c>: torch's <c>add_(x, alpha=factor)</c>, the product fused or
    /// rounded as <typeparamref name="TProducts"/> (<c>fma</c> with torch's FMA kernels).
    /// </summary>
    static abstract void MultiplyAdd<T, TProducts>(ref T target, ref T source, nuint offset, T factor)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts;

    /// <summary>SGD with weight decay: <c>d = w·weightDecay + g; w = d·negativeLr + w</c>, each as <typeparamref name="TProducts"/>.</summary>
    static abstract void SgdWeightDecay<T, TProducts>(ref T weight, ref T gradient, nuint offset, T negativeLr, T weightDecay)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts;

    /// <summary>
    /// Adagrad: <c>s = s + g*g; w = (g / (sqrt(s) + eps))·negativeClr + w</c>, every operation rounded except the
    /// final multiply-add, which is as <typeparamref name="TProducts"/>.
    /// </summary>
    static abstract void Adagrad<T, TProducts>(ref T weight, ref T stateSum, ref T gradient, nuint offset, T negativeClr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts;

    /// <summary>
    /// SparseAdam: <c>mu = (g - m) * oneMinusBeta1; m = m + mu; vu = (g*g - v) * oneMinusBeta2;
    /// v = v + vu; w = w + (m / (sqrt(v) + eps)) * negativeStepSize</c>, every operation rounded.
    /// </summary>
    static abstract void SparseAdam<T>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        T oneMinusBeta1, T oneMinusBeta2, T eps, T negativeStepSize)
        where T : unmanaged, IFloatingPointIeee754<T>;

    // ---- Optimizer members: float16 and bfloat16 (T is Half or BFloat16) ------------------------
    // Lanes elements at offset (one float vector's worth), loaded and widened to float (TArithmetic),
    // each operation computed in float and rounded to the type with TArithmetic.R where torch rounds,
    // stored narrowed: c10::Half / c10::BFloat16 arithmetic. Nothing is fused: fma(a, b, c) of the
    // float members becomes rd(c + rd(a·b)).

    /// <summary><c>target[c] = rd(target[c] + rd(source[c]·factor))</c>.</summary>
    static abstract void ReducedMultiplyAdd<T, TArithmetic>(ref T target, ref T source, nuint offset, float factor)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>;

    /// <summary>SGD with weight decay: <c>d = rd(g + rd(w·weightDecay)); w = rd(w + rd(d·negativeLr))</c>.</summary>
    static abstract void ReducedSgdWeightDecay<T, TArithmetic>(ref T weight, ref T gradient, nuint offset, float negativeLr, float weightDecay)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>;

    /// <summary>Adagrad: <c>s = rd(s + rd(g·g)); w = rd(w + rd(rd(g / rd(rd(sqrt(s)) + eps))·negativeClr))</c>.</summary>
    static abstract void ReducedAdagrad<T, TArithmetic>(ref T weight, ref T stateSum, ref T gradient, nuint offset, float negativeClr, float eps)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>;

    /// <summary>
    /// SparseAdam: <c>m = rd(m + rd(rd(g - m)·oneMinusBeta1)); v = rd(v + rd(rd(rd(g·g) - v)·oneMinusBeta2));
    /// w = rd(w + rd(rd(m / rd(rd(sqrt(v)) + eps))·negativeStepSize))</c>.
    /// </summary>
    static abstract void ReducedSparseAdam<T, TArithmetic>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>;
}

/// <summary>AVX-512: 16 floats.</summary>
internal readonly struct Elementwise512 : IElementwiseWidth
{
    public static int Lanes => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        (Vector512.LoadUnsafe(ref row, offset) * Vector512.Create(scale)).StoreUnsafe(ref row, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => Vector512<T>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<T, TProducts>(ref T target, ref T source, nuint offset, T factor)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts =>
        Fma<T, TProducts>(Vector512.LoadUnsafe(ref source, offset), Vector512.Create(factor), Vector512.LoadUnsafe(ref target, offset)).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay<T, TProducts>(ref T weight, ref T gradient, nuint offset, T negativeLr, T weightDecay)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        Vector512<T> w = Vector512.LoadUnsafe(ref weight, offset);
        Vector512<T> d = Fma<T, TProducts>(w, Vector512.Create(weightDecay), Vector512.LoadUnsafe(ref gradient, offset));
        Fma<T, TProducts>(d, Vector512.Create(negativeLr), w).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad<T, TProducts>(ref T weight, ref T stateSum, ref T gradient, nuint offset, T negativeClr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        Vector512<T> g = Vector512.LoadUnsafe(ref gradient, offset);
        Vector512<T> s = Vector512.LoadUnsafe(ref stateSum, offset) + g * g;
        s.StoreUnsafe(ref stateSum, offset);
        Vector512<T> ratio = g / (Vector512.Sqrt(s) + Vector512.Create(eps));
        Fma<T, TProducts>(ratio, Vector512.Create(negativeClr), Vector512.LoadUnsafe(ref weight, offset)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam<T>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        T oneMinusBeta1, T oneMinusBeta2, T eps, T negativeStepSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector512<T> g = Vector512.LoadUnsafe(ref gradient, offset);
        Vector512<T> m = Vector512.LoadUnsafe(ref expAvg, offset);
        Vector512<T> v = Vector512.LoadUnsafe(ref expAvgSq, offset);
        m += (g - m) * Vector512.Create(oneMinusBeta1);
        v += (g * g - v) * Vector512.Create(oneMinusBeta2);
        m.StoreUnsafe(ref expAvg, offset);
        v.StoreUnsafe(ref expAvgSq, offset);
        Vector512<T> ratio = m / (Vector512.Sqrt(v) + Vector512.Create(eps));
        (Vector512.LoadUnsafe(ref weight, offset) + ratio * Vector512.Create(negativeStepSize)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedMultiplyAdd<T, TArithmetic>(ref T target, ref T source, nuint offset, float factor)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector512<float> product = TArithmetic.R(TArithmetic.Load512(ref source, offset) * Vector512.Create(factor));
        TArithmetic.Store(TArithmetic.Load512(ref target, offset) + product, ref target, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSgdWeightDecay<T, TArithmetic>(ref T weight, ref T gradient, nuint offset, float negativeLr, float weightDecay)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector512<float> w = TArithmetic.Load512(ref weight, offset);
        Vector512<float> d = TArithmetic.R(TArithmetic.Load512(ref gradient, offset) + TArithmetic.R(w * Vector512.Create(weightDecay)));
        TArithmetic.Store(w + TArithmetic.R(d * Vector512.Create(negativeLr)), ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedAdagrad<T, TArithmetic>(ref T weight, ref T stateSum, ref T gradient, nuint offset, float negativeClr, float eps)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector512<float> g = TArithmetic.Load512(ref gradient, offset);
        Vector512<float> s = TArithmetic.R(TArithmetic.Load512(ref stateSum, offset) + TArithmetic.R(g * g));
        TArithmetic.Store(s, ref stateSum, offset);
        Vector512<float> std = TArithmetic.R(TArithmetic.R(Vector512.Sqrt(s)) + Vector512.Create(eps));
        Vector512<float> ratio = TArithmetic.R(g / std);
        TArithmetic.Store(TArithmetic.Load512(ref weight, offset) + TArithmetic.R(ratio * Vector512.Create(negativeClr)), ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSparseAdam<T, TArithmetic>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector512<float> g = TArithmetic.Load512(ref gradient, offset);
        Vector512<float> m = TArithmetic.Load512(ref expAvg, offset);
        Vector512<float> v = TArithmetic.Load512(ref expAvgSq, offset);
        m = TArithmetic.R(m + TArithmetic.R(TArithmetic.R(g - m) * Vector512.Create(oneMinusBeta1)));
        v = TArithmetic.R(v + TArithmetic.R(TArithmetic.R(TArithmetic.R(g * g) - v) * Vector512.Create(oneMinusBeta2)));
        TArithmetic.Store(m, ref expAvg, offset);
        TArithmetic.Store(v, ref expAvgSq, offset);
        Vector512<float> denominator = TArithmetic.R(TArithmetic.R(Vector512.Sqrt(v)) + Vector512.Create(eps));
        Vector512<float> update = TArithmetic.R(TArithmetic.R(m / denominator) * Vector512.Create(negativeStepSize));
        TArithmetic.Store(TArithmetic.Load512(ref weight, offset) + update, ref weight, offset);
    }

    /// <summary><c>a·b + c</c> per lane as <typeparamref name="TProducts"/>: rounded twice, or once by the float or double hardware (or software) fused multiply-add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<T> Fma<T, TProducts>(Vector512<T> a, Vector512<T> b, Vector512<T> c)
        where TProducts : ITorchProducts =>
        !TProducts.AreFused ? a * b + c
        : typeof(T) == typeof(float)
            ? Vector512.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector512.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}

/// <summary>AVX2: 8 floats.</summary>
internal readonly struct Elementwise256 : IElementwiseWidth
{
    public static int Lanes => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        (Vector256.LoadUnsafe(ref row, offset) * Vector256.Create(scale)).StoreUnsafe(ref row, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => Vector256<T>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<T, TProducts>(ref T target, ref T source, nuint offset, T factor)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts =>
        Fma<T, TProducts>(Vector256.LoadUnsafe(ref source, offset), Vector256.Create(factor), Vector256.LoadUnsafe(ref target, offset)).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay<T, TProducts>(ref T weight, ref T gradient, nuint offset, T negativeLr, T weightDecay)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        Vector256<T> w = Vector256.LoadUnsafe(ref weight, offset);
        Vector256<T> d = Fma<T, TProducts>(w, Vector256.Create(weightDecay), Vector256.LoadUnsafe(ref gradient, offset));
        Fma<T, TProducts>(d, Vector256.Create(negativeLr), w).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad<T, TProducts>(ref T weight, ref T stateSum, ref T gradient, nuint offset, T negativeClr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        Vector256<T> g = Vector256.LoadUnsafe(ref gradient, offset);
        Vector256<T> s = Vector256.LoadUnsafe(ref stateSum, offset) + g * g;
        s.StoreUnsafe(ref stateSum, offset);
        Vector256<T> ratio = g / (Vector256.Sqrt(s) + Vector256.Create(eps));
        Fma<T, TProducts>(ratio, Vector256.Create(negativeClr), Vector256.LoadUnsafe(ref weight, offset)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam<T>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        T oneMinusBeta1, T oneMinusBeta2, T eps, T negativeStepSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector256<T> g = Vector256.LoadUnsafe(ref gradient, offset);
        Vector256<T> m = Vector256.LoadUnsafe(ref expAvg, offset);
        Vector256<T> v = Vector256.LoadUnsafe(ref expAvgSq, offset);
        m += (g - m) * Vector256.Create(oneMinusBeta1);
        v += (g * g - v) * Vector256.Create(oneMinusBeta2);
        m.StoreUnsafe(ref expAvg, offset);
        v.StoreUnsafe(ref expAvgSq, offset);
        Vector256<T> ratio = m / (Vector256.Sqrt(v) + Vector256.Create(eps));
        (Vector256.LoadUnsafe(ref weight, offset) + ratio * Vector256.Create(negativeStepSize)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedMultiplyAdd<T, TArithmetic>(ref T target, ref T source, nuint offset, float factor)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector256<float> product = TArithmetic.R(TArithmetic.Load256(ref source, offset) * Vector256.Create(factor));
        TArithmetic.Store(TArithmetic.Load256(ref target, offset) + product, ref target, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSgdWeightDecay<T, TArithmetic>(ref T weight, ref T gradient, nuint offset, float negativeLr, float weightDecay)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector256<float> w = TArithmetic.Load256(ref weight, offset);
        Vector256<float> d = TArithmetic.R(TArithmetic.Load256(ref gradient, offset) + TArithmetic.R(w * Vector256.Create(weightDecay)));
        TArithmetic.Store(w + TArithmetic.R(d * Vector256.Create(negativeLr)), ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedAdagrad<T, TArithmetic>(ref T weight, ref T stateSum, ref T gradient, nuint offset, float negativeClr, float eps)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector256<float> g = TArithmetic.Load256(ref gradient, offset);
        Vector256<float> s = TArithmetic.R(TArithmetic.Load256(ref stateSum, offset) + TArithmetic.R(g * g));
        TArithmetic.Store(s, ref stateSum, offset);
        Vector256<float> std = TArithmetic.R(TArithmetic.R(Vector256.Sqrt(s)) + Vector256.Create(eps));
        Vector256<float> ratio = TArithmetic.R(g / std);
        TArithmetic.Store(TArithmetic.Load256(ref weight, offset) + TArithmetic.R(ratio * Vector256.Create(negativeClr)), ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSparseAdam<T, TArithmetic>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector256<float> g = TArithmetic.Load256(ref gradient, offset);
        Vector256<float> m = TArithmetic.Load256(ref expAvg, offset);
        Vector256<float> v = TArithmetic.Load256(ref expAvgSq, offset);
        m = TArithmetic.R(m + TArithmetic.R(TArithmetic.R(g - m) * Vector256.Create(oneMinusBeta1)));
        v = TArithmetic.R(v + TArithmetic.R(TArithmetic.R(TArithmetic.R(g * g) - v) * Vector256.Create(oneMinusBeta2)));
        TArithmetic.Store(m, ref expAvg, offset);
        TArithmetic.Store(v, ref expAvgSq, offset);
        Vector256<float> denominator = TArithmetic.R(TArithmetic.R(Vector256.Sqrt(v)) + Vector256.Create(eps));
        Vector256<float> update = TArithmetic.R(TArithmetic.R(m / denominator) * Vector256.Create(negativeStepSize));
        TArithmetic.Store(TArithmetic.Load256(ref weight, offset) + update, ref weight, offset);
    }

    /// <summary><c>a·b + c</c> per lane as <typeparamref name="TProducts"/>: rounded twice, or once by the float or double hardware (or software) fused multiply-add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<T> Fma<T, TProducts>(Vector256<T> a, Vector256<T> b, Vector256<T> c)
        where TProducts : ITorchProducts =>
        !TProducts.AreFused ? a * b + c
        : typeof(T) == typeof(float)
            ? Vector256.FusedMultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector256.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}

/// <summary>SSE / NEON: 4 floats.</summary>
internal readonly struct Elementwise128 : IElementwiseWidth
{
    public static int Lanes => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        (Vector128.LoadUnsafe(ref row, offset) * Vector128.Create(scale)).StoreUnsafe(ref row, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => Vector128<T>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<T, TProducts>(ref T target, ref T source, nuint offset, T factor)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts =>
        Fma<T, TProducts>(Vector128.LoadUnsafe(ref source, offset), Vector128.Create(factor), Vector128.LoadUnsafe(ref target, offset)).StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay<T, TProducts>(ref T weight, ref T gradient, nuint offset, T negativeLr, T weightDecay)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        Vector128<T> w = Vector128.LoadUnsafe(ref weight, offset);
        Vector128<T> d = Fma<T, TProducts>(w, Vector128.Create(weightDecay), Vector128.LoadUnsafe(ref gradient, offset));
        Fma<T, TProducts>(d, Vector128.Create(negativeLr), w).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad<T, TProducts>(ref T weight, ref T stateSum, ref T gradient, nuint offset, T negativeClr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        Vector128<T> g = Vector128.LoadUnsafe(ref gradient, offset);
        Vector128<T> s = Vector128.LoadUnsafe(ref stateSum, offset) + g * g;
        s.StoreUnsafe(ref stateSum, offset);
        Vector128<T> ratio = g / (Vector128.Sqrt(s) + Vector128.Create(eps));
        Fma<T, TProducts>(ratio, Vector128.Create(negativeClr), Vector128.LoadUnsafe(ref weight, offset)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam<T>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        T oneMinusBeta1, T oneMinusBeta2, T eps, T negativeStepSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        Vector128<T> g = Vector128.LoadUnsafe(ref gradient, offset);
        Vector128<T> m = Vector128.LoadUnsafe(ref expAvg, offset);
        Vector128<T> v = Vector128.LoadUnsafe(ref expAvgSq, offset);
        m += (g - m) * Vector128.Create(oneMinusBeta1);
        v += (g * g - v) * Vector128.Create(oneMinusBeta2);
        m.StoreUnsafe(ref expAvg, offset);
        v.StoreUnsafe(ref expAvgSq, offset);
        Vector128<T> ratio = m / (Vector128.Sqrt(v) + Vector128.Create(eps));
        (Vector128.LoadUnsafe(ref weight, offset) + ratio * Vector128.Create(negativeStepSize)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedMultiplyAdd<T, TArithmetic>(ref T target, ref T source, nuint offset, float factor)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector128<float> product = TArithmetic.R(TArithmetic.Load128(ref source, offset) * Vector128.Create(factor));
        TArithmetic.Store(TArithmetic.Load128(ref target, offset) + product, ref target, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSgdWeightDecay<T, TArithmetic>(ref T weight, ref T gradient, nuint offset, float negativeLr, float weightDecay)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector128<float> w = TArithmetic.Load128(ref weight, offset);
        Vector128<float> d = TArithmetic.R(TArithmetic.Load128(ref gradient, offset) + TArithmetic.R(w * Vector128.Create(weightDecay)));
        TArithmetic.Store(w + TArithmetic.R(d * Vector128.Create(negativeLr)), ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedAdagrad<T, TArithmetic>(ref T weight, ref T stateSum, ref T gradient, nuint offset, float negativeClr, float eps)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector128<float> g = TArithmetic.Load128(ref gradient, offset);
        Vector128<float> s = TArithmetic.R(TArithmetic.Load128(ref stateSum, offset) + TArithmetic.R(g * g));
        TArithmetic.Store(s, ref stateSum, offset);
        Vector128<float> std = TArithmetic.R(TArithmetic.R(Vector128.Sqrt(s)) + Vector128.Create(eps));
        Vector128<float> ratio = TArithmetic.R(g / std);
        TArithmetic.Store(TArithmetic.Load128(ref weight, offset) + TArithmetic.R(ratio * Vector128.Create(negativeClr)), ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSparseAdam<T, TArithmetic>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        Vector128<float> g = TArithmetic.Load128(ref gradient, offset);
        Vector128<float> m = TArithmetic.Load128(ref expAvg, offset);
        Vector128<float> v = TArithmetic.Load128(ref expAvgSq, offset);
        m = TArithmetic.R(m + TArithmetic.R(TArithmetic.R(g - m) * Vector128.Create(oneMinusBeta1)));
        v = TArithmetic.R(v + TArithmetic.R(TArithmetic.R(TArithmetic.R(g * g) - v) * Vector128.Create(oneMinusBeta2)));
        TArithmetic.Store(m, ref expAvg, offset);
        TArithmetic.Store(v, ref expAvgSq, offset);
        Vector128<float> denominator = TArithmetic.R(TArithmetic.R(Vector128.Sqrt(v)) + Vector128.Create(eps));
        Vector128<float> update = TArithmetic.R(TArithmetic.R(m / denominator) * Vector128.Create(negativeStepSize));
        TArithmetic.Store(TArithmetic.Load128(ref weight, offset) + update, ref weight, offset);
    }

    /// <summary><c>a·b + c</c> per lane as <typeparamref name="TProducts"/>: rounded twice, or once by the float fused multiply-add
    /// (emulated exactly without the instruction, see <see cref="ExactFusedMultiplyAdd"/>) or the double one (hardware or software).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<T> Fma<T, TProducts>(Vector128<T> a, Vector128<T> b, Vector128<T> c)
        where TProducts : ITorchProducts =>
        !TProducts.AreFused ? a * b + c
        : typeof(T) == typeof(float)
            ? ExactFusedMultiplyAdd.MultiplyAdd(a.AsSingle(), b.AsSingle(), c.AsSingle()).As<float, T>()
            : Vector128.FusedMultiplyAdd(a.AsDouble(), b.AsDouble(), c.AsDouble()).As<double, T>();
}

/// <summary>No vectors: one float at a time. Also the tail of every wider width.</summary>
internal readonly struct ElementwiseScalar : IElementwiseWidth
{
    public static int Lanes => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        Unsafe.Add(ref row, offset) *= scale;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int LanesOf<T>() => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<T, TProducts>(ref T target, ref T source, nuint offset, T factor)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts =>
        Unsafe.Add(ref target, offset) = Fma<T, TProducts>(Unsafe.Add(ref source, offset), factor, Unsafe.Add(ref target, offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay<T, TProducts>(ref T weight, ref T gradient, nuint offset, T negativeLr, T weightDecay)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        T w = Unsafe.Add(ref weight, offset);
        T d = Fma<T, TProducts>(w, weightDecay, Unsafe.Add(ref gradient, offset));
        Unsafe.Add(ref weight, offset) = Fma<T, TProducts>(d, negativeLr, w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad<T, TProducts>(ref T weight, ref T stateSum, ref T gradient, nuint offset, T negativeClr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TProducts : ITorchProducts
    {
        T g = Unsafe.Add(ref gradient, offset);
        T s = Unsafe.Add(ref stateSum, offset) + g * g;
        Unsafe.Add(ref stateSum, offset) = s;
        T ratio = g / (T.Sqrt(s) + eps);
        Unsafe.Add(ref weight, offset) = Fma<T, TProducts>(ratio, negativeClr, Unsafe.Add(ref weight, offset));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam<T>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        T oneMinusBeta1, T oneMinusBeta2, T eps, T negativeStepSize)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T g = Unsafe.Add(ref gradient, offset);
        T m = Unsafe.Add(ref expAvg, offset);
        T v = Unsafe.Add(ref expAvgSq, offset);
        m += (g - m) * oneMinusBeta1;
        v += (g * g - v) * oneMinusBeta2;
        Unsafe.Add(ref expAvg, offset) = m;
        Unsafe.Add(ref expAvgSq, offset) = v;
        T ratio = m / (T.Sqrt(v) + eps);
        Unsafe.Add(ref weight, offset) += ratio * negativeStepSize;
    }
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedMultiplyAdd<T, TArithmetic>(ref T target, ref T source, nuint offset, float factor)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        float product = TArithmetic.R(TArithmetic.Widen(Unsafe.Add(ref source, offset)) * factor);
        Unsafe.Add(ref target, offset) = TArithmetic.Narrow(TArithmetic.Widen(Unsafe.Add(ref target, offset)) + product);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSgdWeightDecay<T, TArithmetic>(ref T weight, ref T gradient, nuint offset, float negativeLr, float weightDecay)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        float w = TArithmetic.Widen(Unsafe.Add(ref weight, offset));
        float d = TArithmetic.R(TArithmetic.Widen(Unsafe.Add(ref gradient, offset)) + TArithmetic.R(w * weightDecay));
        Unsafe.Add(ref weight, offset) = TArithmetic.Narrow(w + TArithmetic.R(d * negativeLr));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedAdagrad<T, TArithmetic>(ref T weight, ref T stateSum, ref T gradient, nuint offset, float negativeClr, float eps)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        float g = TArithmetic.Widen(Unsafe.Add(ref gradient, offset));
        float s = TArithmetic.R(TArithmetic.Widen(Unsafe.Add(ref stateSum, offset)) + TArithmetic.R(g * g));
        Unsafe.Add(ref stateSum, offset) = TArithmetic.Narrow(s);
        float std = TArithmetic.R(TArithmetic.R(MathF.Sqrt(s)) + eps);
        float ratio = TArithmetic.R(g / std);
        Unsafe.Add(ref weight, offset) = TArithmetic.Narrow(TArithmetic.Widen(Unsafe.Add(ref weight, offset)) + TArithmetic.R(ratio * negativeClr));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void ReducedSparseAdam<T, TArithmetic>(ref T weight, ref T expAvg, ref T expAvgSq, ref T gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        float g = TArithmetic.Widen(Unsafe.Add(ref gradient, offset));
        float m = TArithmetic.Widen(Unsafe.Add(ref expAvg, offset));
        float v = TArithmetic.Widen(Unsafe.Add(ref expAvgSq, offset));
        m = TArithmetic.R(m + TArithmetic.R(TArithmetic.R(g - m) * oneMinusBeta1));
        v = TArithmetic.R(v + TArithmetic.R(TArithmetic.R(TArithmetic.R(g * g) - v) * oneMinusBeta2));
        Unsafe.Add(ref expAvg, offset) = TArithmetic.Narrow(m);
        Unsafe.Add(ref expAvgSq, offset) = TArithmetic.Narrow(v);
        float denominator = TArithmetic.R(TArithmetic.R(MathF.Sqrt(v)) + eps);
        float update = TArithmetic.R(TArithmetic.R(m / denominator) * negativeStepSize);
        Unsafe.Add(ref weight, offset) = TArithmetic.Narrow(TArithmetic.Widen(Unsafe.Add(ref weight, offset)) + update);
    }

    /// <summary><c>a·b + c</c> as <typeparamref name="TProducts"/>: rounded twice, or once (<c>fma</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Fma<T, TProducts>(T a, T b, T c)
        where T : IFloatingPointIeee754<T>
        where TProducts : ITorchProducts =>
        TProducts.AreFused ? T.FusedMultiplyAdd(a, b, c) : a * b + c;
}
