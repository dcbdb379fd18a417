using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The rules one table type follows in a renorm (docs/table-types.md, "Renorm"): the type its
/// norm accumulates in, how each step of a sum is rounded, in which order the 1- and 2-norm sums
/// visit the columns, and how the rescale rounds. The loops are written once, in
/// <see cref="RowNorms{TElement, TSum, TArithmetic}"/> and <see cref="RowScaling"/>; the structs
/// implementing this interface hold only the rules, one line each.
/// </summary>
/// <typeparam name="TElement">The table's element type.</typeparam>
/// <typeparam name="TSum">The type the norm is accumulated in: double for float64 tables, float for the others.</typeparam>
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
    /// torch's vectorised float32 2-norm, lanes and fused products as torch's <see cref="TorchCpuCapability"/>
    /// in this process compiled them (<see cref="TorchFloatSquareSum"/>). float32 rows only.
    /// </summary>
    TorchFloatKernel,

    /// <summary>
    /// torch's vectorised float reduction, AVX2 layout: eight lanes, column c into lane c mod 8, over
    /// the whole blocks of sixteen columns (one 256-bit vector of 16-bit elements, widened to two float
    /// vectors); the lanes added left to right; the last <c>D mod 16</c> columns continuing that sum in
    /// column order. A torch build running its AVX-512 kernels would use sixteen lanes.
    /// </summary>
    TorchFloatLanes,
}

/// <summary>
/// float32 tables, torch 1.13's: p as a float; one running float sum, columns in order, for p = 0,
/// 1 and the general p (its terms and root through the C library's powf, 1/p in float); the 2-norm
/// is torch's vectorised kernel (<see cref="SumOrder.TorchFloatKernel"/>) and a float square root.
/// The rescale in float.
/// </summary>
internal readonly struct Float32Renorm : IRenormArithmetic<float, float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(float x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Narrow(float x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float sum, float term) => sum + term;

    /// <remarks>Not used by the 2-norm, whose order is <see cref="SumOrder.TorchFloatKernel"/>.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float AddSquare(float sum, float x) => MathF.FusedMultiplyAdd(x, x, sum);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double NormType(double p) => (float)p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Exponent(double p) => (float)p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Power(float magnitude, float q) => MathF.Pow(magnitude, q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Root(float sum, float q) => MathF.Pow(sum, 1 / q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float SquareRoot(float sum) => MathF.Sqrt(sum);

    public static SumOrder OneNormOrder => SumOrder.Columns;

    public static SumOrder TwoNormOrder => SumOrder.TorchFloatKernel;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale<TWidth>(ref float row, int dimension, double quotient)
        where TWidth : IElementwiseWidth =>
        RowScaling.Multiply<float, TWidth>(ref row, dimension, (float)quotient);
}

/// <summary>
/// float64 tables, torch 1.13's: p as a float; one running double sum, columns in order; the 2-norm's
/// step <c>sum + x·x</c> rounded as <typeparamref name="TProducts"/>: <see cref="FusedProducts"/> when torch's kernels
/// were compiled with FMA (<see cref="TorchCpuCapabilities.Fuses"/>), <see cref="RoundedProducts"/> with its default kernels.
/// </summary>
/// <remarks>
/// The choice is a type, made once per call (<see cref="RenormRunner"/>), not a flag read in the step: the sum
/// is one dependency chain, and a static field read per column cost NativeAOT a class-constructor check and a
/// spill of the sum to the stack, 4.4 instead of about 1.3 ns per column.
/// </remarks>
internal readonly struct Float64Renorm<TProducts> : IRenormArithmetic<double, double>
    where TProducts : ITorchProducts
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Widen(double x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Narrow(double x) => x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double Add(double sum, double term) => sum + term;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double AddSquare(double sum, double x) => TProducts.MultiplyAdd(x, x, sum);

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
    public static float Widen(Half x) => HalfConversions.WidenHalf(Vector128.CreateScalarUnsafe((uint)BitConverter.HalfToUInt16Bits(x))).ToScalar();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Half Narrow(float x) => BitConverter.UInt16BitsToHalf((ushort)HalfConversions.NarrowToHalf(Vector128.CreateScalarUnsafe(x)).ToScalar());

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

    /// <remarks>The vector conversions on one lane: .NET's scalar casts to and from <see cref="Half"/> are
    /// software routines with branches, three per element of a norm (18 ns per element at D = 768 against 4 ns).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Round(float x) => HalfConversions.RoundToHalf(Vector128.CreateScalarUnsafe(x)).ToScalar();
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
