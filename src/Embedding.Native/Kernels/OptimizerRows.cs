using System;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

// The kernel layer of the fused optimizer steps: the parallel split of a step's rows, and the row
// loops per table type (float32/float64 on whole vectors of the type; float16/bfloat16 widened to
// float vectors with torch's rounding points). The public API, its validation and the validated
// cores the C ABI calls are in EmbeddingPrimitives.Optimizers.cs.
public static partial class EmbeddingPrimitives
{
    /// <summary>
    /// Runs a step's rows on the calling thread, or split into contiguous ranges of the (distinct,
    /// ascending) rows list when the call is large enough: rows never repeat, so pieces touch disjoint
    /// rows of the weight and the state, and each row is updated by one thread exactly as on one
    /// thread. <paramref name="elementsPerColumn"/> is the elements a column update reads and writes
    /// (for the thread decision).
    /// </summary>
    private static void RunSteps<T>(ref StepWork<T> work, VectorWidth width, int threads, int elementsPerColumn)
        where T : unmanaged
    {
        // float16 and bfloat16 compute on float vectors: their widths are the float ones.
        work.Width = KernelDispatch.FitWidth(width, work.Dimension, typeof(T) == typeof(double) ? sizeof(double) : sizeof(float));
        threads = EmbeddingThreads.For((long)Unsafe.SizeOf<T>() * elementsPerColumn * work.Dimension * work.Count, work.Count, threads);
        WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, work.Count), threads);
    }

    private enum StepKind
    {
        Sgd,
        Adagrad,
        RowwiseAdagrad,
        SparseAdam,
    }

    /// <summary>
    /// A step's hyper-parameters in double, as the caller gave them or as torch computes them in Python;
    /// each row driver converts them to the table's type (<see cref="Fl{T}"/>) once per piece.
    /// SGD: -lr, weight decay; Adagrad: -clr, eps; row-wise Adagrad: lr, eps; SparseAdam: 1 - beta1,
    /// 1 - beta2, eps, -stepSize.
    /// </summary>
    private readonly record struct StepScalars(double First, double Second, double Third = 0, double Fourth = 0)
    {
        public static StepScalars Adam(double lr, double beta1, double beta2, double eps, long step)
        {
            // torch 1.13, in Python doubles: step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step).
            double biasCorrection1 = 1 - Math.Pow(beta1, step);
            double biasCorrection2 = 1 - Math.Pow(beta2, step);
            double stepSize = lr * Math.Sqrt(biasCorrection2) / biasCorrection1;
            return new(1 - beta1, 1 - beta2, eps, -stepSize);
        }
    }

    /// <summary>One piece of an optimizer step: a contiguous range of the rows list (the whole list on one thread).</summary>
    private unsafe struct StepWork<T> : IParallelWork
        where T : unmanaged
    {
        public StepKind Kind;
        public VectorWidth Width;
        public int Dimension;
        public T* Weight;
        public T* State;
        public T* SecondState;
        public long* Rows;
        public nint Count;
        public T* Values;
        public StepScalars Scalars;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Count, part + 1, parts);
            if (end <= start)
            {
                return;
            }

            switch (Width)
            {
                case VectorWidth.Vector512:
                    Steps<Elementwise512>(start, end - start);
                    break;
                case VectorWidth.Vector256:
                    Steps<Elementwise256>(start, end - start);
                    break;
                case VectorWidth.Vector128:
                    Steps<Elementwise128>(start, end - start);
                    break;
                default:
                    Steps<ElementwiseScalar>(start, end - start);
                    break;
            }
        }

        private readonly void Steps<TWidth>(nint start, nint count)
            where TWidth : IElementwiseWidth
        {
            if (typeof(T) == typeof(float) && TorchProducts.AreFused)
            {
                IeeeSteps<float, TWidth, FusedProducts>(start, count);
            }
            else if (typeof(T) == typeof(float))
            {
                IeeeSteps<float, TWidth, RoundedProducts>(start, count);
            }
            else if (typeof(T) == typeof(double) && TorchProducts.AreFused)
            {
                IeeeSteps<double, TWidth, FusedProducts>(start, count);
            }
            else if (typeof(T) == typeof(double))
            {
                IeeeSteps<double, TWidth, RoundedProducts>(start, count);
            }
            else if (typeof(T) == typeof(Half))
            {
                ReducedSteps<Half, Float16Arithmetic, TWidth>(start, count);
            }
            else
            {
                ReducedSteps<BFloat16, BFloat16Arithmetic, TWidth>(start, count);
            }
        }

        /// <summary>
        /// The float32 and float64 steps, torch's <c>add_(x, alpha)</c> fused or not as <typeparamref name="TProducts"/>;
        /// row-wise Adagrad follows FBGEMM's fused kernel whatever torch runs.
        /// </summary>
        private readonly void IeeeSteps<TFloat, TWidth, TProducts>(nint start, nint count)
            where TFloat : unmanaged, IFloatingPointIeee754<TFloat>
            where TWidth : IElementwiseWidth
            where TProducts : ITorchProducts
        {
            ref long rows = ref Rows[start];
            ref TFloat weight = ref Unsafe.As<T, TFloat>(ref *Weight);
            ref TFloat values = ref Unsafe.As<T, TFloat>(ref Values[start * Dimension]);
            StepScalars k = Scalars;
            switch (Kind)
            {
                case StepKind.Sgd:
                    SgdRows<TFloat, TWidth, TProducts>(ref weight, Dimension, ref rows, count, ref values, Fl<TFloat>(k.First), Fl<TFloat>(k.Second), k.Second != 0);
                    break;
                case StepKind.Adagrad:
                    AdagradRows<TFloat, TWidth, TProducts>(ref weight, ref Unsafe.As<T, TFloat>(ref *State), Dimension, ref rows, count, ref values, Fl<TFloat>(k.First), Fl<TFloat>(k.Second));
                    break;
                case StepKind.RowwiseAdagrad:
                    RowwiseAdagradRows<TFloat, TWidth>(ref weight, ref Unsafe.As<T, TFloat>(ref *State), Dimension, ref rows, count, ref values, Fl<TFloat>(k.First), Fl<TFloat>(k.Second));
                    break;
                default:
                    SparseAdamRows<TFloat, TWidth>(ref weight, ref Unsafe.As<T, TFloat>(ref *State), ref Unsafe.As<T, TFloat>(ref *SecondState), Dimension, ref rows, count, ref values,
                        Fl<TFloat>(k.First), Fl<TFloat>(k.Second), Fl<TFloat>(k.Third), Fl<TFloat>(k.Fourth));
                    break;
            }
        }

        private readonly void ReducedSteps<TReduced, TArithmetic, TWidth>(nint start, nint count)
            where TReduced : unmanaged
            where TArithmetic : IReducedArithmetic<TReduced>
            where TWidth : IElementwiseWidth
        {
            ref long rows = ref Rows[start];
            ref TReduced weight = ref Unsafe.As<T, TReduced>(ref *Weight);
            ref TReduced values = ref Unsafe.As<T, TReduced>(ref Values[start * Dimension]);
            StepScalars k = Scalars;
            switch (Kind)
            {
                case StepKind.Sgd:
                    ReducedSgdRows<TReduced, TArithmetic, TWidth>(ref weight, Dimension, ref rows, count, ref values, k);
                    break;
                case StepKind.Adagrad:
                    ReducedAdagradRows<TReduced, TArithmetic, TWidth>(ref weight, ref Unsafe.As<T, TReduced>(ref *State), Dimension, ref rows, count, ref values, k);
                    break;
                case StepKind.RowwiseAdagrad:
                    ReducedRowwiseAdagradRows<TReduced, TArithmetic, TWidth>(ref weight, ref Unsafe.As<T, TReduced>(ref *State), Dimension, ref rows, count, ref values, k);
                    break;
                default:
                    ReducedSparseAdamRows<TReduced, TArithmetic, TWidth>(ref weight, ref Unsafe.As<T, TReduced>(ref *State), ref Unsafe.As<T, TReduced>(ref *SecondState),
                        Dimension, ref rows, count, ref values, k);
                    break;
            }
        }
    }

    /// <summary>The first position whose row is outside <c>[0, numEmbeddings)</c> or not above the row before it; -1 if none.</summary>
    internal static nint FindFirstBadRow(ref readonly long rows, nint count, long numEmbeddings)
    {
        long previous = -1;
        for (nint j = 0; j < count; j++)
        {
            long row = Unsafe.Add(ref Unsafe.AsRef(in rows), j);
            if ((ulong)row >= (ulong)numEmbeddings || row <= previous)
            {
                return j;
            }

            previous = row;
        }

        return -1;
    }

    /// <summary>
    /// A double hyper-parameter as the table type sees it, c10's <c>Scalar.to&lt;T&gt;()</c>: float64 keeps
    /// it, float32 rounds once, float16 and bfloat16 round to float and then to the type.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Fl<T>(double value)
        where T : unmanaged =>
        typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(value)
        : typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>((float)value)
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)(float)value)
        : Unsafe.BitCast<BFloat16, T>((BFloat16)(float)value);

    // ---- float32 and float64 row drivers: per row, whole vectors, then the scalar member for the
    // last columns. Not an overlapping last vector: these updates read and write in place, so an
    // overlapped column would be updated twice.

    private static void SgdRows<T, TWidth, TProducts>(ref T weight, int dimension, ref long rows, nint count, ref T values, T negativeLr, T weightDecay, bool decay)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
        where TProducts : ITorchProducts
    {
        nuint lanes = (nuint)TWidth.LanesOf<T>(), end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            ref T w = ref Unsafe.Add(ref weight, (nint)Unsafe.Add(ref rows, j) * dimension);
            ref T g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;

            // torch skips the decay term when weight_decay == 0, so 0 * inf never turns a weight into NaN.
            if (decay)
            {
                for (; column + lanes <= end; column += lanes)
                {
                    TWidth.SgdWeightDecay<T, TProducts>(ref w, ref g, column, negativeLr, weightDecay);
                }

                for (; column < end; column++)
                {
                    ElementwiseScalar.SgdWeightDecay<T, TProducts>(ref w, ref g, column, negativeLr, weightDecay);
                }
            }
            else
            {
                for (; column + lanes <= end; column += lanes)
                {
                    TWidth.MultiplyAdd<T, TProducts>(ref w, ref g, column, negativeLr);
                }

                for (; column < end; column++)
                {
                    ElementwiseScalar.MultiplyAdd<T, TProducts>(ref w, ref g, column, negativeLr);
                }
            }
        }
    }

    private static void AdagradRows<T, TWidth, TProducts>(ref T weight, ref T stateSum, int dimension, ref long rows, nint count, ref T values, T negativeClr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
        where TProducts : ITorchProducts
    {
        nuint lanes = (nuint)TWidth.LanesOf<T>(), end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint start = (nint)Unsafe.Add(ref rows, j) * dimension;
            ref T w = ref Unsafe.Add(ref weight, start);
            ref T s = ref Unsafe.Add(ref stateSum, start);
            ref T g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.Adagrad<T, TProducts>(ref w, ref s, ref g, column, negativeClr, eps);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.Adagrad<T, TProducts>(ref w, ref s, ref g, column, negativeClr, eps);
            }
        }
    }

    private static void RowwiseAdagradRows<T, TWidth>(ref T weight, ref T momentum, int dimension, ref long rows, nint count, ref T values, T lr, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.LanesOf<T>(), end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint r = (nint)Unsafe.Add(ref rows, j);
            ref T w = ref Unsafe.Add(ref weight, r * dimension);
            ref T g = ref Unsafe.Add(ref values, j * dimension);

            // The row mean is a horizontal reduction: one sequential double loop at every width,
            // so the order (and the bits) never depend on the vector width.
            double sum = RowSumOfSquares(ref g, dimension);
            T h = Unsafe.Add(ref momentum, r) + Fl<T>(sum / dimension);
            Unsafe.Add(ref momentum, r) = h;
            T negativeStep = -(lr / (T.Sqrt(h) + eps));
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.MultiplyAdd<T, FusedProducts>(ref w, ref g, column, negativeStep);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.MultiplyAdd<T, FusedProducts>(ref w, ref g, column, negativeStep);
            }
        }
    }

    private static void SparseAdamRows<T, TWidth>(ref T weight, ref T expAvg, ref T expAvgSq, int dimension, ref long rows, nint count, ref T values,
        T oneMinusBeta1, T oneMinusBeta2, T eps, T negativeStepSize)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.LanesOf<T>(), end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint start = (nint)Unsafe.Add(ref rows, j) * dimension;
            ref T w = ref Unsafe.Add(ref weight, start);
            ref T m = ref Unsafe.Add(ref expAvg, start);
            ref T v = ref Unsafe.Add(ref expAvgSq, start);
            ref T g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.SparseAdam(ref w, ref m, ref v, ref g, column, oneMinusBeta1, oneMinusBeta2, eps, negativeStepSize);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.SparseAdam(ref w, ref m, ref v, ref g, column, oneMinusBeta1, oneMinusBeta2, eps, negativeStepSize);
            }
        }
    }

    /// <summary>
    /// Σ g[c]² over the row in double, columns in order: exact products for float (and float16 and
    /// bfloat16) values, double products for double values.
    /// </summary>
    private static double RowSumOfSquares<T>(ref T row, int dimension)
        where T : unmanaged
    {
        double sum = 0;
        for (int c = 0; c < dimension; c++)
        {
            T value = Unsafe.Add(ref row, c);
            double x = typeof(T) == typeof(double) ? Unsafe.BitCast<T, double>(value)
                : typeof(T) == typeof(float) ? Unsafe.BitCast<T, float>(value)
                : typeof(T) == typeof(Half) ? (double)(float)Unsafe.BitCast<T, Half>(value)
                : (float)Unsafe.BitCast<T, BFloat16>(value);
            sum += x * x;
        }

        return sum;
    }

    // ---- float16 and bfloat16 row drivers: per row, whole float vectors of the width (the 16-bit
    // elements widened), then the scalar member for the last columns, as for float and double. Each
    // operation is computed in float and rounded to the type where torch rounds (TArithmetic.R), the
    // way c10::Half and c10::BFloat16 arithmetic does; for +, -, ×, ÷ and sqrt of 16-bit values that
    // is the correctly rounded result, and every lane computes what the scalar member does.

    private static void ReducedSgdRows<T, TArithmetic, TWidth>(ref T weight, int dimension, ref long rows, nint count, ref T values, StepScalars k)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
        where TWidth : IElementwiseWidth
    {
        float negativeLr = TArithmetic.Widen(Fl<T>(k.First)), weightDecay = TArithmetic.Widen(Fl<T>(k.Second));
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            ref T w = ref Unsafe.Add(ref weight, (nint)Unsafe.Add(ref rows, j) * dimension);
            ref T g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;

            // torch skips the decay term when weight_decay == 0, so 0 * inf never turns a weight into NaN.
            if (k.Second != 0)
            {
                for (; column + lanes <= end; column += lanes)
                {
                    TWidth.ReducedSgdWeightDecay<T, TArithmetic>(ref w, ref g, column, negativeLr, weightDecay);
                }

                for (; column < end; column++)
                {
                    ElementwiseScalar.ReducedSgdWeightDecay<T, TArithmetic>(ref w, ref g, column, negativeLr, weightDecay);
                }
            }
            else
            {
                for (; column + lanes <= end; column += lanes)
                {
                    TWidth.ReducedMultiplyAdd<T, TArithmetic>(ref w, ref g, column, negativeLr);
                }

                for (; column < end; column++)
                {
                    ElementwiseScalar.ReducedMultiplyAdd<T, TArithmetic>(ref w, ref g, column, negativeLr);
                }
            }
        }
    }

    private static void ReducedAdagradRows<T, TArithmetic, TWidth>(ref T weight, ref T stateSum, int dimension, ref long rows, nint count, ref T values, StepScalars k)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
        where TWidth : IElementwiseWidth
    {
        float negativeClr = TArithmetic.Widen(Fl<T>(k.First)), eps = TArithmetic.Widen(Fl<T>(k.Second));
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint start = (nint)Unsafe.Add(ref rows, j) * dimension;
            ref T w = ref Unsafe.Add(ref weight, start);
            ref T s = ref Unsafe.Add(ref stateSum, start);
            ref T g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.ReducedAdagrad<T, TArithmetic>(ref w, ref s, ref g, column, negativeClr, eps);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.ReducedAdagrad<T, TArithmetic>(ref w, ref s, ref g, column, negativeClr, eps);
            }
        }
    }

    private static void ReducedRowwiseAdagradRows<T, TArithmetic, TWidth>(ref T weight, ref T momentum, int dimension, ref long rows, nint count, ref T values, StepScalars k)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
        where TWidth : IElementwiseWidth
    {
        float lr = TArithmetic.Widen(Fl<T>(k.First)), eps = TArithmetic.Widen(Fl<T>(k.Second));
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint r = (nint)Unsafe.Add(ref rows, j);
            ref T w = ref Unsafe.Add(ref weight, r * dimension);
            ref T g = ref Unsafe.Add(ref values, j * dimension);

            // The row mean is a horizontal reduction: one sequential double loop at every width.
            float mean = TArithmetic.Widen(Fl<T>(RowSumOfSquares(ref g, dimension) / dimension));
            float h = TArithmetic.R(TArithmetic.Widen(Unsafe.Add(ref momentum, r)) + mean);
            Unsafe.Add(ref momentum, r) = TArithmetic.Narrow(h);
            float negativeStep = -TArithmetic.R(lr / TArithmetic.R(TArithmetic.R(MathF.Sqrt(h)) + eps));
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.ReducedMultiplyAdd<T, TArithmetic>(ref w, ref g, column, negativeStep);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.ReducedMultiplyAdd<T, TArithmetic>(ref w, ref g, column, negativeStep);
            }
        }
    }

    private static void ReducedSparseAdamRows<T, TArithmetic, TWidth>(ref T weight, ref T expAvg, ref T expAvgSq, int dimension, ref long rows, nint count, ref T values, StepScalars k)
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
        where TWidth : IElementwiseWidth
    {
        float oneMinusBeta1 = TArithmetic.Widen(Fl<T>(k.First)), oneMinusBeta2 = TArithmetic.Widen(Fl<T>(k.Second));
        float eps = TArithmetic.Widen(Fl<T>(k.Third)), negativeStepSize = TArithmetic.Widen(Fl<T>(k.Fourth));
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint start = (nint)Unsafe.Add(ref rows, j) * dimension;
            ref T w = ref Unsafe.Add(ref weight, start);
            ref T m = ref Unsafe.Add(ref expAvg, start);
            ref T v = ref Unsafe.Add(ref expAvgSq, start);
            ref T g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.ReducedSparseAdam<T, TArithmetic>(ref w, ref m, ref v, ref g, column, oneMinusBeta1, oneMinusBeta2, eps, negativeStepSize);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.ReducedSparseAdam<T, TArithmetic>(ref w, ref m, ref v, ref g, column, oneMinusBeta1, oneMinusBeta2, eps, negativeStepSize);
            }
        }
    }
}
