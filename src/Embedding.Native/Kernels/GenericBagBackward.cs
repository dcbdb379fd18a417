using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The EmbeddingBag backward for any dimension and every table type it takes (float32, float64,
/// float16): the dense sum/mean scatter, the dense max scatter, the sparse (uncoalesced) values and the
/// per-sample-weights gradient, with torch 1.13's arithmetic per type (docs/table-types.md,
/// "EmbeddingBag backward"). Inputs are validated by the caller (<see cref="Bags{TIndex}"/> holds only
/// in-range indices; max indices of non-empty bags are rows of the table).
/// </summary>
/// <remarks>
/// Every loop runs in one fixed order: the dense sum/mean scatter in torch's (<see cref="BagBackwardOrder"/>:
/// each row's contributions in the order torch's unstable sort of the indices leaves them), the others in
/// position (or bag) order; no column ever depends on another, so the results are the same bits at every
/// vector width. The threaded drivers (<see cref="BagBackwardDriver"/>) run these loops over pieces that each
/// own their outputs (for the dense scatter, a range of rows: a contiguous run of the sorted entries), so
/// they are the same bits on every thread count too. The sum/mean scatter updates a row in
/// place: its tail is masked (<see cref="RowUpdate"/>; an overlapping vector would add the overlapped
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
    /// Dense sum/mean gradient into a gradient already zeroed (or holding the sum to accumulate into): the
    /// <paramref name="sortedKeys"/> of a <see cref="BagBackwardOrder"/> in that order (torch's: each row's contributions in the
    /// order its unstable sort leaves them), padding and positions in no bag skipped; see
    /// <see cref="Accumulate{TElement, TWidth, TProducts}"/> for one update. <paramref name="sortedKeys"/> is a run of
    /// <see cref="BagBackwardOrder.Keys"/> with its <paramref name="shift"/>, <paramref name="bagOf"/> the bag of
    /// each position, <paramref name="members"/> |P_b| in mean mode (empty for sum); <paramref name="counts"/>
    /// holds the per-row occurrence counts for frequency scaling, or is a null ref.
    /// </summary>
    public static void SumMean<TElement, TIndex>(VectorWidth width, ref TElement gradOutput, int dimension, Bags<TIndex> bags, ReadOnlySpan<ulong> sortedKeys, int shift, ReadOnlySpan<int> bagOf, ReadOnlySpan<int> members, ref int counts, ref TElement gradWeight)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (TorchProducts.AreFused)
        {
            SumMean<TElement, TIndex, FusedProducts>(width, ref gradOutput, dimension, bags, sortedKeys, shift, bagOf, members, ref counts, ref gradWeight);
        }
        else
        {
            SumMean<TElement, TIndex, RoundedProducts>(width, ref gradOutput, dimension, bags, sortedKeys, shift, bagOf, members, ref counts, ref gradWeight);
        }
    }

    /// <summary>
    /// One position's update of the dense sum/mean gradient: unscaled <c>rd(acc + g)</c>; otherwise the scale
    /// <c>s = psw[i] (or 1) / c[row] (frequency) / |P_b| (mean, <paramref name="members"/> &gt; 0)</c> built in
    /// double in this order, as torch builds it, converted once to the type (<see cref="FromDouble{T}"/>), and
    /// the type's update: float32 and float64 <c>fma(g, fl(s), acc)</c> (<c>rd(rd(g·fl(s)) + acc)</c> with torch's
    /// default kernels: <typeparamref name="TProducts"/>), float16 <c>rd(acc + rd(fl(s)·g))</c>.
    /// </summary>
    /// <param name="gradient">The output gradient's row of the position's bag.</param>
    /// <param name="target">The gradient row of the position's index.</param>
    /// <param name="dimension">Columns per row.</param>
    /// <param name="scaled">False when no factor applies (no weights, frequency or mean).</param>
    /// <param name="weights">The per-sample weights, or empty.</param>
    /// <param name="position">The position, for its weight.</param>
    /// <param name="counts">The per-row counts for frequency scaling, or a null ref.</param>
    /// <param name="row">The position's index.</param>
    /// <param name="members">|P_b| in mean mode, 0 otherwise.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Accumulate<TElement, TWidth, TProducts>(ref TElement gradient, ref TElement target, int dimension, bool scaled, ReadOnlySpan<TElement> weights, int position, ref int counts, nint row, int members)
        where TElement : unmanaged
        where TWidth : IVectorWidth
        where TProducts : ITorchProducts
    {
        if (!scaled)
        {
            // s = 1: fma(g, 1, acc) is acc + g with one rounding, so a plain add is the same bits.
            RowUpdate.Add<TWidth, TElement>(ref gradient, ref target, dimension);
            return;
        }

        double s = weights.IsEmpty ? 1.0 : ToDouble(weights[position]);
        if (!Unsafe.IsNullRef(ref counts))
        {
            s /= Unsafe.Add(ref counts, row);
        }

        if (members != 0)
        {
            s /= members;
        }

        RowUpdate.MultiplyAdd<TWidth, TElement, TProducts>(ref gradient, FromDouble<TElement>(s), ref target, dimension);
    }

    /// <summary>
    /// Dense max gradient: for each bag with a non-padding position, in increasing bag order, and each
    /// column d, <c>gradWeight[maxIndices[b][d]][d] = rd(gradWeight[maxIndices[b][d]][d] + gradOutput[b][d])</c>.
    /// </summary>
    /// <remarks>
    /// Scalar on purpose: each column of a bag goes to its own row, so a vector would need a
    /// gather and a scatter per column block, and two columns of one vector may name the same row
    /// only in different columns, which a scatter handles no better than this loop.
    /// </remarks>
    public static void Max<TElement, TIndex>(ref TElement gradOutput, int dimension, Bags<TIndex> bags, ref long maxIndices, ref TElement gradWeight)
        where TElement : unmanaged
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
                ref TElement target = ref Unsafe.Add(ref gradWeight, row * dimension + d);
                target = AddOne(target, Unsafe.Add(ref gradOutput, first + d));
            }
        }
    }

    /// <summary>
    /// Sparse values, one entry per non-padding position in position order: the output gradient's row,
    /// times <c>rd(1 / |P_b|)</c> (a reciprocal in the type; float16 as float, then rounded) in mean mode,
    /// times the sample weight, times <c>fl(1/c)</c> for frequency scaling; each product rounded to the type,
    /// a plain copy when no factor applies (torch's <c>index_select</c>). <paramref name="outRows"/> receives the rows.
    /// </summary>
    public static void Sparse<TElement, TIndex>(VectorWidth width, ref TElement gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref long outRows, ref TElement outValues)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                Sparse<TElement, TIndex, Width512>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
            case VectorWidth.Vector256:
                Sparse<TElement, TIndex, Width256>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
            case VectorWidth.Vector128:
                Sparse<TElement, TIndex, Width128>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
            default:
                Sparse<TElement, TIndex, WidthScalar>(ref gradOutput, dimension, bags, mean, ref counts, ref outRows, ref outValues);
                break;
        }
    }

    /// <summary>
    /// Gradient of the weighted bag sum with respect to the per-sample weights:
    /// <c>gradPerSampleWeights[i] = Σ_d gradOutput[bag(i)][d] · weight[indices[i]][d]</c>, a sequential dot over
    /// the columns from +0.0 in the type, each product rounded before the add (torch's netlib <c>sdot</c> /
    /// <c>ddot</c>; float16 a half accumulator, <c>acc = rd(acc + rd(g·w))</c>). Writes only the non-padding
    /// positions of the bags: the caller has zeroed the output (+0.0 at padding and outside bags).
    /// </summary>
    /// <remarks>
    /// The sum is sequential by definition: a vector dot would sum in lanes and change the rounding. .NET
    /// never contracts <c>acc + g * w</c> into a fused multiply-add, so each product is rounded as in sdot.
    /// float16's products, each rounded on its own, are computed a vector at a time.
    /// </remarks>
    public static void PerSampleWeights<TElement, TIndex>(ref TElement gradOutput, ref TElement weight, int dimension, Bags<TIndex> bags, ref TElement gradPerSampleWeights)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
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

                Unsafe.Add(ref gradPerSampleWeights, i) = Dot(ref gradient, ref Unsafe.Add(ref weight, row * dimension), dimension);
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

    /// <summary><c>rd(a + b)</c> in the type.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T AddOne<T>(T a, T b)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>(Unsafe.BitCast<T, float>(a) + Unsafe.BitCast<T, float>(b))
        : typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(Unsafe.BitCast<T, double>(a) + Unsafe.BitCast<T, double>(b))
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)((float)Unsafe.BitCast<T, Half>(a) + (float)Unsafe.BitCast<T, Half>(b)))
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary><see cref="SumMean{TElement, TIndex}"/> with torch's rounding chosen: the width's body.</summary>
    private static void SumMean<TElement, TIndex, TProducts>(VectorWidth width, ref TElement gradOutput, int dimension, Bags<TIndex> bags, ReadOnlySpan<ulong> sortedKeys, int shift, ReadOnlySpan<int> bagOf, ReadOnlySpan<int> members, ref int counts, ref TElement gradWeight)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TProducts : ITorchProducts
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                SumMean<TElement, TIndex, Width512, TProducts>(ref gradOutput, dimension, bags, sortedKeys, shift, bagOf, members, ref counts, ref gradWeight);
                break;
            case VectorWidth.Vector256:
                SumMean<TElement, TIndex, Width256, TProducts>(ref gradOutput, dimension, bags, sortedKeys, shift, bagOf, members, ref counts, ref gradWeight);
                break;
            case VectorWidth.Vector128:
                SumMean<TElement, TIndex, Width128, TProducts>(ref gradOutput, dimension, bags, sortedKeys, shift, bagOf, members, ref counts, ref gradWeight);
                break;
            default:
                SumMean<TElement, TIndex, WidthScalar, TProducts>(ref gradOutput, dimension, bags, sortedKeys, shift, bagOf, members, ref counts, ref gradWeight);
                break;
        }
    }

    private static void SumMean<TElement, TIndex, TWidth, TProducts>(ref TElement gradOutput, int dimension, Bags<TIndex> bags, ReadOnlySpan<ulong> keys, int shift, ReadOnlySpan<int> bagOf, ReadOnlySpan<int> members, ref int counts, ref TElement gradWeight)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IVectorWidth
        where TProducts : ITorchProducts
    {
        bool scaled = !Unsafe.IsNullRef(ref counts) || !members.IsEmpty || bags.IsWeighted;
        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        long padding = bags.PaddingIndex;
        int distance = KernelHints.DistanceForRowBytes(dimension * Unsafe.SizeOf<TElement>());
        int last = keys.Length - 1;
        for (int k = 0; k <= last; k++)
        {
            // The rows ascend, which the hardware follows; the bags' gradient rows do not: prefetch the one a
            // few entries ahead (a hint, so no value changes).
            if (KernelHints.IssuesPrefetches)
            {
                int ahead = bagOf[BagBackwardOrder.PositionOf(keys[Math.Min(k + distance, last)], shift)];
                KernelHints.PrefetchRow(ref Unsafe.Add(ref gradOutput, (nint)Math.Max(ahead, 0) * dimension), dimension);
            }
            ulong key = keys[k];
            nint row = (nint)(key >> shift);
            int position = BagBackwardOrder.PositionOf(key, shift);
            int b = bagOf[position];
            if (row == padding || b < 0)
            {
                continue;
            }

            Accumulate<TElement, TWidth, TProducts>(
                ref Unsafe.Add(ref gradOutput, (nint)b * dimension), ref Unsafe.Add(ref gradWeight, row * dimension), dimension, scaled, weights, position, ref counts, row, members.IsEmpty ? 0 : members[b]);
        }
    }

    private static void Sparse<TElement, TIndex, TWidth>(ref TElement gradOutput, int dimension, Bags<TIndex> bags, bool mean, ref int counts, ref long outRows, ref TElement outValues)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IVectorWidth
    {
        bool byFrequency = !Unsafe.IsNullRef(ref counts);
        ReadOnlySpan<TIndex> indices = bags.Indices;
        ReadOnlySpan<long> starts = bags.Starts;
        ReadOnlySpan<TElement> weights = bags.PerSampleWeightsOf<TElement>();
        long padding = bags.PaddingIndex;
        nint entry = 0;
        for (int b = 0; b < bags.Count; b++)
        {
            ref TElement gradient = ref Unsafe.Add(ref gradOutput, (nint)b * dimension);

            // torch: bag_size.to(dtype).reciprocal(), a reciprocal in the type (read only when the bag has members).
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

                // The factors in torch's order: the mean's reciprocal, then the sample weight (the two
                // never meet: weights are sum-only), then fl(1/c) for frequency scaling (ours; torch
                // refuses it with sparse gradients). With no factor the row is copied, as torch's index_select.
                bool weighted = !weights.IsEmpty;
                if (!mean && !weighted && !byFrequency)
                {
                    MemoryMarshal.CreateReadOnlySpan(ref gradient, dimension).CopyTo(MemoryMarshal.CreateSpan(ref target, dimension));
                    continue;
                }

                TElement frequency = byFrequency ? RowUpdate.FrequencyScale<TElement>(Unsafe.Add(ref counts, row)) : default;
                if (mean || weighted)
                {
                    TElement first = mean ? inverse : weights[i];
                    ScaleRow<TWidth, TElement>(ref gradient, first, frequency, byFrequency, ref target, dimension);
                }
                else
                {
                    ScaleRow<TWidth, TElement>(ref gradient, frequency, default, false, ref target, dimension);
                }
            }
        }
    }

    /// <summary>
    /// <c>target[c] = rd(source[c] · first)</c>, then (<paramref name="twice"/>) <c>rd(that · second)</c>, for
    /// every column: whole vectors of the width, then one vector ending at the row end. It overlaps columns
    /// already written, which it computes again from the source with the same bits: both factors are applied
    /// in one pass, so each column depends on the source alone.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleRow<TWidth, T>(ref T source, T first, T second, bool twice, ref T target, int dimension)
        where TWidth : IVectorWidth
        where T : unmanaged
    {
        // float16 rows are computed in float32 lanes: as many columns per vector as floats.
        nuint lanes = (nuint)(typeof(T) == typeof(Half) ? TWidth.Lanes : TWidth.LanesOf<T>());
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            ScaleVector<TWidth, T>(ref source, first, second, twice, ref target, column);
        }

        if (wholeColumns != (nuint)dimension)
        {
            ScaleVector<TWidth, T>(ref source, first, second, twice, ref target, (nuint)dimension - lanes);
        }
    }

    /// <summary><see cref="ScaleRow{TWidth, T}"/> for the one vector of columns at <paramref name="column"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleVector<TWidth, T>(ref T source, T first, T second, bool twice, ref T target, nuint column)
        where TWidth : IVectorWidth
        where T : unmanaged
    {
        if (typeof(T) == typeof(Half))
        {
            ScaleHalves<TWidth>(ref Unsafe.As<T, Half>(ref source), Unsafe.BitCast<T, Half>(first), Unsafe.BitCast<T, Half>(second), twice, ref Unsafe.As<T, Half>(ref target), column);
        }
        else if (typeof(TWidth) == typeof(Width512))
        {
            Vector512<T> product = Vector512.LoadUnsafe(ref source, column) * Vector512.Create(first);
            (twice ? product * Vector512.Create(second) : product).StoreUnsafe(ref target, column);
        }
        else if (typeof(TWidth) == typeof(Width256))
        {
            Vector256<T> product = Vector256.LoadUnsafe(ref source, column) * Vector256.Create(first);
            (twice ? product * Vector256.Create(second) : product).StoreUnsafe(ref target, column);
        }
        else if (typeof(TWidth) == typeof(Width128))
        {
            Vector128<T> product = Vector128.LoadUnsafe(ref source, column) * Vector128.Create(first);
            (twice ? product * Vector128.Create(second) : product).StoreUnsafe(ref target, column);
        }
        else
        {
            T product = Multiply(Unsafe.Add(ref source, column), first);
            Unsafe.Add(ref target, column) = twice ? Multiply(product, second) : product;
        }
    }

    /// <summary>
    /// <see cref="ScaleVector{TWidth, T}"/> of float16 columns: each product of two halves is exact in float32 and
    /// rounded once to half (<see cref="HalfConversions"/>), so the second factor multiplies the rounded first product.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ScaleHalves<TWidth>(ref Half source, Half first, Half second, bool twice, ref Half target, nuint column)
        where TWidth : IVectorWidth
    {
        float a = (float)first, b = (float)second;
        if (typeof(TWidth) == typeof(Width512))
        {
            Vector512<float> product = HalfConversions.Load512(ref source, column) * Vector512.Create(a);
            HalfConversions.Store(twice ? HalfConversions.RoundToHalf(product) * Vector512.Create(b) : product, ref target, column);
        }
        else if (typeof(TWidth) == typeof(Width256))
        {
            Vector256<float> product = HalfConversions.Load256(ref source, column) * Vector256.Create(a);
            HalfConversions.Store(twice ? HalfConversions.RoundToHalf(product) * Vector256.Create(b) : product, ref target, column);
        }
        else if (typeof(TWidth) == typeof(Width128))
        {
            Vector128<float> product = HalfConversions.Load128(ref source, column) * Vector128.Create(a);
            HalfConversions.Store(twice ? HalfConversions.RoundToHalf(product) * Vector128.Create(b) : product, ref target, column);
        }
        else
        {
            float product = (float)Unsafe.Add(ref source, column) * a;
            Unsafe.Add(ref target, column) = (Half)(twice ? (float)(Half)product * b : product);
        }
    }

    /// <summary>The sequential dot of two rows in the type, each product rounded before the add (see <see cref="PerSampleWeights{TElement, TIndex}"/>).</summary>
    private static T Dot<T>(ref T gradient, ref T weight, int dimension)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            return Unsafe.BitCast<float, T>(SequentialDot(ref Unsafe.As<T, float>(ref gradient), ref Unsafe.As<T, float>(ref weight), dimension));
        }

        if (typeof(T) == typeof(double))
        {
            return Unsafe.BitCast<double, T>(SequentialDot(ref Unsafe.As<T, double>(ref gradient), ref Unsafe.As<T, double>(ref weight), dimension));
        }

        if (typeof(T) == typeof(Half))
        {
            // c10::Half operators: the product rounded to half, then the sum rounded to half.
            // The products four at a time (HalfConversions rounds them as the casts do); the sum stays
            // sequential, rounded to half after every add. The running sum lives in every lane of a
            // vector, so each rounding is HalfConversions' (a chain of integer operations) rather than a
            // pair of scalar casts, which is the longer chain.
            ref Half g = ref Unsafe.As<T, Half>(ref gradient);
            ref Half w = ref Unsafe.As<T, Half>(ref weight);
            float dot = 0f;
            nint d = 0;
            if (Vector128.IsHardwareAccelerated)
            {
                Vector128<float> sum = Vector128<float>.Zero;
                for (; d <= dimension - Vector128<float>.Count; d += Vector128<float>.Count)
                {
                    Vector128<float> products = HalfConversions.RoundToHalf(HalfConversions.Load128(ref g, (nuint)d) * HalfConversions.Load128(ref w, (nuint)d));
                    sum = HalfConversions.RoundToHalf(sum + Vector128.Create(products.GetElement(0)));
                    sum = HalfConversions.RoundToHalf(sum + Vector128.Create(products.GetElement(1)));
                    sum = HalfConversions.RoundToHalf(sum + Vector128.Create(products.GetElement(2)));
                    sum = HalfConversions.RoundToHalf(sum + Vector128.Create(products.GetElement(3)));
                }

                dot = sum.ToScalar();
            }

            for (; d < dimension; d++)
            {
                float product = (float)(Half)((float)Unsafe.Add(ref g, d) * (float)Unsafe.Add(ref w, d));
                dot = (float)(Half)(dot + product);
            }

            return Unsafe.BitCast<Half, T>((Half)dot);
        }

        throw new NotSupportedException(typeof(T).Name);
    }

    /// <summary>The float32 and float64 dot: <c>acc = acc + g·w</c> from +0.0, two roundings per column.</summary>
    private static T SequentialDot<T>(ref T gradient, ref T weight, int dimension)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T dot = T.Zero;
        for (nint d = 0; d < dimension; d++)
        {
            dot += Unsafe.Add(ref gradient, d) * Unsafe.Add(ref weight, d);
        }

        return dot;
    }

    /// <summary>A value of the table's type, exactly, as a double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double ToDouble<T>(T value)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<T, float>(value)
        : typeof(T) == typeof(double) ? Unsafe.BitCast<T, double>(value)
        : typeof(T) == typeof(Half) ? (double)(float)Unsafe.BitCast<T, Half>(value)
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary>A double converted as c10 converts a scalar: float64 keeps it, float32 rounds once, float16 rounds to float, then to half.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T FromDouble<T>(double value)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>((float)value)
        : typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(value)
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)(float)value)
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary><c>rd(1 / count)</c> in the type: float32 a float division, float64 a double one; float16 a float division of 1 by the float count, rounded to half.</summary>
    private static T Reciprocal<T>(int count)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>(1f / count)
        : typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(1.0 / count)
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)(1f / count))
        : throw new NotSupportedException(typeof(T).Name);

    /// <summary><c>rd(a · b)</c> for a float32 or float64 (the scalar width of <see cref="ScaleVector{TWidth, T}"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static T Multiply<T>(T a, T b)
        where T : unmanaged =>
        typeof(T) == typeof(float) ? Unsafe.BitCast<float, T>(Unsafe.BitCast<T, float>(a) * Unsafe.BitCast<T, float>(b))
        : typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(Unsafe.BitCast<T, double>(a) * Unsafe.BitCast<T, double>(b))
        : throw new NotSupportedException(typeof(T).Name);
}
