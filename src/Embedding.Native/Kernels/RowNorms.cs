using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// The p-norm of one row, as renormalisation compares it with max_norm: one implementation per norm,
/// each a fold of a per-column step over the row in one of the <see cref="SumOrder"/>s. What differs
/// between table types (accumulator, rounding of each step, order of the 1- and 2-norm sums) comes
/// from <typeparamref name="TArithmetic"/>.
/// </summary>
/// <remarks>
/// Every order here is torch 1.13's for the table type and fixed: the same bits at every vector width
/// and on every ISA (the float32 2-norm follows the kernels torch itself runs on this CPU,
/// <see cref="TorchCpuCapabilities"/>, not our tier). The rescale (<see cref="RowScaling"/>) and the
/// float32 2-norm's lanes are vectorised; the other norms are one running sum.
/// </remarks>
/// <typeparam name="TElement">The table's element type.</typeparam>
/// <typeparam name="TSum">The type the norm accumulates in.</typeparam>
/// <typeparam name="TArithmetic">The table type's rules.</typeparam>
internal static class RowNorms<TElement, TSum, TArithmetic>
    where TElement : unmanaged
    where TSum : unmanaged, IFloatingPointIeee754<TSum>
    where TArithmetic : IRenormArithmetic<TElement, TSum>
{
    /// <summary>
    /// <c>‖row‖ₚ</c> widened to double, p being <paramref name="normType"/> as the type's norm receives it
    /// (<see cref="IRenormArithmetic{TElement, TSum}.NormType"/>): p = +inf: max |x|; p = -inf: min |x|;
    /// p = 0: the count of x != 0 (NaN counts); p = 1: Σ |x|; p = 2: sqrt(Σ x·x); any other p: (Σ |x|^p)^(1/p).
    /// </summary>
    public static double Of(ref TElement row, int dimension, double normType)
    {
        double p = TArithmetic.NormType(normType);
        TSum norm =
            double.IsPositiveInfinity(p) ? Largest(ref row, dimension)
            : double.IsNegativeInfinity(p) ? Smallest(ref row, dimension)
            : p == 0 ? NonZeroCount(ref row, dimension)
            : p == 1 ? OneNorm(ref row, dimension)
            : p == 2 ? TwoNorm(ref row, dimension)
            : PNorm(ref row, dimension, p);
        return double.CreateTruncating(norm);
    }

    /// <summary>p = +inf: the largest |x| (exact; NaN wins).</summary>
    public static TSum Largest(ref TElement row, int dimension) =>
        InColumns<Maximum>(ref row, dimension, TSum.Zero, TSum.Zero);

    /// <summary>p = -inf: the smallest |x| (exact; NaN wins).</summary>
    public static TSum Smallest(ref TElement row, int dimension) =>
        InColumns<Minimum>(ref row, dimension, TSum.PositiveInfinity, TSum.Zero);

    /// <summary>p = 0: the number of non-zero elements, counted in the type's running sum (a 16-bit sum stops growing once 1 is below half an ulp of it).</summary>
    public static TSum NonZeroCount(ref TElement row, int dimension) =>
        InColumns<NonZero>(ref row, dimension, TSum.Zero, TSum.Zero);

    /// <summary>p = 1: Σ |x| in the type's <see cref="IRenormArithmetic{TElement, TSum}.OneNormOrder"/>.</summary>
    public static TSum OneNorm(ref TElement row, int dimension) =>
        Sum<Magnitude>(TArithmetic.OneNormOrder, ref row, dimension);

    /// <summary>p = 2: sqrt(Σ x·x), the sum in the type's <see cref="IRenormArithmetic{TElement, TSum}.TwoNormOrder"/>.</summary>
    public static TSum TwoNorm(ref TElement row, int dimension) =>
        TArithmetic.SquareRoot(
            TArithmetic.TwoNormOrder == SumOrder.TorchFloatKernel && typeof(TElement) == typeof(float)
                ? TSum.CreateTruncating(TorchFloatSquareSum.Of(ref Unsafe.As<TElement, float>(ref row), dimension, TorchCpuCapabilities.Current))
                : Sum<Square>(TArithmetic.TwoNormOrder, ref row, dimension));

    /// <summary>Any other p, negative and fractional too: (Σ |x|^q)^(1/q), q = p as the type holds it, columns in order.</summary>
    public static TSum PNorm(ref TElement row, int dimension, double p)
    {
        TSum q = TArithmetic.Exponent(p);
        return TArithmetic.Root(InColumns<Power>(ref row, dimension, TSum.Zero, q), q);
    }

    /// <summary>Σ of <typeparamref name="TStep"/> from +0.0 in <paramref name="order"/> (a constant of the type's rules, so the switch folds away).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TSum Sum<TStep>(SumOrder order, ref TElement row, int dimension)
        where TStep : IColumnStep =>
        order switch
        {
            SumOrder.TorchFloatLanes => InTorchFloatLanes<TStep>(ref row, dimension),
            _ => InColumns<TStep>(ref row, dimension, TSum.Zero, TSum.Zero),
        };

    /// <summary><see cref="SumOrder.Columns"/>: one running value from <paramref name="start"/>, columns in order.</summary>
    private static TSum InColumns<TStep>(ref TElement row, int dimension, TSum start, TSum q)
        where TStep : IColumnStep
    {
        TSum sum = start;
        for (int c = 0; c < dimension; c++)
        {
            sum = TStep.Next(sum, TArithmetic.Widen(Unsafe.Add(ref row, c)), q);
        }

        return sum;
    }

    /// <summary>
    /// <see cref="SumOrder.TorchFloatLanes"/>: lane c mod 8 over the whole blocks of sixteen columns,
    /// the lanes added left to right, then the remaining columns in order.
    /// </summary>
    private static TSum InTorchFloatLanes<TStep>(ref TElement row, int dimension)
        where TStep : IColumnStep
    {
        const int Block = 16;
        TSum l0 = TSum.Zero, l1 = TSum.Zero, l2 = TSum.Zero, l3 = TSum.Zero, l4 = TSum.Zero, l5 = TSum.Zero, l6 = TSum.Zero, l7 = TSum.Zero;
        int whole = dimension - dimension % Block, c = 0;
        for (; c < whole; c += 8)
        {
            ref TElement x = ref Unsafe.Add(ref row, c);
            l0 = Next<TStep>(l0, ref x, 0);
            l1 = Next<TStep>(l1, ref x, 1);
            l2 = Next<TStep>(l2, ref x, 2);
            l3 = Next<TStep>(l3, ref x, 3);
            l4 = Next<TStep>(l4, ref x, 4);
            l5 = Next<TStep>(l5, ref x, 5);
            l6 = Next<TStep>(l6, ref x, 6);
            l7 = Next<TStep>(l7, ref x, 7);
        }

        TSum sum = l0 + l1 + l2 + l3 + l4 + l5 + l6 + l7;
        for (; c < dimension; c++)
        {
            sum = TStep.Next(sum, TArithmetic.Widen(Unsafe.Add(ref row, c)), TSum.Zero);
        }

        return sum;
    }

    /// <summary>One step with the element <paramref name="offset"/> columns after <paramref name="x"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static TSum Next<TStep>(TSum sum, ref TElement x, int offset)
        where TStep : IColumnStep =>
        TStep.Next(sum, TArithmetic.Widen(Unsafe.Add(ref x, offset)), TSum.Zero);

    /// <summary>What a norm does with one column: <c>sum = Next(sum, x, q)</c>, x widened exactly, q the general p-norm's exponent.</summary>
    private interface IColumnStep
    {
        static abstract TSum Next(TSum sum, TSum x, TSum q);
    }

    /// <summary>p = +inf: <c>max(sum, |x|)</c>.</summary>
    private readonly struct Maximum : IColumnStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TSum Next(TSum sum, TSum x, TSum q) => TSum.Max(sum, TSum.Abs(x));
    }

    /// <summary>p = -inf: <c>min(sum, |x|)</c>.</summary>
    private readonly struct Minimum : IColumnStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TSum Next(TSum sum, TSum x, TSum q) => TSum.Min(sum, TSum.Abs(x));
    }

    /// <summary>p = 0: <c>sum + (x != 0)</c>.</summary>
    private readonly struct NonZero : IColumnStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TSum Next(TSum sum, TSum x, TSum q) => TArithmetic.Add(sum, x != TSum.Zero ? TSum.One : TSum.Zero);
    }

    /// <summary>p = 1: <c>sum + |x|</c>.</summary>
    private readonly struct Magnitude : IColumnStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TSum Next(TSum sum, TSum x, TSum q) => TArithmetic.Add(sum, TSum.Abs(x));
    }

    /// <summary>p = 2: <c>sum + x·x</c>.</summary>
    private readonly struct Square : IColumnStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TSum Next(TSum sum, TSum x, TSum q) => TArithmetic.AddSquare(sum, x);
    }

    /// <summary>Any other p: <c>sum + |x|^q</c>.</summary>
    private readonly struct Power : IColumnStep
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TSum Next(TSum sum, TSum x, TSum q) => TArithmetic.Add(sum, TArithmetic.Power(TSum.Abs(x), q));
    }
}
