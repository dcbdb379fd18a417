using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// The EmbeddingBag backward for any dimension: the dense sum/mean scatter, the dense max scatter,
/// the sparse (uncoalesced) values and the per-sample-weights gradient. Inputs are validated by the
/// caller (<see cref="Bags{TIndex}"/> holds only in-range indices; max indices of non-empty bags are
/// rows of the table).
/// </summary>
/// <remarks>
/// Every loop runs serially in position (or bag) order, and no column ever depends on another, so
/// the results are the same bits at every vector width. The sum/mean scatter updates a row in place:
/// its tail is a masked vector ending at the row end (an overlapping vector would add the overlapped
/// columns twice). The sparse values are written from the output gradient only, so their tail may
/// overlap: a column computed twice is stored with the same bits.
/// </remarks>
internal static class GenericBagBackward
{
    /// <summary>
    /// Bytes per vector lane of a table of <typeparamref name="TElement"/>: what decides whether a width's vector
    /// fits in a row (see <c>KernelDispatch.FitWidth</c>). float16 rows are computed in float32 lanes.
    /// </summary>
    public static int LaneBytes<TElement>()
        where TElement : unmanaged => typeof(TElement) == typeof(double) ? sizeof(double) : sizeof(float);

    /// <summary>
    /// Dense sum/mean gradient into a gradient already zeroed (or holding the sum to accumulate into):
    /// <c>gradWeight[indices[i]] = fma(gradOutput[bag(i)], (float)s_i, gradWeight[indices[i]])</c> for every
    /// non-padding position in position order, <c>s_i = psw[i] (or 1) / c[k] (frequency) / |P_b| (mean)</c> in double.
    /// <paramref name="counts"/> holds the per-row occurrence counts for frequency scaling, or is a null ref.
    /// </summary>
    public static void SumMean<TIndex>(VectorWidth width, ref float gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref float gradWeight)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                SumMean<TIndex, Width512>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
            case VectorWidth.Vector256:
                SumMean<TIndex, Width256>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
            case VectorWidth.Vector128:
                SumMean<TIndex, Width128>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
            default:
                SumMean<TIndex, WidthScalar>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
        }
    }

    /// <summary>
    /// Sparse values, one entry per non-padding position in position order:
    /// <c>values[n] = gradOutput[bag(i)] × fl(1/|P_b|) (mean) × psw[i] × fl(1/c[k]) (frequency)</c>, each product rounded,
    /// or a plain copy when no factor applies. <paramref name="outRows"/> receives the rows.
    /// </summary>
    public static void Sparse<TIndex>(VectorWidth width, ref float gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref long outRows, ref float outValues)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                Sparse<TIndex, MultiplyWidth512>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
            case VectorWidth.Vector256:
                Sparse<TIndex, MultiplyWidth256>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
            case VectorWidth.Vector128:
                Sparse<TIndex, MultiplyWidth128>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
            default:
                Sparse<TIndex, MultiplyWidthScalar>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
        }
    }

    /// <summary>
    /// Dense max gradient: for each bag with a non-padding position, in increasing bag order, and each
    /// column d, <c>gradWeight[maxIndices[b][d]][d] += gradOutput[b][d]</c>.
    /// </summary>
    /// <remarks>
    /// Scalar on purpose: each column of a bag goes to its own row, so a vector would need a
    /// gather and a scatter per column block, and two columns of one vector may name the same row
    /// only in different columns, which a scatter handles no better than this loop.
    /// </remarks>
    public static void Max<TIndex>(ref float gradOutput, int dimension, Bags<TIndex> bags, ref long maxIndices, ref float gradWeight)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        for (int b = 0; b < bags.Count; b++)
        {
            if (Members(bags, b) == 0)
            {
                continue;
            }

            nint first = (nint)b * dimension;
            for (nint d = 0; d < dimension; d++)
            {
                nint row = (nint)Unsafe.Add(ref maxIndices, first + d);
                ref float target = ref Unsafe.Add(ref gradWeight, row * dimension + d);
                target += Unsafe.Add(ref gradOutput, first + d);
            }
        }
    }

    /// <summary>
    /// Gradient of the weighted bag sum with respect to the per-sample weights:
    /// <c>gradPerSampleWeights[i] = Σ_d gradOutput[bag(i)][d] · weight[indices[i]][d]</c>, a sequential float dot
    /// with each product rounded before the add (torch's netlib <c>sdot</c>). Writes only the non-padding
    /// positions of the bags: the caller has zeroed the output (+0.0 at padding and outside bags).
    /// </summary>
    /// <remarks>
    /// Scalar by definition: a vector dot would sum in lanes and change the rounding. .NET never
    /// contracts <c>acc + g * w</c> into a fused multiply-add, so each product is rounded as in sdot.
    /// </remarks>
    public static void PerSampleWeights<TIndex>(ref float gradOutput, ref float weight, int dimension, Bags<TIndex> bags, ref float gradPerSampleWeights)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        long padding = bags.PaddingIndex;
        for (int b = 0; b < bags.Count; b++)
        {
            ref float gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                nint row = nint.CreateTruncating(indices[i]);
                if (row == padding)
                {
                    continue;
                }

                ref float values = ref Unsafe.Add(ref weight, row * dimension);
                float dot = 0f;
                for (nint d = 0; d < dimension; d++)
                {
                    dot += Unsafe.Add(ref gradient, d) * Unsafe.Add(ref values, d);
                }

                Unsafe.Add(ref gradPerSampleWeights, i) = dot;
            }
        }
    }

    /// <summary>|P_b|: the positions of bag <paramref name="bag"/> that are not padding.</summary>
    public static int Members<TIndex>(Bags<TIndex> bags, int bag)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int start = (int)bags.Starts[bag], end = (int)bags.Starts[bag + 1];
        if (bags.PaddingIndex == EmbeddingPrimitives.NoPadding)
        {
            return end - start;
        }

        int members = 0;
        TIndex padding = TIndex.CreateTruncating(bags.PaddingIndex);
        foreach (TIndex index in bags.Indices[start..end])
        {
            members += index == padding ? 0 : 1;
        }

        return members;
    }

    private static void SumMean<TIndex, TWidth>(ref float gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref float gradWeight)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IVectorWidth
    {
        bool byFrequency = !Unsafe.IsNullRef(ref counts);
        bool scaled = byFrequency || mean || bags.IsWeighted;
        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        ReadOnlySpan<float> weights = bags.PerSampleWeights;
        long padding = bags.PaddingIndex;
        int distance = KernelHints.DistanceFor(dimension);
        int last = indices.Length - 1;

        // Serial in position order: duplicates accumulate in one fixed order (torch's is its unstable
        // sort's, which no port can reproduce), and the result cannot depend on how work is split.
        for (int b = 0; b < bags.Count; b++)
        {
            ref float gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);
            int members = mean ? Members(bags, b) : 1;
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                // Prefetch the gradient row a few positions ahead: a hint, so no value changes.
                KernelHints.PrefetchRow(ref Unsafe.Add(ref gradWeight, nint.CreateTruncating(indices[Math.Min(i + distance, last)]) * dimension), dimension);
                nint row = nint.CreateTruncating(indices[i]);
                if (row == padding)
                {
                    continue;
                }

                ref float target = ref Unsafe.Add(ref gradWeight, row * dimension);
                if (!scaled)
                {
                    // s = 1: fma(g, 1, acc) is acc + g with one rounding, so a plain add is the same bits.
                    RowUpdate.Add<TWidth>(ref gradient, ref target, dimension);
                    continue;
                }

                // torch builds the scale in double, in this order, and rounds it to float once.
                double s = weights.IsEmpty ? 1.0 : weights[i];
                if (byFrequency)
                {
                    s /= Unsafe.Add(ref counts, row);
                }

                if (mean)
                {
                    s /= members;
                }

                RowUpdate.MultiplyAdd<TWidth>(ref gradient, (float)s, ref target, dimension);
            }
        }
    }

    private static void Sparse<TIndex, TWidth>(ref float gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref long outRows, ref float outValues)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IMultiplyWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        nuint lastVector = (nuint)dimension - lanes;
        bool byFrequency = !Unsafe.IsNullRef(ref counts);
        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        ReadOnlySpan<float> weights = bags.PerSampleWeights;
        long padding = bags.PaddingIndex;
        nint entry = 0;
        for (int b = 0; b < bags.Count; b++)
        {
            ref float gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);

            // torch: bag_size.to(float).reciprocal(), a float reciprocal of the float count.
            float inverse = mean ? 1f / (float)Members(bags, b) : 1f;
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                nint row = nint.CreateTruncating(indices[i]);
                if (row == padding)
                {
                    continue;
                }

                Unsafe.Add(ref outRows, entry) = row;
                ref float target = ref Unsafe.Add(ref outValues, entry * dimension);
                entry++;

                // The factors in torch's order: the mean's reciprocal, then the sample weight (the two
                // never meet: weights are sum-only), then fl(1/c) for frequency scaling (ours; torch
                // refuses it with sparse gradients). With no factor the row is copied, as torch's index_select.
                int factors = (mean ? 1 : 0) + (weights.IsEmpty ? 0 : 1) + (byFrequency ? 1 : 0);
                float first = mean ? inverse : weights.IsEmpty ? 1f : weights[i];
                float frequency = byFrequency ? (float)(1.0 / Unsafe.Add(ref counts, row)) : 1f;
                if (factors == 0)
                {
                    for (nuint column = 0; column < wholeColumns; column += lanes)
                    {
                        TWidth.Copy(ref gradient, ref target, column);
                    }

                    if (wholeColumns != (nuint)dimension)
                    {
                        TWidth.Copy(ref gradient, ref target, lastVector);
                    }
                }
                else if (factors == 1)
                {
                    float scale = byFrequency ? frequency : first;
                    for (nuint column = 0; column < wholeColumns; column += lanes)
                    {
                        TWidth.Multiply(ref gradient, scale, ref target, column);
                    }

                    if (wholeColumns != (nuint)dimension)
                    {
                        TWidth.Multiply(ref gradient, scale, ref target, lastVector);
                    }
                }
                else
                {
                    for (nuint column = 0; column < wholeColumns; column += lanes)
                    {
                        TWidth.Multiply(ref gradient, first, frequency, ref target, column);
                    }

                    if (wholeColumns != (nuint)dimension)
                    {
                        TWidth.Multiply(ref gradient, first, frequency, ref target, lastVector);
                    }
                }
            }
        }
    }

    /// <summary>
    /// The dense sum/mean gradient of a float64 or float16 table, in position order, with torch 1.13's
    /// arithmetic per type (docs/table-types.md, "EmbeddingBag backward"): the scale built in double as
    /// for float32, converted once to the type (float16 through float), then float64
    /// <c>fma(g, fl(s), acc)</c> and float16 <c>rd(acc + rd(fl(s)·g))</c>; unscaled, <c>rd(acc + g)</c>.
    /// </summary>
    public static void SumMeanOf<TElement, TIndex>(VectorWidth width, ref TElement gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref TElement gradWeight)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (typeof(TElement) == typeof(float))
        {
            SumMean(width, ref Unsafe.As<TElement, float>(ref gradOutput), dimension, bags, mean, ref counts, ref Unsafe.As<TElement, float>(ref gradWeight));
            return;
        }

        switch (width)
        {
            case VectorWidth.Vector512:
                SumMeanOf<TElement, TIndex, Width512>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
            case VectorWidth.Vector256:
                SumMeanOf<TElement, TIndex, Width256>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
            case VectorWidth.Vector128:
                SumMeanOf<TElement, TIndex, Width128>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
            default:
                SumMeanOf<TElement, TIndex, WidthScalar>(ref gradOutput, dimension, bags, mean, ref counts, ref gradWeight);
                break;
        }
    }

    /// <summary>The dense max gradient of a float64 or float16 table: <c>rd(acc + g)</c> into each column's arg-max row, bags in order.</summary>
    public static void MaxOf<TElement, TIndex>(ref TElement gradOutput, int dimension, Bags<TIndex> bags, ref long maxIndices, ref TElement gradWeight)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (typeof(TElement) == typeof(float))
        {
            Max(ref Unsafe.As<TElement, float>(ref gradOutput), dimension, bags, ref maxIndices, ref Unsafe.As<TElement, float>(ref gradWeight));
            return;
        }

        for (int b = 0; b < bags.Count; b++)
        {
            if (Members(bags, b) == 0)
            {
                continue;
            }

            nint first = (nint)b * dimension;
            for (nint d = 0; d < dimension; d++)
            {
                nint row = (nint)Unsafe.Add(ref maxIndices, first + d);
                ref TElement target = ref Unsafe.Add(ref gradWeight, row * dimension + d);
                target = AddOne(target, Unsafe.Add(ref gradOutput, first + d));
            }
        }
    }

    /// <summary>
    /// The sparse values of a float64 or float16 table, one entry per non-padding position in position
    /// order: the output gradient's row, times <c>rd(1 / |P_b|)</c> (a reciprocal in the type; float16
    /// as float, then rounded) in mean mode, times the sample weight, times <c>fl(1/c)</c> for frequency
    /// scaling; each product rounded to the type.
    /// </summary>
    public static void SparseOf<TElement, TIndex>(VectorWidth width, ref TElement gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref long outRows, ref TElement outValues)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (typeof(TElement) == typeof(float))
        {
            Sparse(width, ref Unsafe.As<TElement, float>(ref gradOutput), dimension, bags, mean, ref counts, ref outRows, ref Unsafe.As<TElement, float>(ref outValues));
            return;
        }

        bool byFrequency = !Unsafe.IsNullRef(ref counts);
        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        long padding = bags.PaddingIndex;
        nint entry = 0;
        for (int b = 0; b < bags.Count; b++)
        {
            ref TElement gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);
            TElement inverse = mean ? Reciprocal<TElement>(Math.Max(Members(bags, b), 1)) : default;
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                nint row = nint.CreateTruncating(indices[i]);
                if (row == padding)
                {
                    continue;
                }

                Unsafe.Add(ref outRows, entry) = row;
                ref TElement target = ref Unsafe.Add(ref outValues, entry * dimension);
                entry++;
                MemoryMarshal.CreateReadOnlySpan(ref gradient, dimension).CopyTo(MemoryMarshal.CreateSpan(ref target, dimension));
                if (mean)
                {
                    RowUpdate.Multiply(ref target, inverse, ref target, dimension);
                }

                if (!weights.IsEmpty)
                {
                    RowUpdate.Multiply(ref target, weights[i], ref target, dimension);
                }

                if (byFrequency)
                {
                    RowUpdate.Multiply(ref target, RowUpdate.FrequencyScale<TElement>(Unsafe.Add(ref counts, row)), ref target, dimension);
                }
            }
        }
    }

    /// <summary>
    /// The per-sample-weights gradient of a float64 or float16 table: a sequential dot over the columns
    /// from +0.0, each product rounded to the type before the add, and the sum rounded to the type
    /// (float16: a half accumulator, <c>acc = rd(acc + rd(g·w))</c>). Writes only the non-padding positions of the bags.
    /// </summary>
    public static void PerSampleWeightsOf<TElement, TIndex>(ref TElement gradOutput, ref TElement weight, int dimension, Bags<TIndex> bags, ref TElement gradPerSampleWeights)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (typeof(TElement) == typeof(float))
        {
            PerSampleWeights(ref Unsafe.As<TElement, float>(ref gradOutput), ref Unsafe.As<TElement, float>(ref weight), dimension, bags, ref Unsafe.As<TElement, float>(ref gradPerSampleWeights));
            return;
        }

        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        long padding = bags.PaddingIndex;
        for (int b = 0; b < bags.Count; b++)
        {
            ref TElement gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                nint row = nint.CreateTruncating(indices[i]);
                if (row == padding)
                {
                    continue;
                }

                ref TElement values = ref Unsafe.Add(ref weight, row * dimension);
                if (typeof(TElement) == typeof(double))
                {
                    ref double g = ref Unsafe.As<TElement, double>(ref gradient);
                    ref double w = ref Unsafe.As<TElement, double>(ref values);
                    double dot = 0.0;
                    for (nint d = 0; d < dimension; d++)
                    {
                        dot += Unsafe.Add(ref g, d) * Unsafe.Add(ref w, d);
                    }

                    Unsafe.Add(ref Unsafe.As<TElement, double>(ref gradPerSampleWeights), i) = dot;
                }
                else if (typeof(TElement) == typeof(Half))
                {
                    ref Half g = ref Unsafe.As<TElement, Half>(ref gradient);
                    ref Half w = ref Unsafe.As<TElement, Half>(ref values);
                    Half dot = (Half)0f;
                    for (nint d = 0; d < dimension; d++)
                    {
                        Half product = (Half)((float)Unsafe.Add(ref g, d) * (float)Unsafe.Add(ref w, d));
                        dot = (Half)((float)dot + (float)product);
                    }

                    Unsafe.Add(ref Unsafe.As<TElement, Half>(ref gradPerSampleWeights), i) = dot;
                }
                else
                {
                    throw new NotSupportedException(typeof(TElement).Name);
                }
            }
        }
    }

    private static void SumMeanOf<TElement, TIndex, TWidth>(ref TElement gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref TElement gradWeight)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IVectorWidth
    {
        bool byFrequency = !Unsafe.IsNullRef(ref counts);
        bool scaled = byFrequency || mean || bags.IsWeighted;
        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        long padding = bags.PaddingIndex;
        for (int b = 0; b < bags.Count; b++)
        {
            ref TElement gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);
            int members = mean ? Members(bags, b) : 1;
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                nint row = nint.CreateTruncating(indices[i]);
                if (row == padding)
                {
                    continue;
                }

                ref TElement target = ref Unsafe.Add(ref gradWeight, row * dimension);
                if (!scaled)
                {
                    RowUpdate.Add<TWidth, TElement>(ref gradient, ref target, dimension);
                    continue;
                }

                double s = weights.IsEmpty ? 1.0 : ToDouble(weights[i]);
                if (byFrequency)
                {
                    s /= Unsafe.Add(ref counts, row);
                }

                if (mean)
                {
                    s /= members;
                }

                RowUpdate.MultiplyAdd<TWidth, TElement>(ref gradient, FromDouble<TElement>(s), ref target, dimension);
            }
        }
    }

    /// <summary>A value of the table's type, exactly, as a double.</summary>
    internal static double ToDouble<T>(T value)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<T, float>(value)
        : typeof(T) == typeof(double) ? Unsafe.BitCast<T, double>(value)
        : typeof(T) == typeof(Half) ? (double)(float)Unsafe.BitCast<T, Half>(value)
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary>A double converted as c10 converts a scalar: float64 keeps it, float32 rounds once, float16 rounds to float, then to half.</summary>
    internal static T FromDouble<T>(double value)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>((float)value)
        : typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(value)
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)(float)value)
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary><c>rd(1 / count)</c> in the type: float64 in double; float16 a float division of 1 by the float count, rounded to half.</summary>
    private static T Reciprocal<T>(int count)
        where T : unmanaged =>
        typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(1.0 / count)
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)(1f / count))
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary><c>rd(a + b)</c> in the type.</summary>
    internal static T AddOne<T>(T a, T b)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>(Unsafe.BitCast<T, float>(a) + Unsafe.BitCast<T, float>(b))
        : typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(Unsafe.BitCast<T, double>(a) + Unsafe.BitCast<T, double>(b))
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)((float)Unsafe.BitCast<T, Half>(a) + (float)Unsafe.BitCast<T, Half>(b)))
        : throw new NotSupportedException(typeof(T).Name);
}
