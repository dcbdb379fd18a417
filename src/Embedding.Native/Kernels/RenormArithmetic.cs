using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// The rules one table type follows in a renorm (docs/table-types.md, "Renorm"): the type its
/// norm accumulates in, how each step of a sum is rounded, in which order the 1- and 2-norm sums
/// visit the columns, and how the rescale rounds. The loops are written once, in
/// <see cref="RowNorms{TElement, TSum, TArithmetic}"/> and <see cref="RowScaling"/>; the structs
/// implementing this interface hold only the rules, one line each.
/// </summary>
/// <typeparam name="TElement">The table's element type.</typeparam>
/// <typeparam name="TSum">The type the norm is accumulated in: double for float32 and float64 tables, float for the 16-bit ones.</typeparam>
internal interface IRenormArithmetic<TElement, TSum>
    where TElement : unmanaged
    where TSum : unmanaged, IFloatingPointIeee754<TSum>
{
    /// <summary>The element as a <typeparamref name="TSum"/> (exact).</summary>
    static abstract TSum Widen(TElement x);

    /// <summary>A <typeparamref name="TSum"/> rounded to the element type.</summary>
    static abstract TElement Narrow(TSum x);

    /// <summary><c>sum + term</c>, rounded as the type's running sum is: the step of the 0-, 1- and general p-norm.</summary>
    static abstract TSum Add(TSum sum, TSum term);

    /// <summary><c>sum + x·x</c>, rounded as the type's 2-norm is: the 2-norm's step.</summary>
    static abstract TSum AddSquare(TSum sum, TSum x);

    /// <summary>
    /// The norm_type as the type's norm receives it, which also decides which norm runs: torch 1.13
    /// hands its norm kernels a float, so there p = 2.0000001 is the 2-norm and p = 1e-50 the count.
    /// </summary>
    static abstract double NormType(double p);

    /// <summary>The p of a general p-norm as the type holds it, from <see cref="NormType"/>'s value.</summary>
    static abstract TSum Exponent(double p);

    /// <summary>The general p-norm's term for <c>magnitude = |x|</c>: <c>|x|^q</c> (the C library's pow or powf).</summary>
    static abstract TSum Power(TSum magnitude, TSum q);

    /// <summary>The general p-norm from its sum: <c>sum^(1/q)</c>.</summary>
    static abstract TSum Root(TSum sum, TSum q);

    /// <summary>The 2-norm from its sum: <c>sqrt(sum)</c>.</summary>
    static abstract TSum SquareRoot(TSum sum);

    /// <summary>The order in which the 1-norm's sum visits the columns.</summary>
    static abstract SumOrder OneNormOrder { get; }

    /// <summary>The order in which the 2-norm's sum visits the columns.</summary>
    static abstract SumOrder TwoNormOrder { get; }

    /// <summary>
    /// <c>row[c] = rd(row[c] · rd(quotient))</c>: the rescale of a row whose norm exceeded max_norm,
    /// <paramref name="quotient"/> being <c>maxNorm / (norm + 1e-7)</c> in double.
    /// </summary>
    static abstract void Scale<TWidth>(ref TElement row, int dimension, double quotient)
        where TWidth : IElementwiseWidth;
}

/// <summary>The order in which a norm's sum visits the columns of a row.</summary>
internal enum SumOrder
{
    /// <summary>One running sum, columns in order.</summary>
    Columns,

    /// <summary>
    /// Ours, not torch's: column c goes to partial sum c mod 8 (each in column order), and the eight
    /// are combined as <c>((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))</c>. Eight independent add
    /// chains instead of one: a single chain is bound by the add latency (about four cycles a column;
    /// renorm at D = 768 ran no faster than torch's).
    /// </summary>
    EightPartialSums,

    /// <summary>
    /// torch's vectorised float reduction, AVX2 layout: eight lanes, column c into lane c mod 8, over
    /// the whole blocks of sixteen columns (one 256-bit vector of 16-bit elements, widened to two float
    /// vectors); the lanes added left to right; the last <c>D mod 16</c> columns continuing that sum in
    /// column order. A torch build running its AVX-512 kernels would use sixteen lanes.
    /// </summary>
    TorchFloatLanes,
}

/// <summary>
/// float32 tables, ours (torch 1.13 computes the norm in float32, see
/// <see cref="EmbeddingPrimitives.EmbeddingRenorm(Span{float}, int, ReadOnlySpan{int}, double, double)"/>):
/// the norm in double, the 1- and 2-norm in eight partial sums; the rescale in float.
/// </summary>
internal readonly struct Float32Renorm : IRenormArithmetic<float, double>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Widen(float x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Narrow(double x) => (float)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Add(double sum, double term) => sum + term;

    /// <remarks>The product of two floats is exact in double, so this is <c>fma(x, x, sum)</c> without needing FMA hardware.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double AddSquare(double sum, double x) => sum + x * x;

    /// <remarks>Ours: the double as it is (torch 1.13's float32 norm takes a float).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double NormType(double p) => p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Exponent(double p) => p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Power(double magnitude, double q) => Math.Pow(magnitude, q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Root(double sum, double q) => Math.Pow(sum, 1.0 / q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double SquareRoot(double sum) => Math.Sqrt(sum);

    public static SumOrder OneNormOrder => SumOrder.EightPartialSums;

    public static SumOrder TwoNormOrder => SumOrder.EightPartialSums;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale<TWidth>(ref float row, int dimension, double quotient)
        where TWidth : IElementwiseWidth =>
        RowScaling.Multiply<float, TWidth>(ref row, dimension, (float)quotient);
}

/// <summary>
/// float64 tables, torch 1.13's: p as a float; one running double sum, columns in order; the 2-norm
/// through fused multiply-adds.
/// </summary>
internal readonly struct Float64Renorm : IRenormArithmetic<double, double>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Widen(double x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Narrow(double x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Add(double sum, double term) => sum + term;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double AddSquare(double sum, double x) => Math.FusedMultiplyAdd(x, x, sum);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double NormType(double p) => (float)p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Exponent(double p) => p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Power(double magnitude, double q) => Math.Pow(magnitude, q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Root(double sum, double q) => Math.Pow(sum, 1.0 / q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double SquareRoot(double sum) => Math.Sqrt(sum);

    public static SumOrder OneNormOrder => SumOrder.Columns;

    public static SumOrder TwoNormOrder => SumOrder.Columns;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale<TWidth>(ref double row, int dimension, double quotient)
        where TWidth : IElementwiseWidth =>
        RowScaling.Multiply<double, TWidth>(ref row, dimension, quotient);
}

/// <summary>
/// float16 tables, torch 1.13's (c10::Half arithmetic): the running sum is a half, each step
/// computed in float and rounded back; the 2-norm's squares are rounded before they are added;
/// p (as a float) and 1/p are converted to half.
/// </summary>
internal readonly struct Float16Renorm : IRenormArithmetic<Half, float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(Half x) => (float)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Half Narrow(float x) => (Half)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float sum, float term) => Round(sum + term);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float AddSquare(float sum, float x) => Round(sum + Round(x * x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double NormType(double p) => (float)p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exponent(double p) => Round((float)p);

    /// <remarks>Not rounded to half before it is added (bfloat16's is).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Power(float magnitude, float q) => MathF.Pow(magnitude, q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Root(float sum, float q) => Round(MathF.Pow(sum, Round(1 / q)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SquareRoot(float sum) => Round(MathF.Sqrt(sum));

    public static SumOrder OneNormOrder => SumOrder.Columns;

    public static SumOrder TwoNormOrder => SumOrder.Columns;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale<TWidth>(ref Half row, int dimension, double quotient)
        where TWidth : IElementwiseWidth =>
        RowScaling.MultiplyRounded<Half, Float16Renorm>(ref row, dimension, quotient);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Round(float x) => (float)(Half)x;
}

/// <summary>
/// bfloat16 tables, torch 1.13's (c10::BFloat16 arithmetic): as float16, except that a general
/// p-norm's term is rounded to bfloat16 before it is added, and that the 2-norm is torch's
/// vectorised float kernel: fused multiply-adds in float lanes (<see cref="SumOrder.TorchFloatLanes"/>),
/// rounded once, after the square root.
/// </summary>
internal readonly struct BFloat16Renorm : IRenormArithmetic<BFloat16, float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(BFloat16 x) => (float)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BFloat16 Narrow(float x) => (BFloat16)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float sum, float term) => Round(sum + term);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float AddSquare(float sum, float x) => MathF.FusedMultiplyAdd(x, x, sum);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double NormType(double p) => (float)p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exponent(double p) => Round((float)p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Power(float magnitude, float q) => Round(MathF.Pow(magnitude, q));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Root(float sum, float q) => Round(MathF.Pow(sum, Round(1 / q)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SquareRoot(float sum) => Round(MathF.Sqrt(sum));

    public static SumOrder OneNormOrder => SumOrder.Columns;

    public static SumOrder TwoNormOrder => SumOrder.TorchFloatLanes;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale<TWidth>(ref BFloat16 row, int dimension, double quotient)
        where TWidth : IElementwiseWidth =>
        RowScaling.MultiplyRounded<BFloat16, BFloat16Renorm>(ref row, dimension, quotient);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Round(float x) => (float)(BFloat16)x;
}
