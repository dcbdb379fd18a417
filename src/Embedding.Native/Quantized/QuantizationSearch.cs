using System;

namespace Embedding.Native;

/// <summary>
/// torch 1.13's <c>at::choose_qparams_optimized</c>, the greedy search behind
/// <c>embedding_bag_{4bit,2bit}_prepack(weight, optimized_qparams=True, nbins, ratio)</c>: it narrows
/// a row's range one step at a time from whichever end lowers the quantization error more, and keeps
/// the range of the best local minimum it passes.
/// </summary>
/// <remarks>
/// <code>
/// xmin, xmax = min, max of the row
/// step = (xmax - xmin) / (float)numBins
/// minBins = (int)(numBins · (1.0 - (double)(float)ratio))       // in double, truncated
/// best = cur = loss(xmin, xmax);  lo = xmin;  hi = xmax
/// while lo + (float)minBins · step &lt; hi:
///     l1 = loss(lo + step, hi);  l2 = loss(lo, hi - step)
///     if cur &lt; l1 and cur &lt; l2 and cur &lt; best: best = cur; xmin = lo; xmax = hi
///     if l1 &lt; l2: lo = lo + step; cur = l1   else: hi = hi - step; cur = l2
///     (if that move leaves lo or hi unchanged, stop: torch 1.13 loops there forever)
/// return xmin, xmax
///
/// loss(a, b):  a = half(a);  r = b - a;  s = r == 0 ? 1 : half(r / q);  inv = s == 0 ? 1 : 1 / s
///              n = 0;  for each x:  c = nearbyint((x - a) · inv);  c = q &lt; c ? q : c;  c = c &gt; 0 ? c : 0
///                                   e = x - (c · s + a);  n = n + e · e
///              return sqrt(n)                                    // every step float32, q = 2^bits - 1
/// </code>
/// The loop body runs about <c>numBins · ratio</c> times, each reading the row twice.
/// The stop on a move that changes nothing is ours: such a move (a step smaller than half an ulp of
/// the bound, or a step that underflowed to 0, as for a row of subnormals) repeats identically
/// forever, so torch 1.13 never returns there; the pair returned is the one torch holds while it loops.
/// </remarks>
internal static class QuantizationSearch
{
    /// <summary>The optimized range of one row of <paramref name="bits"/>-bit codes (see the type's remarks).</summary>
    /// <param name="row">The row's elements (float32 or float16, widened exactly); at least one.</param>
    /// <param name="bits">4 or 2.</param>
    /// <param name="numBins">Positive.</param>
    /// <param name="ratio">In [0, 1] (callers validate), so <c>minBins</c> is in [0, numBins].</param>
    /// <param name="xmin">The chosen lower bound, before its rounding to float16.</param>
    /// <param name="xmax">The chosen upper bound.</param>
    public static void Search<T>(ReadOnlySpan<T> row, int bits, int numBins, double ratio, out float xmin, out float xmax)
        where T : unmanaged
    {
        float maxCode = (1 << bits) - 1;
        RowQuantizer.MinMax(row, out xmin, out xmax);
        float step = (xmax - xmin) / numBins;
        int minBins = (int)(numBins * (1.0 - (float)ratio));

        float loss = Loss(row, xmin, xmax, maxCode);
        float best = loss, current = loss;
        float low = xmin, high = xmax;
        float threshold = minBins * step;
        while (low + threshold < high)
        {
            float raisedLow = low + step, loweredHigh = high - step;
            float lossRaised = Loss(row, raisedLow, high, maxCode);
            float lossLowered = Loss(row, low, loweredHigh, maxCode);
            if (current < lossRaised && current < lossLowered && current < best)
            {
                best = current;
                xmin = low;
                xmax = high;
            }

            if (lossRaised < lossLowered)
            {
                if (raisedLow == low)
                {
                    break;
                }

                low = raisedLow;
                current = lossRaised;
            }
            else
            {
                if (loweredHigh == high)
                {
                    break;
                }

                high = loweredHigh;
                current = lossLowered;
            }
        }
    }

    /// <summary>The L2 error of quantizing the row with the range <paramref name="low"/>..<paramref name="high"/> (torch's calculate_quant_loss).</summary>
    private static float Loss<T>(ReadOnlySpan<T> row, float low, float high, float maxCode)
        where T : unmanaged
    {
        low = RowQuantizer.RoundToHalf(low);
        float range = high - low;
        float scale = range == 0 ? 1.0f : RowQuantizer.RoundToHalf(range / maxCode);
        float inverse = scale == 0 ? 1.0f : 1.0f / scale;
        float norm = 0.0f;
        for (int i = 0; i < row.Length; i++)
        {
            float x = RowQuantizer.Load(row, i);
            float code = MathF.Round((x - low) * inverse);
            code = maxCode < code ? maxCode : code;
            code = code > 0.0f ? code : 0.0f;
            float restored = code * scale + low;
            float error = x - restored;
            norm += error * error;
        }

        return MathF.Sqrt(norm);
    }
}
