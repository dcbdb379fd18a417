using System;
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
/// <c>offset</c>; no member reduces across lanes. Each lane performs the same IEEE operations in
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

    /// <summary><c>target[c] = fma(source[c], factor, target[c])</c>: torch's <c>add_(x, alpha=factor)</c> through BLAS axpy.</summary>
    static abstract void MultiplyAdd(ref float target, ref float source, nuint offset, float factor);

    /// <summary>SGD with weight decay: <c>d = fma(w, weightDecay, g); w = fma(d, negativeLr, w)</c>.</summary>
    static abstract void SgdWeightDecay(ref float weight, ref float gradient, nuint offset, float negativeLr, float weightDecay);

    /// <summary>
    /// Adagrad: <c>s = s + g*g; w = fma(g / (sqrt(s) + eps), negativeClr, w)</c>, every operation
    /// rounded except the final fused multiply-add.
    /// </summary>
    static abstract void Adagrad(ref float weight, ref float stateSum, ref float gradient, nuint offset, float negativeClr, float eps);

    /// <summary>
    /// SparseAdam: <c>mu = (g - m) * oneMinusBeta1; m = m + mu; vu = (g*g - v) * oneMinusBeta2;
    /// v = v + vu; w = w + (m / (sqrt(v) + eps)) * negativeStepSize</c>, every operation rounded.
    /// </summary>
    static abstract void SparseAdam(ref float weight, ref float expAvg, ref float expAvgSq, ref float gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize);
}

/// <summary>AVX-512: 16 floats.</summary>
internal readonly struct Elementwise512 : IElementwiseWidth
{
    public static int Lanes => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        (Vector512.LoadUnsafe(ref row, offset) * Vector512.Create(scale)).StoreUnsafe(ref row, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float target, ref float source, nuint offset, float factor) =>
        Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref source, offset), Vector512.Create(factor), Vector512.LoadUnsafe(ref target, offset))
            .StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay(ref float weight, ref float gradient, nuint offset, float negativeLr, float weightDecay)
    {
        Vector512<float> w = Vector512.LoadUnsafe(ref weight, offset);
        Vector512<float> d = Vector512.FusedMultiplyAdd(w, Vector512.Create(weightDecay), Vector512.LoadUnsafe(ref gradient, offset));
        Vector512.FusedMultiplyAdd(d, Vector512.Create(negativeLr), w).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad(ref float weight, ref float stateSum, ref float gradient, nuint offset, float negativeClr, float eps)
    {
        Vector512<float> g = Vector512.LoadUnsafe(ref gradient, offset);
        Vector512<float> s = Vector512.LoadUnsafe(ref stateSum, offset) + g * g;
        s.StoreUnsafe(ref stateSum, offset);
        Vector512<float> ratio = g / (Vector512.Sqrt(s) + Vector512.Create(eps));
        Vector512.FusedMultiplyAdd(ratio, Vector512.Create(negativeClr), Vector512.LoadUnsafe(ref weight, offset)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam(ref float weight, ref float expAvg, ref float expAvgSq, ref float gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
    {
        Vector512<float> g = Vector512.LoadUnsafe(ref gradient, offset);
        Vector512<float> m = Vector512.LoadUnsafe(ref expAvg, offset);
        Vector512<float> v = Vector512.LoadUnsafe(ref expAvgSq, offset);
        m += (g - m) * Vector512.Create(oneMinusBeta1);
        v += (g * g - v) * Vector512.Create(oneMinusBeta2);
        m.StoreUnsafe(ref expAvg, offset);
        v.StoreUnsafe(ref expAvgSq, offset);
        Vector512<float> ratio = m / (Vector512.Sqrt(v) + Vector512.Create(eps));
        (Vector512.LoadUnsafe(ref weight, offset) + ratio * Vector512.Create(negativeStepSize)).StoreUnsafe(ref weight, offset);
    }
}

/// <summary>AVX2: 8 floats.</summary>
internal readonly struct Elementwise256 : IElementwiseWidth
{
    public static int Lanes => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        (Vector256.LoadUnsafe(ref row, offset) * Vector256.Create(scale)).StoreUnsafe(ref row, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float target, ref float source, nuint offset, float factor) =>
        Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref source, offset), Vector256.Create(factor), Vector256.LoadUnsafe(ref target, offset))
            .StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay(ref float weight, ref float gradient, nuint offset, float negativeLr, float weightDecay)
    {
        Vector256<float> w = Vector256.LoadUnsafe(ref weight, offset);
        Vector256<float> d = Vector256.FusedMultiplyAdd(w, Vector256.Create(weightDecay), Vector256.LoadUnsafe(ref gradient, offset));
        Vector256.FusedMultiplyAdd(d, Vector256.Create(negativeLr), w).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad(ref float weight, ref float stateSum, ref float gradient, nuint offset, float negativeClr, float eps)
    {
        Vector256<float> g = Vector256.LoadUnsafe(ref gradient, offset);
        Vector256<float> s = Vector256.LoadUnsafe(ref stateSum, offset) + g * g;
        s.StoreUnsafe(ref stateSum, offset);
        Vector256<float> ratio = g / (Vector256.Sqrt(s) + Vector256.Create(eps));
        Vector256.FusedMultiplyAdd(ratio, Vector256.Create(negativeClr), Vector256.LoadUnsafe(ref weight, offset)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam(ref float weight, ref float expAvg, ref float expAvgSq, ref float gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
    {
        Vector256<float> g = Vector256.LoadUnsafe(ref gradient, offset);
        Vector256<float> m = Vector256.LoadUnsafe(ref expAvg, offset);
        Vector256<float> v = Vector256.LoadUnsafe(ref expAvgSq, offset);
        m += (g - m) * Vector256.Create(oneMinusBeta1);
        v += (g * g - v) * Vector256.Create(oneMinusBeta2);
        m.StoreUnsafe(ref expAvg, offset);
        v.StoreUnsafe(ref expAvgSq, offset);
        Vector256<float> ratio = m / (Vector256.Sqrt(v) + Vector256.Create(eps));
        (Vector256.LoadUnsafe(ref weight, offset) + ratio * Vector256.Create(negativeStepSize)).StoreUnsafe(ref weight, offset);
    }
}

/// <summary>SSE / NEON: 4 floats.</summary>
internal readonly struct Elementwise128 : IElementwiseWidth
{
    public static int Lanes => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        (Vector128.LoadUnsafe(ref row, offset) * Vector128.Create(scale)).StoreUnsafe(ref row, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float target, ref float source, nuint offset, float factor) =>
        Vector128.FusedMultiplyAdd(Vector128.LoadUnsafe(ref source, offset), Vector128.Create(factor), Vector128.LoadUnsafe(ref target, offset))
            .StoreUnsafe(ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay(ref float weight, ref float gradient, nuint offset, float negativeLr, float weightDecay)
    {
        Vector128<float> w = Vector128.LoadUnsafe(ref weight, offset);
        Vector128<float> d = Vector128.FusedMultiplyAdd(w, Vector128.Create(weightDecay), Vector128.LoadUnsafe(ref gradient, offset));
        Vector128.FusedMultiplyAdd(d, Vector128.Create(negativeLr), w).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad(ref float weight, ref float stateSum, ref float gradient, nuint offset, float negativeClr, float eps)
    {
        Vector128<float> g = Vector128.LoadUnsafe(ref gradient, offset);
        Vector128<float> s = Vector128.LoadUnsafe(ref stateSum, offset) + g * g;
        s.StoreUnsafe(ref stateSum, offset);
        Vector128<float> ratio = g / (Vector128.Sqrt(s) + Vector128.Create(eps));
        Vector128.FusedMultiplyAdd(ratio, Vector128.Create(negativeClr), Vector128.LoadUnsafe(ref weight, offset)).StoreUnsafe(ref weight, offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam(ref float weight, ref float expAvg, ref float expAvgSq, ref float gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
    {
        Vector128<float> g = Vector128.LoadUnsafe(ref gradient, offset);
        Vector128<float> m = Vector128.LoadUnsafe(ref expAvg, offset);
        Vector128<float> v = Vector128.LoadUnsafe(ref expAvgSq, offset);
        m += (g - m) * Vector128.Create(oneMinusBeta1);
        v += (g * g - v) * Vector128.Create(oneMinusBeta2);
        m.StoreUnsafe(ref expAvg, offset);
        v.StoreUnsafe(ref expAvgSq, offset);
        Vector128<float> ratio = m / (Vector128.Sqrt(v) + Vector128.Create(eps));
        (Vector128.LoadUnsafe(ref weight, offset) + ratio * Vector128.Create(negativeStepSize)).StoreUnsafe(ref weight, offset);
    }
}

/// <summary>No vectors: one float at a time. Also the tail of every wider width.</summary>
internal readonly struct ElementwiseScalar : IElementwiseWidth
{
    public static int Lanes => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale(ref float row, nuint offset, float scale) =>
        Unsafe.Add(ref row, offset) *= scale;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd(ref float target, ref float source, nuint offset, float factor) =>
        Unsafe.Add(ref target, offset) = MathF.FusedMultiplyAdd(Unsafe.Add(ref source, offset), factor, Unsafe.Add(ref target, offset));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SgdWeightDecay(ref float weight, ref float gradient, nuint offset, float negativeLr, float weightDecay)
    {
        float w = Unsafe.Add(ref weight, offset);
        float d = MathF.FusedMultiplyAdd(w, weightDecay, Unsafe.Add(ref gradient, offset));
        Unsafe.Add(ref weight, offset) = MathF.FusedMultiplyAdd(d, negativeLr, w);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Adagrad(ref float weight, ref float stateSum, ref float gradient, nuint offset, float negativeClr, float eps)
    {
        float g = Unsafe.Add(ref gradient, offset);
        float s = Unsafe.Add(ref stateSum, offset) + g * g;
        Unsafe.Add(ref stateSum, offset) = s;
        float ratio = g / (MathF.Sqrt(s) + eps);
        Unsafe.Add(ref weight, offset) = MathF.FusedMultiplyAdd(ratio, negativeClr, Unsafe.Add(ref weight, offset));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void SparseAdam(ref float weight, ref float expAvg, ref float expAvgSq, ref float gradient, nuint offset,
        float oneMinusBeta1, float oneMinusBeta2, float eps, float negativeStepSize)
    {
        float g = Unsafe.Add(ref gradient, offset);
        float m = Unsafe.Add(ref expAvg, offset);
        float v = Unsafe.Add(ref expAvgSq, offset);
        m += (g - m) * oneMinusBeta1;
        v += (g * g - v) * oneMinusBeta2;
        Unsafe.Add(ref expAvg, offset) = m;
        Unsafe.Add(ref expAvgSq, offset) = v;
        float ratio = m / (MathF.Sqrt(v) + eps);
        Unsafe.Add(ref weight, offset) += ratio * negativeStepSize;
    }
}
