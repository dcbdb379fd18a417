using System;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>
    /// Reduces bags of table rows: <c>torch.nn.functional.embedding_bag(indices, weight, offsets, mode=...)</c>
    /// for a 1-D input with offsets, bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D
    /// bag b covers positions [start(b), start(b+1)):  start(b) = offsets[b]; the last bag runs to indices.Length,
    ///     or, with includeLastOffset, offsets[K-1] must equal indices.Length and ends the last of K-1 bags
    /// require offsets[0] == 0, offsets non-decreasing and &lt;= indices.Length, every 0 &lt;= indices[i] &lt; rows
    ///                                                           // else throws, nothing written
    /// for each bag b:  P = its positions i with indices[i] != paddingIndex, in order
    ///   Sum:   destination[b] = +0.0; for i in P: destination[b] += weight[indices[i]]
    ///          with perSampleWeights w: destination[b] = fma(weight[indices[i]], w[i], destination[b]) when paddingIndex
    ///          is NoPadding, else destination[b] + fl(weight[indices[i]] * w[i])   (torch 1.13's two paths)
    ///   Mean:  the sum above, then destination[b] /= max(|P|, 1)                 (a true division)
    ///   Max:   destination[b][d] = the first maximum over i in P of weight[indices[i]][d] (strictly greater
    ///          replaces; NaN only if first); maxIndices[b][d] = the row it came from
    ///   a bag with P empty gives +0.0 in every mode (maxIndices -1)
    /// </code>
    /// In short: <c>destination[b] = reduce_{i ∈ P_b} weight[indices[i]]</c>. Each column accumulates over the
    /// bag in position order, so every mode is the same bits as torch 1.13 and as every vector width.
    /// Nothing is allocated once a call of the same size has run (the bag boundaries are pooled).
    /// </remarks>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <typeparam name="TOffset"><see cref="int"/> or <see cref="long"/>; it may differ from <typeparamref name="TIndex"/>, as in torch.</typeparam>
    /// <param name="indices">The row of every position.</param>
    /// <param name="offsets">Where each bag starts.</param>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> floats.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="mode">The reduction.</param>
    /// <param name="destination">Receives <c>bags × embeddingDim</c> floats.</param>
    /// <param name="includeLastOffset">torch's CSR form: the last offset ends the last bag.</param>
    /// <param name="perSampleWeights">Empty, or one weight per position (<see cref="EmbeddingBagMode.Sum"/> only).</param>
    /// <param name="paddingIndex">A normalised row whose positions count for nothing (see <see cref="NormalizePaddingIndex"/>), or <see cref="NoPadding"/>.</param>
    /// <param name="maxIndices">With <see cref="EmbeddingBagMode.Max"/>: receives <c>bags × embeddingDim</c> rows (the input of the max backward), or empty when only the values are wanted (faster: no positions are tracked); ignored otherwise.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside the table, <paramref name="embeddingDim"/> is not positive, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException">Malformed offsets; per-sample weights with mean or max (torch: NotImplementedError) or of the wrong length; an output too short or overlapping an input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="TIndex"/> or <typeparamref name="TOffset"/> is neither int nor long.</exception>
    public static void EmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<float> weight, int embeddingDim, EmbeddingBagMode mode, Span<float> destination, bool includeLastOffset = false, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBag(indices, offsets, weight, embeddingDim, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);

    // RS0026 guards against overloads a call could not tell apart; these differ in the table's element
    // type, which every call fixes through its weight span.
#pragma warning disable RS0026
    /// <summary>The bag forward of a float64 table: every sum, product and division in double (a weighted sum rounds the product, then adds: torch 1.13 does not fuse here).</summary>
    /// <inheritdoc cref="EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/>
    public static void EmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<double> weight, int embeddingDim, EmbeddingBagMode mode, Span<double> destination, bool includeLastOffset = false, ReadOnlySpan<double> perSampleWeights = default, long paddingIndex = NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagAtWidth(indices, offsets, weight, embeddingDim, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);

    /// <summary>
    /// The bag forward of a float16 table, as torch 1.13 computes it: sums accumulate in float32
    /// (<c>acc + float(w)·float(psw)</c>, the product exact) and round to half once per bag; the mean is
    /// <c>half(float(half(sum)) / max(|P|, 1))</c>; the max compares the widened values and returns the winning half.
    /// </summary>
    /// <inheritdoc cref="EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/>
    public static void EmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<Half> weight, int embeddingDim, EmbeddingBagMode mode, Span<Half> destination, bool includeLastOffset = false, ReadOnlySpan<Half> perSampleWeights = default, long paddingIndex = NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagAtWidth(indices, offsets, weight, embeddingDim, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);

#pragma warning restore RS0026

    /// <summary>
    /// Reduces fixed-size bags: <c>torch.nn.functional.embedding_bag</c> for a 2-D <c>[B, bagSize]</c> input
    /// (flattened row-major), which torch treats as <c>B</c> bags of exactly <paramref name="bagSize"/> positions.
    /// </summary>
    /// <remarks>The arithmetic of <see cref="EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/> with <c>start(b) = b · bagSize</c>.</remarks>
    /// <param name="indices">The flattened <c>[B, bagSize]</c> input.</param>
    /// <param name="bagSize">Positions per bag; positive and dividing <c>indices.Length</c> (torch: a <c>(B, 0)</c> input raises).</param>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> floats.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="mode">The reduction.</param>
    /// <param name="destination">Receives <c>B × embeddingDim</c> floats.</param>
    /// <param name="perSampleWeights">Empty, or one weight per position (<see cref="EmbeddingBagMode.Sum"/> only).</param>
    /// <param name="paddingIndex">A normalised row whose positions count for nothing, or <see cref="NoPadding"/>.</param>
    /// <param name="maxIndices">With <see cref="EmbeddingBagMode.Max"/>: receives <c>B × embeddingDim</c> rows, or empty for the values only; ignored otherwise.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside the table, <paramref name="embeddingDim"/> is not positive, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException">A bad bag size; per-sample weights with mean or max or of the wrong length; an output too short or overlapping an input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="TIndex"/> is neither int nor long.</exception>
    public static void EmbeddingBag<TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<float> weight, int embeddingDim, EmbeddingBagMode mode, Span<float> destination, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBag(indices, bagSize, weight, embeddingDim, mode, destination, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);

#pragma warning disable RS0026 // as above: the overloads differ in the table's element type
    /// <summary>Fixed-size bags of a float64 table (the arithmetic of the offsets overload for float64).</summary>
    /// <inheritdoc cref="EmbeddingBag{TIndex}(ReadOnlySpan{TIndex}, int, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, ReadOnlySpan{float}, long, Span{long})"/>
    public static void EmbeddingBag<TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<double> weight, int embeddingDim, EmbeddingBagMode mode, Span<double> destination, ReadOnlySpan<double> perSampleWeights = default, long paddingIndex = NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagAtWidth(indices, bagSize, weight, embeddingDim, mode, destination, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);

    /// <summary>Fixed-size bags of a float16 table (the arithmetic of the offsets overload for float16: float32 accumulation, one rounding).</summary>
    /// <inheritdoc cref="EmbeddingBag{TIndex}(ReadOnlySpan{TIndex}, int, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, ReadOnlySpan{float}, long, Span{long})"/>
    public static void EmbeddingBag<TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<Half> weight, int embeddingDim, EmbeddingBagMode mode, Span<Half> destination, ReadOnlySpan<Half> perSampleWeights = default, long paddingIndex = NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagAtWidth(indices, bagSize, weight, embeddingDim, mode, destination, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);

#pragma warning restore RS0026

    /// <summary>The number of bags 1-D offsets describe, after validating them as <c>EmbeddingBag</c> does (the rows the destination needs).</summary>
    /// <param name="offsets">Where each bag starts (int or long).</param>
    /// <param name="numIndices">The input's length.</param>
    /// <param name="includeLastOffset">torch's CSR form.</param>
    /// <exception cref="ArgumentException">Malformed offsets.</exception>
    public static long EmbeddingBagCount<TOffset>(ReadOnlySpan<TOffset> offsets, long numIndices, bool includeLastOffset = false)
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        ArgumentOutOfRangeException.ThrowIfNegative(numIndices);
        return BagsBuilder.TryCountBags(offsets, numIndices, includeLastOffset, out long count) is { } error
            ? throw new ArgumentException(error, nameof(offsets))
            : count;
    }

    /// <summary>The float32 offsets span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<float> weight, int embeddingDim, EmbeddingBagMode mode, Span<float> destination, bool includeLastOffset, ReadOnlySpan<float> perSampleWeights, long paddingIndex, Span<long> maxIndices, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        EmbeddingBagAtWidth(indices, offsets, weight, embeddingDim, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, width, threads);

    /// <summary>The float32 fixed-size span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBag<TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<float> weight, int embeddingDim, EmbeddingBagMode mode, Span<float> destination, ReadOnlySpan<float> perSampleWeights, long paddingIndex, Span<long> maxIndices, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        EmbeddingBagAtWidth(indices, bagSize, weight, embeddingDim, mode, destination, perSampleWeights, paddingIndex, maxIndices, width, threads);

    /// <summary>The offsets span overload of any table type with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBagAtWidth<TElement, TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<TElement> weight, int embeddingDim, EmbeddingBagMode mode, Span<TElement> destination, bool includeLastOffset, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, Span<long> maxIndices, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        long rows = CheckBagArguments(indices, weight.Length, TableRowsFromLength, embeddingDim, mode, perSampleWeights, paddingIndex);
        EmbeddingBagOfRows(indices, offsets, in MemoryMarshal.GetReference(weight), rows, embeddingDim, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, width, threads);
    }

    /// <summary>
    /// The offsets bag over a table given by its first element and row count rather than a span: a mapped
    /// table file (<see cref="EmbeddingTable"/>) may hold more than <see cref="int.MaxValue"/> elements.
    /// Validates as the span overload does; <paramref name="weight"/> must hold <c>rows × embeddingDim</c> elements.
    /// </summary>
    internal static void EmbeddingBagAtWidth<TElement, TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ref readonly TElement weight, long rows, int embeddingDim, EmbeddingBagMode mode, Span<TElement> destination, bool includeLastOffset, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, Span<long> maxIndices, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        CheckBagArguments(indices, rows * embeddingDim, rows, embeddingDim, mode, perSampleWeights, paddingIndex);
        EmbeddingBagOfRows(indices, offsets, in weight, rows, embeddingDim, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, width, threads);
    }

    /// <summary>The offsets bag once the arguments are checked: builds the bags, checks the outputs against them, runs.</summary>
    private static void EmbeddingBagOfRows<TElement, TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ref readonly TElement weight, long rows, int embeddingDim, EmbeddingBagMode mode, Span<TElement> destination, bool includeLastOffset, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, Span<long> maxIndices, VectorWidth width, int threads)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        if (BagsBuilder.TryCreateBags<TIndex, TOffset, TElement>(indices, offsets, includeLastOffset, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled) is { } error)
        {
            throw new ArgumentException(error, perSampleWeights.IsEmpty || perSampleWeights.Length == indices.Length ? nameof(offsets) : nameof(perSampleWeights));
        }

        using (pooled)
        {
            Bags<TIndex> bags = pooled.Bags;
            CheckBagOutputs(bags, MemoryMarshal.AsBytes(offsets), in weight, rows, embeddingDim, mode, destination, maxIndices);
            RunBag(bags, in weight, rows, embeddingDim, mode, destination, maxIndices, width, threads);
        }
    }

    /// <summary>The fixed-size span overload of any table type with the vector width chosen by the caller (tests force each width).</summary>
    internal static void EmbeddingBagAtWidth<TElement, TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<TElement> weight, int embeddingDim, EmbeddingBagMode mode, Span<TElement> destination, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex, Span<long> maxIndices, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long rows = CheckBagArguments(indices, weight.Length, TableRowsFromLength, embeddingDim, mode, perSampleWeights, paddingIndex);
        if (BagsBuilder.TryCreateFixedBags<TIndex, TElement>(indices, bagSize, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled) is { } error)
        {
            throw new ArgumentException(error, perSampleWeights.IsEmpty || perSampleWeights.Length == indices.Length ? nameof(bagSize) : nameof(perSampleWeights));
        }

        using (pooled)
        {
            Bags<TIndex> bags = pooled.Bags;
            CheckBagOutputs(bags, default, in MemoryMarshal.GetReference(weight), rows, embeddingDim, mode, destination, maxIndices);
            RunBag(bags, in MemoryMarshal.GetReference(weight), rows, embeddingDim, mode, destination, maxIndices, width, threads);
        }
    }

    /// <summary>
    /// The validated core shared by the span API and the C ABI: checks every index (on the calling
    /// thread), then reduces every bag; large calls split the bags into contiguous ranges of about
    /// equal work (positions plus bags), each reduced by the one-thread kernel into its own output rows.
    /// Shapes, mode, per-sample weights, padding and buffers are the caller's responsibility
    /// (<paramref name="maxIndices"/> may be a null reference except in max mode).
    /// </summary>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was written.</returns>
    internal static unsafe nint EmbeddingBag<TElement, TIndex>(ref readonly TElement weight, long rows, int dimension, scoped in Bags<TIndex> bags, EmbeddingBagMode mode, ref TElement destination, ref long maxIndices, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        nint bad = BagsBuilder.FindFirstBadIndex(bags, rows);
        if (bad >= 0 || bags.Count == 0 || dimension == 0)
        {
            return bad;
        }

        bool weighted = mode == EmbeddingBagMode.Sum && bags.IsWeighted;
        ref TIndex indices = ref MemoryMarshal.GetReference(bags.Indices);
        ref long starts = ref MemoryMarshal.GetReference(bags.Starts);
        ref TElement perSampleWeights = ref weighted ? ref MemoryMarshal.GetReference(bags.PerSampleWeightsOf<TElement>()) : ref Unsafe.NullRef<TElement>();
        width = KernelDispatch.FitWidth(width, dimension, GenericBag<TElement, TIndex, BagSum>.LaneBytes);
        long positions = bags.Starts[bags.Count] - bags.Starts[0];
        threads = EmbeddingThreads.For(sizeof(TElement) * (long)dimension * (positions + bags.Count), bags.Count, threads);
        if (threads == 1)
        {
            BagRange(in weight, rows, dimension, ref indices, ref starts, bags.Count, bags.PaddingIndex, mode, weighted, ref perSampleWeights, ref destination, ref maxIndices, width);
            return -1;
        }

        fixed (TElement* table = &Unsafe.AsRef(in weight))
        fixed (TIndex* first = &indices)
        fixed (long* bounds = &starts)
        fixed (TElement* sampleWeights = &perSampleWeights)
        fixed (TElement* output = &destination)
        fixed (long* argMax = &maxIndices)
        {
            var work = new BagWork<TElement, TIndex>
            {
                Weight = table, Rows = rows, Indices = first, Starts = bounds, Count = bags.Count, PaddingIndex = bags.PaddingIndex, Mode = mode, Weighted = weighted,
                PerSampleWeights = sampleWeights, Destination = output, MaxIndices = argMax, Dimension = dimension, Width = width,
            };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, bags.Count), threads);
        }

        return -1;
    }

    /// <summary>Reduces <paramref name="count"/> bags whose boundaries start at <paramref name="starts"/> (positions stay absolute) into <paramref name="destination"/>.</summary>
    private static void BagRange<TElement, TIndex>(ref readonly TElement weight, long rows, int dimension, ref TIndex indices, ref long starts, nint count, long paddingIndex, EmbeddingBagMode mode, bool weighted, ref TElement perSampleWeights, ref TElement destination, ref long maxIndices, VectorWidth width)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        BagKernel<TElement, TIndex> kernel = mode switch
        {
            EmbeddingBagMode.Max => BagKernelFor<TElement, TIndex, BagMax>(dimension, width),
            EmbeddingBagMode.Mean => BagKernelFor<TElement, TIndex, BagMean>(dimension, width),
            // The generated weighted kernels fuse as torch's AVX2 + FMA lookups do; elsewhere the generic one rounds.
            _ when weighted && !TorchProducts.LookupsAreFused => GenericBag<TElement, TIndex, BagWeightedSum>.At(width),
            _ when weighted => BagKernelFor<TElement, TIndex, BagWeightedSum>(dimension, width),
            _ => BagKernelFor<TElement, TIndex, BagSum>(dimension, width),
        };
        kernel(in weight, rows, dimension, in indices, in starts, count, paddingIndex, in perSampleWeights, ref destination, ref maxIndices);
    }

    /// <summary>The bag-forward kernel of <typeparamref name="TMode"/> for a <typeparamref name="TElement"/> table: a specialised one when a registered set has it, else the generic one.</summary>
    private static BagKernel<TElement, TIndex> BagKernelFor<TElement, TIndex, TMode>(int dimension, VectorWidth width)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TMode : IBagMode =>
        KernelDispatch.Find(
            new KernelKey(TMode.Operation, TableElements.TypeOf<TElement>(), KernelDispatch.IndexTypeOf<TIndex>(), dimension, width),
            GenericBag<TElement, TIndex, TMode>.At(width));

    /// <summary>
    /// The first bag of piece <paramref name="part"/> of <paramref name="parts"/> when bag b costs its positions
    /// plus one: the first b with <c>starts[b] - starts[0] + b</c> at least the piece's share (a binary search;
    /// the cost is strictly increasing in b).
    /// </summary>
    internal static unsafe int BagBoundary(long* starts, int count, int part, int parts)
    {
        if (part >= parts)
        {
            return count;
        }

        long target = EmbeddingThreads.Boundary(starts[count] - starts[0] + count, part, parts);
        int low = 0, high = count;
        while (low < high)
        {
            int middle = (int)(((uint)low + (uint)high) >> 1);
            if (starts[middle] - starts[0] + middle < target)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }

        return low;
    }

    /// <summary>One piece of a parallel bag forward: a contiguous range of bags and their output rows.</summary>
    private unsafe struct BagWork<TElement, TIndex> : IParallelWork
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        public TElement* Weight;
        public long Rows;
        public TIndex* Indices;
        public long* Starts;
        public int Count;
        public long PaddingIndex;
        public EmbeddingBagMode Mode;
        public bool Weighted;
        public TElement* PerSampleWeights;
        public TElement* Destination;
        public long* MaxIndices;
        public int Dimension;
        public VectorWidth Width;

        public readonly void Execute(int part, int parts)
        {
            int first = BagBoundary(Starts, Count, part, parts), end = BagBoundary(Starts, Count, part + 1, parts);
            if (end <= first)
            {
                return;
            }

            nint offset = (nint)first * Dimension;
            ref TElement sampleWeights = ref PerSampleWeights == null ? ref Unsafe.NullRef<TElement>() : ref *PerSampleWeights;
            ref long argMax = ref MaxIndices == null ? ref Unsafe.NullRef<long>() : ref MaxIndices[offset];
            BagRange(in *Weight, Rows, Dimension, ref *Indices, ref Starts[first], end - first, PaddingIndex, Mode, Weighted, ref sampleWeights, ref Destination[offset], ref argMax, Width);
        }
    }

    /// <summary>torch's text for per-sample weights with a mode other than sum (Python raises NotImplementedError).</summary>
    internal static string WeightsNeedSum(EmbeddingBagMode mode) => string.Create(CultureInfo.InvariantCulture,
        $"embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for mode='sum' (got mode='{mode.ToString().ToLowerInvariant()}'). Please open a feature request on GitHub.");

    /// <summary>
    /// Why torch 1.13 has no CPU bag forward for <paramref name="table"/>, or null when it has one (float64,
    /// float32, float16). bfloat16 is refused there ("Expected tensor for argument #1 'weight' to have one of
    /// the following scalar types: Half, Float, Double; but got CPUBFloat16Type instead").
    /// </summary>
    internal static string? BagTableTypeError(EmbeddingType table) => table switch
    {
        EmbeddingType.Float32 or EmbeddingType.Float64 or EmbeddingType.Float16 => null,
        EmbeddingType.BFloat16 => "embedding_bag: torch 1.13 has no bfloat16 EmbeddingBag on CPU (it takes float16, float32 and float64 weights: \"Expected tensor for argument #1 'weight' to have one of the following scalar types: Half, Float, Double; but got CPUBFloat16Type instead\")",
        _ => $"embedding_bag: {TableElements.Name(table)} is not a table type",
    };

    /// <summary>The <c>rows</c> argument of <see cref="CheckBagArguments"/> that asks for the rows a weight span's length makes.</summary>
    private const long TableRowsFromLength = -1;

    /// <summary>
    /// Checks what does not depend on the layout; returns the table's row count: <paramref name="rows"/>, or
    /// with <see cref="TableRowsFromLength"/> the whole rows in <paramref name="weightElements"/> (which must be a multiple of the dimension).
    /// </summary>
    private static long CheckBagArguments<TElement, TIndex>(ReadOnlySpan<TIndex> indices, long weightElements, long rows, int embeddingDim, EmbeddingBagMode mode, ReadOnlySpan<TElement> perSampleWeights, long paddingIndex)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckIndexType<TIndex>(nameof(TIndex));
        if (BagTableTypeError(TableElements.TypeOf<TElement>()) is { } typeError)
        {
            throw new NotSupportedException(typeError);
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (mode is not (EmbeddingBagMode.Sum or EmbeddingBagMode.Mean or EmbeddingBagMode.Max))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "mode has to be one of sum, mean or max");
        }

        if (rows == TableRowsFromLength)
        {
            if (weightElements % embeddingDim != 0)
            {
                throw new ArgumentException($"The weight holds {weightElements} elements, which is not a whole number of rows of {embeddingDim}.", "weight");
            }

            rows = weightElements / embeddingDim;
        }

        if (!perSampleWeights.IsEmpty && mode != EmbeddingBagMode.Sum)
        {
            throw new ArgumentException(WeightsNeedSum(mode), nameof(perSampleWeights));
        }

        if (!IsValidPaddingRow(paddingIndex, rows))
        {
            throw new ArgumentOutOfRangeException(nameof(paddingIndex), paddingIndex, PaddingRowOutOfRange(paddingIndex, rows));
        }

        return rows;
    }

    /// <summary>Checks the outputs against the layout: long enough, and disjoint from every input and from each other.</summary>
    private static void CheckBagOutputs<TElement, TIndex>(scoped in Bags<TIndex> bags, ReadOnlySpan<byte> offsets, ref readonly TElement weight, long rows, int embeddingDim, EmbeddingBagMode mode, Span<TElement> destination, Span<long> maxIndices)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long required = (long)bags.Count * embeddingDim;
        if (destination.Length < required)
        {
            throw new ArgumentException($"The destination holds {destination.Length} elements; {bags.Count} bags × {embeddingDim} columns need {required}.", nameof(destination));
        }

        bool max = mode == EmbeddingBagMode.Max && !maxIndices.IsEmpty;
        if (max && maxIndices.Length < required)
        {
            throw new ArgumentException($"maxIndices holds {maxIndices.Length} longs; {bags.Count} bags × {embeddingDim} columns need {required} (or pass none for the values only).", nameof(maxIndices));
        }

        Span<byte> written = MemoryMarshal.AsBytes(destination[..(int)required]);
        Span<byte> argMax = max ? MemoryMarshal.AsBytes(maxIndices[..(int)required]) : default;
        ReadOnlySpan<byte> indices = MemoryMarshal.AsBytes(bags.Indices), weights = MemoryMarshal.AsBytes(bags.PerSampleWeightsOf<TElement>());
        long tableBytes = rows * embeddingDim * Unsafe.SizeOf<TElement>();
        ref readonly byte table = ref Unsafe.As<TElement, byte>(ref Unsafe.AsRef(in weight));
        if (OverlapsTable(written, in table, tableBytes) || written.Overlaps(indices) || written.Overlaps(offsets) || written.Overlaps(weights) || written.Overlaps(argMax))
        {
            throw new ArgumentException("The destination overlaps the weight, the indices, the offsets, the per-sample weights or maxIndices.", nameof(destination));
        }

        if (OverlapsTable(argMax, in table, tableBytes) || argMax.Overlaps(indices) || argMax.Overlaps(offsets) || argMax.Overlaps(weights))
        {
            throw new ArgumentException("maxIndices overlaps the weight, the indices, the offsets or the per-sample weights.", nameof(maxIndices));
        }
    }

    /// <summary>Whether <paramref name="span"/> shares a byte with the <paramref name="tableBytes"/> bytes at <paramref name="table"/> (a table may be longer than a span).</summary>
    internal static bool OverlapsTable(ReadOnlySpan<byte> span, ref readonly byte table, long tableBytes)
    {
        if (span.IsEmpty || tableBytes == 0)
        {
            return false;
        }

        // The span's start measured from the table's (byrefs, as MemoryExtensions.Overlaps measures: GC-safe).
        long offset = Unsafe.ByteOffset(ref Unsafe.AsRef(in table), ref MemoryMarshal.GetReference(span));
        return offset < tableBytes && offset > -(long)span.Length;
    }

    private static void RunBag<TElement, TIndex>(scoped in Bags<TIndex> bags, ref readonly TElement weight, long rows, int embeddingDim, EmbeddingBagMode mode, Span<TElement> destination, Span<long> maxIndices, VectorWidth width, int threads)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref long argMax = ref mode == EmbeddingBagMode.Max && !maxIndices.IsEmpty ? ref MemoryMarshal.GetReference(maxIndices) : ref Unsafe.NullRef<long>();
        nint bad = EmbeddingBag(in weight, rows, embeddingDim, bags, mode, ref MemoryMarshal.GetReference(destination), ref argMax, width, threads);
        ThrowIfBadIndex(bags.Indices, bad, rows);
    }

    private static void CheckIndexType<T>(string typeParameter)
    {
        if (typeof(T) != typeof(int) && typeof(T) != typeof(long))
        {
            throw new NotSupportedException($"{typeParameter} must be int or long, not {typeof(T).Name} (torch takes int32 and int64 indices and offsets).");
        }
    }
}
