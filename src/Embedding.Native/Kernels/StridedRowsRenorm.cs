using System;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// A table type's renorm rules when torch sees the rows with a column stride (a transposed table,
/// <c>weight.t()</c>): <c>row.norm(2)</c> of such a row is not a last-dimension reduction, so torch
/// 1.13 runs its scalar <c>NormTwoOps</c> (aten/src/ATen/native/cpu/ReduceOpsKernel.cpp) instead of
/// the vectorised kernel: one running sum in the table's accumulator, columns in order. float32:
/// <c>acc = fmaf(x, x, acc)</c> with torch's FMA kernels, <c>acc + rd(x·x)</c> with its default
/// ones; bfloat16: <c>acc = rd(acc + rd(x·x))</c> in bfloat16 arithmetic, as float16 always does.
/// Every other rule is <typeparamref name="TBase"/>'s (the other norms are column sums either way).
/// </summary>
/// <remarks>
/// Confirmed against torch with numpy replays: float32 0 differences over 244 strided rows (the
/// vectorised order differs on 85), bfloat16 0 over 180, D = 1 … 768.
/// </remarks>
internal readonly struct StridedRowsRenorm<TElement, TSum, TBase> : IRenormArithmetic<TElement, TSum>
    where TElement : unmanaged
    where TSum : unmanaged, IFloatingPointIeee754<TSum>
    where TBase : IRenormArithmetic<TElement, TSum>
{
    private static readonly bool FusedSquares =
        typeof(TElement) == typeof(float) && TorchProducts.AreFused;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum Widen(TElement x) => TBase.Widen(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TElement Narrow(TSum x) => TBase.Narrow(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum Add(TSum sum, TSum term) => TBase.Add(sum, term);

    /// <remarks>float32: fused or not as torch's kernels; the 16-bit types: the square and the sum each rounded to the type.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum AddSquare(TSum sum, TSum x) =>
        FusedSquares ? TSum.FusedMultiplyAdd(x, x, sum) : TBase.Widen(TBase.Narrow(sum + TBase.Widen(TBase.Narrow(x * x))));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double NormType(double p) => TBase.NormType(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum Exponent(double p) => TBase.Exponent(p);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum Power(TSum magnitude, TSum q) => TBase.Power(magnitude, q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum Root(TSum sum, TSum q) => TBase.Root(sum, q);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TSum SquareRoot(TSum sum) => TBase.SquareRoot(sum);

    public static SumOrder OneNormOrder => SumOrder.Columns;

    public static SumOrder TwoNormOrder => SumOrder.Columns;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Scale<TWidth>(ref TElement row, int dimension, double quotient)
        where TWidth : IElementwiseWidth =>
        TBase.Scale<TWidth>(ref row, dimension, quotient);
}
