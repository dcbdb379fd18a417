using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for the fused sparse optimizer steps in <see cref="EmbeddingPrimitives"/>:
/// the pseudocode of their XML docs as plain loops, with no vectors and no pointers. Every
/// operation is written out in the order the kernels use, so results match bit for bit.
/// Each returns -1, or the position of the first bad row (out of range or not strictly
/// ascending) with nothing written.
/// </summary>
/// <remarks>
/// T is the table's element type: float and double compute in their own type (generic math,
/// <c>fma</c> where the kernels fuse); Half and BFloat16 compute each operation in float and round it
/// to the type with <see cref="Rd{T}"/>, as c10's reduced-precision arithmetic does.
/// </remarks>
internal static class OptimizerReference
{
    public static int Sgd<T>(Span<T> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values, double lr, double weightDecay)
        where T : unmanaged
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        if (typeof(T) == typeof(float))
        {
            IeeeSgd(Cast<T, float>(weight), embeddingDim, rows, Cast<T, float>(values), lr, weightDecay);
        }
        else if (typeof(T) == typeof(double))
        {
            IeeeSgd(Cast<T, double>(weight), embeddingDim, rows, Cast<T, double>(values), lr, weightDecay);
        }
        else
        {
            float negativeLr = Fl<T>(-lr), decay = Fl<T>(weightDecay);
            for (int j = 0; j < rows.Length; j++)
            {
                Span<T> w = weight.Slice((int)rows[j] * embeddingDim, embeddingDim);
                ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
                for (int c = 0; c < embeddingDim; c++)
                {
                    float d = weightDecay != 0 ? Rd<T>(Wide(g[c]) + Rd<T>(Wide(w[c]) * decay)) : Wide(g[c]);
                    w[c] = Narrow<T>(Wide(w[c]) + Rd<T>(d * negativeLr));
                }
            }
        }

        return -1;
    }

    public static int Adagrad<T>(Span<T> weight, Span<T> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double lr, double lrDecay, double eps, long step)
        where T : unmanaged
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        double clr = lr / (1 + (step - 1) * lrDecay);
        if (typeof(T) == typeof(float))
        {
            IeeeAdagrad(Cast<T, float>(weight), Cast<T, float>(stateSum), embeddingDim, rows, Cast<T, float>(values), clr, eps);
        }
        else if (typeof(T) == typeof(double))
        {
            IeeeAdagrad(Cast<T, double>(weight), Cast<T, double>(stateSum), embeddingDim, rows, Cast<T, double>(values), clr, eps);
        }
        else
        {
            float negativeClr = Fl<T>(-clr), epsilon = Fl<T>(eps);
            for (int j = 0; j < rows.Length; j++)
            {
                Span<T> w = weight.Slice((int)rows[j] * embeddingDim, embeddingDim);
                Span<T> s = stateSum.Slice((int)rows[j] * embeddingDim, embeddingDim);
                ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
                for (int c = 0; c < embeddingDim; c++)
                {
                    float square = Rd<T>(Wide(g[c]) * Wide(g[c]));
                    s[c] = Narrow<T>(Wide(s[c]) + square);
                    float std = Rd<T>(Rd<T>(MathF.Sqrt(Wide(s[c]))) + epsilon);
                    float ratio = Rd<T>(Wide(g[c]) / std);
                    w[c] = Narrow<T>(Wide(w[c]) + Rd<T>(ratio * negativeClr));
                }
            }
        }

        return -1;
    }

    public static int RowwiseAdagrad<T>(Span<T> weight, Span<T> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double lr, double eps)
        where T : unmanaged
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        if (typeof(T) == typeof(float))
        {
            IeeeRowwiseAdagrad(Cast<T, float>(weight), Cast<T, float>(momentum), embeddingDim, rows, Cast<T, float>(values), lr, eps);
        }
        else if (typeof(T) == typeof(double))
        {
            IeeeRowwiseAdagrad(Cast<T, double>(weight), Cast<T, double>(momentum), embeddingDim, rows, Cast<T, double>(values), lr, eps);
        }
        else
        {
            float learningRate = Fl<T>(lr), epsilon = Fl<T>(eps);
            for (int j = 0; j < rows.Length; j++)
            {
                int r = (int)rows[j];
                Span<T> w = weight.Slice(r * embeddingDim, embeddingDim);
                ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
                double sum = 0;
                for (int c = 0; c < embeddingDim; c++)
                {
                    sum += (double)Wide(g[c]) * Wide(g[c]);
                }

                float mean = Fl<T>(sum / embeddingDim);
                momentum[r] = Narrow<T>(Wide(momentum[r]) + mean);
                float step = Rd<T>(learningRate / Rd<T>(Rd<T>(MathF.Sqrt(Wide(momentum[r]))) + epsilon));
                for (int c = 0; c < embeddingDim; c++)
                {
                    w[c] = Narrow<T>(Wide(w[c]) + Rd<T>(Wide(g[c]) * -step));
                }
            }
        }

        return -1;
    }

    public static int SparseAdam<T>(Span<T> weight, Span<T> expAvg, Span<T> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double lr, double beta1, double beta2, double eps, long step)
        where T : unmanaged
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        double stepSize = lr * Math.Sqrt(1 - Math.Pow(beta2, step)) / (1 - Math.Pow(beta1, step));
        if (typeof(T) == typeof(float))
        {
            IeeeSparseAdam(Cast<T, float>(weight), Cast<T, float>(expAvg), Cast<T, float>(expAvgSq), embeddingDim, rows, Cast<T, float>(values), beta1, beta2, eps, stepSize);
        }
        else if (typeof(T) == typeof(double))
        {
            IeeeSparseAdam(Cast<T, double>(weight), Cast<T, double>(expAvg), Cast<T, double>(expAvgSq), embeddingDim, rows, Cast<T, double>(values), beta1, beta2, eps, stepSize);
        }
        else
        {
            float oneMinusBeta1 = Fl<T>(1 - beta1), oneMinusBeta2 = Fl<T>(1 - beta2), epsilon = Fl<T>(eps), negativeStepSize = Fl<T>(-stepSize);
            for (int j = 0; j < rows.Length; j++)
            {
                int start = (int)rows[j] * embeddingDim;
                Span<T> w = weight.Slice(start, embeddingDim);
                Span<T> m = expAvg.Slice(start, embeddingDim);
                Span<T> v = expAvgSq.Slice(start, embeddingDim);
                ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
                for (int c = 0; c < embeddingDim; c++)
                {
                    float mUpdate = Rd<T>(Rd<T>(Wide(g[c]) - Wide(m[c])) * oneMinusBeta1);
                    float vUpdate = Rd<T>(Rd<T>(Rd<T>(Wide(g[c]) * Wide(g[c])) - Wide(v[c])) * oneMinusBeta2);
                    float numerator = Rd<T>(mUpdate + Wide(m[c]));
                    float denominator = Rd<T>(Rd<T>(MathF.Sqrt(Rd<T>(vUpdate + Wide(v[c])))) + epsilon);
                    m[c] = Narrow<T>(Wide(m[c]) + mUpdate);
                    v[c] = Narrow<T>(Wide(v[c]) + vUpdate);
                    float update = Rd<T>(Rd<T>(numerator / denominator) * negativeStepSize);
                    w[c] = Narrow<T>(Wide(w[c]) + update);
                }
            }
        }

        return -1;
    }

    // ---- float and double: the type's own arithmetic -----------------------------------------

    private static void IeeeSgd<T>(Span<T> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values, double lr, double weightDecay)
        where T : IFloatingPointIeee754<T>
    {
        T negativeLr = T.CreateChecked(-lr), decay = T.CreateChecked(weightDecay);
        for (int j = 0; j < rows.Length; j++)
        {
            Span<T> w = weight.Slice((int)rows[j] * embeddingDim, embeddingDim);
            ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
            for (int c = 0; c < embeddingDim; c++)
            {
                T d = weightDecay != 0 ? TorchProducts.MultiplyAdd(w[c], decay, g[c]) : g[c];
                w[c] = TorchProducts.MultiplyAdd(d, negativeLr, w[c]);
            }
        }
    }

    private static void IeeeAdagrad<T>(Span<T> weight, Span<T> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values, double clr, double eps)
        where T : IFloatingPointIeee754<T>
    {
        T negativeClr = T.CreateChecked(-clr), epsilon = T.CreateChecked(eps);
        for (int j = 0; j < rows.Length; j++)
        {
            Span<T> w = weight.Slice((int)rows[j] * embeddingDim, embeddingDim);
            Span<T> s = stateSum.Slice((int)rows[j] * embeddingDim, embeddingDim);
            ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
            for (int c = 0; c < embeddingDim; c++)
            {
                T square = g[c] * g[c];
                s[c] = s[c] + square;
                T std = T.Sqrt(s[c]) + epsilon;
                T ratio = g[c] / std;
                w[c] = TorchProducts.MultiplyAdd(ratio, negativeClr, w[c]);
            }
        }
    }

    private static void IeeeRowwiseAdagrad<T>(Span<T> weight, Span<T> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values, double lr, double eps)
        where T : IFloatingPointIeee754<T>
    {
        T learningRate = T.CreateChecked(lr), epsilon = T.CreateChecked(eps);
        for (int j = 0; j < rows.Length; j++)
        {
            int r = (int)rows[j];
            Span<T> w = weight.Slice(r * embeddingDim, embeddingDim);
            ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
            double sum = 0;
            for (int c = 0; c < embeddingDim; c++)
            {
                sum += double.CreateChecked(g[c]) * double.CreateChecked(g[c]);
            }

            T mean = T.CreateChecked(sum / embeddingDim);
            momentum[r] = momentum[r] + mean;
            T step = learningRate / (T.Sqrt(momentum[r]) + epsilon);
            for (int c = 0; c < embeddingDim; c++)
            {
                w[c] = T.FusedMultiplyAdd(g[c], -step, w[c]);
            }
        }
    }

    private static void IeeeSparseAdam<T>(Span<T> weight, Span<T> expAvg, Span<T> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double beta1, double beta2, double eps, double stepSize)
        where T : IFloatingPointIeee754<T>
    {
        T oneMinusBeta1 = T.CreateChecked(1 - beta1), oneMinusBeta2 = T.CreateChecked(1 - beta2), epsilon = T.CreateChecked(eps), negativeStepSize = T.CreateChecked(-stepSize);
        for (int j = 0; j < rows.Length; j++)
        {
            int start = (int)rows[j] * embeddingDim;
            Span<T> w = weight.Slice(start, embeddingDim);
            Span<T> m = expAvg.Slice(start, embeddingDim);
            Span<T> v = expAvgSq.Slice(start, embeddingDim);
            ReadOnlySpan<T> g = values.Slice(j * embeddingDim, embeddingDim);
            for (int c = 0; c < embeddingDim; c++)
            {
                T mUpdate = (g[c] - m[c]) * oneMinusBeta1;
                T vUpdate = (g[c] * g[c] - v[c]) * oneMinusBeta2;
                T numerator = mUpdate + m[c];
                T denominator = T.Sqrt(vUpdate + v[c]) + epsilon;
                m[c] = m[c] + mUpdate;
                v[c] = v[c] + vUpdate;
                T update = numerator / denominator * negativeStepSize;
                w[c] = w[c] + update;
            }
        }
    }

    // ---- float16 and bfloat16: float arithmetic rounded to the type ---------------------------

    /// <summary>A 16-bit value as a float (exact).</summary>
    private static float Wide<T>(T x)
        where T : unmanaged =>
        typeof(T) == typeof(Half) ? (float)Unsafe.BitCast<T, Half>(x) : (float)Unsafe.BitCast<T, BFloat16>(x);

    /// <summary>A float rounded to the 16-bit type (nearest, ties to even).</summary>
    private static T Narrow<T>(float x)
        where T : unmanaged =>
        typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)x) : Unsafe.BitCast<BFloat16, T>((BFloat16)x);

    /// <summary>rd(x): a float rounded to the 16-bit type, kept as a float.</summary>
    private static float Rd<T>(float x)
        where T : unmanaged =>
        Wide(Narrow<T>(x));

    /// <summary>fl(x): a double hyper-parameter as the 16-bit type sees it (to float, then to the type), as a float.</summary>
    private static float Fl<T>(double x)
        where T : unmanaged =>
        Rd<T>((float)x);

    private static Span<TTo> Cast<TFrom, TTo>(Span<TFrom> span)
        where TFrom : struct
        where TTo : struct =>
        MemoryMarshal.Cast<TFrom, TTo>(span);

    private static ReadOnlySpan<TTo> Cast<TFrom, TTo>(ReadOnlySpan<TFrom> span)
        where TFrom : struct
        where TTo : struct =>
        MemoryMarshal.Cast<TFrom, TTo>(span);

    private static int FirstBadRow(ReadOnlySpan<long> rows, long numEmbeddings)
    {
        for (int j = 0; j < rows.Length; j++)
        {
            if (rows[j] < 0 || rows[j] >= numEmbeddings || (j > 0 && rows[j] <= rows[j - 1]))
            {
                return j;
            }
        }

        return -1;
    }
}
