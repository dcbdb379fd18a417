using System;

namespace Embedding.Native;

/// <summary>
/// The scalar oracle for the fused sparse optimizer steps in <see cref="EmbeddingPrimitives"/>:
/// the pseudocode of their XML docs as plain loops, with no vectors and no unsafe code. Every
/// float operation is written out in the order the kernels use, so results match bit for bit.
/// Each returns -1, or the position of the first bad row (out of range or not strictly
/// ascending) with nothing written.
/// </summary>
internal static class OptimizerReference
{
    public static int Sgd(Span<float> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values, double lr, double weightDecay)
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        float negativeLr = (float)-lr, decay = (float)weightDecay;
        for (int j = 0; j < rows.Length; j++)
        {
            Span<float> w = weight.Slice((int)rows[j] * embeddingDim, embeddingDim);
            ReadOnlySpan<float> g = values.Slice(j * embeddingDim, embeddingDim);
            for (int c = 0; c < embeddingDim; c++)
            {
                float d = weightDecay != 0 ? MathF.FusedMultiplyAdd(w[c], decay, g[c]) : g[c];
                w[c] = MathF.FusedMultiplyAdd(d, negativeLr, w[c]);
            }
        }

        return -1;
    }

    public static int Adagrad(Span<float> weight, Span<float> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double lrDecay, double eps, long step)
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        double clr = lr / (1 + (step - 1) * lrDecay);
        float negativeClr = (float)-clr, epsilon = (float)eps;
        for (int j = 0; j < rows.Length; j++)
        {
            Span<float> w = weight.Slice((int)rows[j] * embeddingDim, embeddingDim);
            Span<float> s = stateSum.Slice((int)rows[j] * embeddingDim, embeddingDim);
            ReadOnlySpan<float> g = values.Slice(j * embeddingDim, embeddingDim);
            for (int c = 0; c < embeddingDim; c++)
            {
                float square = g[c] * g[c];
                s[c] = s[c] + square;
                float std = MathF.Sqrt(s[c]) + epsilon;
                float ratio = g[c] / std;
                w[c] = MathF.FusedMultiplyAdd(ratio, negativeClr, w[c]);
            }
        }

        return -1;
    }

    public static int RowwiseAdagrad(Span<float> weight, Span<float> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double eps)
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        float learningRate = (float)lr, epsilon = (float)eps;
        for (int j = 0; j < rows.Length; j++)
        {
            int r = (int)rows[j];
            Span<float> w = weight.Slice(r * embeddingDim, embeddingDim);
            ReadOnlySpan<float> g = values.Slice(j * embeddingDim, embeddingDim);
            double sum = 0;
            for (int c = 0; c < embeddingDim; c++)
            {
                sum += (double)g[c] * g[c];
            }

            float mean = (float)(sum / embeddingDim);
            momentum[r] = momentum[r] + mean;
            float step = learningRate / (MathF.Sqrt(momentum[r]) + epsilon);
            for (int c = 0; c < embeddingDim; c++)
            {
                w[c] = MathF.FusedMultiplyAdd(g[c], -step, w[c]);
            }
        }

        return -1;
    }

    public static int SparseAdam(Span<float> weight, Span<float> expAvg, Span<float> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double beta1, double beta2, double eps, long step)
    {
        int bad = FirstBadRow(rows, weight.Length / embeddingDim);
        if (bad >= 0)
        {
            return bad;
        }

        double stepSize = lr * Math.Sqrt(1 - Math.Pow(beta2, step)) / (1 - Math.Pow(beta1, step));
        float oneMinusBeta1 = (float)(1 - beta1), oneMinusBeta2 = (float)(1 - beta2), epsilon = (float)eps, negativeStepSize = (float)-stepSize;
        for (int j = 0; j < rows.Length; j++)
        {
            int start = (int)rows[j] * embeddingDim;
            Span<float> w = weight.Slice(start, embeddingDim);
            Span<float> m = expAvg.Slice(start, embeddingDim);
            Span<float> v = expAvgSq.Slice(start, embeddingDim);
            ReadOnlySpan<float> g = values.Slice(j * embeddingDim, embeddingDim);
            for (int c = 0; c < embeddingDim; c++)
            {
                float mUpdate = (g[c] - m[c]) * oneMinusBeta1;
                float vUpdate = (g[c] * g[c] - v[c]) * oneMinusBeta2;
                float numerator = mUpdate + m[c];
                float denominator = MathF.Sqrt(vUpdate + v[c]) + epsilon;
                m[c] = m[c] + mUpdate;
                v[c] = v[c] + vUpdate;
                float update = numerator / denominator * negativeStepSize;
                w[c] = w[c] + update;
            }
        }

        return -1;
    }

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
