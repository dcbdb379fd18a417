using System;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    // RS0026 guards against overloads a call could not tell apart; the bag overloads differ in their second
    // parameter (offsets, or a fixed bag size), which every call gives, as the float bag's do.
#pragma warning disable RS0026
    /// <summary>
    /// Bags of a row-wise quantized table: torch 1.13's <c>quantized::embedding_bag_{byte,4bit,2bit}_rowwise_offsets</c>
    /// for a 1-D input with offsets, bit for bit, dequantizing each row as it is added (no float row is ever made).
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = layout.Dimension, rows = packed.Length / layout.RowBytes     (row r: codes, then scale and bias; see QuantizedRowLayout)
    /// mapped = compressedIndicesMapping is not empty
    /// bag b covers positions [start(b), start(b+1)) as in EmbeddingBag (offsets[0] == 0, non-decreasing, &lt;= indices.Length)
    /// require every 0 &lt;= indices[i] &lt; (mapped ? mapping.Length : rows)
    /// require, when mapped, every mapping[indices[i]] == -1 or 0 &lt;= mapping[indices[i]] &lt; rows
    ///                                                                  // else throws, nothing written
    /// for each bag b:
    ///   out = destination[b]; out[:] = +0.0; count = 0
    ///   for i in start(b) .. start(b+1)-1, in order:
    ///     if indices[i] == paddingIndex: continue                     // adds nothing, not counted
    ///     count += 1
    ///     r = mapped ? mapping[indices[i]] : indices[i]
    ///     if r == -1: continue                                         // pruned: counted, adds nothing
    ///     w = perSampleWeights[i] or 1.0f
    ///     s = w * scale(r); c = w * bias(r)                            // float products (float16 scale/bias widened first)
    ///     for j in 0 .. D-1:
    ///       out[j] = (float)((double)s * code(r, j) + (double)(out[j] + c))   // torch's fma(float, uint8_t, float): double
    ///   Mean: out[j] = out[j] / max(count, 1)                          // a float division
    /// </code>
    /// In short: <c>destination[b] = Σ_{i ∈ b} w_i·(scale·codes + bias)</c>, rounded as torch rounds it (the float
    /// sum <c>out + c</c> first, then the double multiply-add, then to float: twice, which a float FMA would not do).
    /// <para>
    /// Where this differs from torch 1.13 (docs/divergences.md): torch ignores <c>mode</c> and always sums, so
    /// <see cref="EmbeddingBagMode.Mean"/> here is our own true mean; torch has no padding index (ours is the float
    /// bag's); torch reads out-of-range mapping entries and short per-sample weights out of bounds, accepts
    /// <c>offsets[0] != 0</c>, and crashes on empty offsets: all refused or handled here. torch treats a mapping of
    /// exactly <c>[0]</c> as "not pruned": pass an empty mapping for that.
    /// </para>
    /// Every column accumulates over the bag in position order, so every vector width gives the same bits.
    /// Nothing is allocated once a call of the same size has run (the bag boundaries are pooled).
    /// </remarks>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <typeparam name="TOffset"><see cref="int"/> or <see cref="long"/>; it may differ from <typeparamref name="TIndex"/>.</typeparam>
    /// <param name="indices">The row (or, with a mapping, the uncompressed row) of every position.</param>
    /// <param name="offsets">Where each bag starts.</param>
    /// <param name="packed">The packed table: <c>rows × layout.RowBytes</c> bytes, torch's prepacked weight byte for byte.</param>
    /// <param name="layout">The code width and the columns per row (positive).</param>
    /// <param name="mode"><see cref="EmbeddingBagMode.Sum"/> or <see cref="EmbeddingBagMode.Mean"/>.</param>
    /// <param name="destination">Receives <c>bags × layout.Dimension</c> floats.</param>
    /// <param name="includeLastOffset">torch's CSR form: the last offset ends the last bag.</param>
    /// <param name="perSampleWeights">Empty, or one float32 weight per position (<see cref="EmbeddingBagMode.Sum"/> only).</param>
    /// <param name="paddingIndex">An index whose positions count for nothing (a value of <paramref name="indices"/>, so an entry of the mapping when pruned), or <see cref="NoPadding"/>.</param>
    /// <param name="compressedIndicesMapping">Empty, or torch's <c>compressed_indices_mapping</c> of a pruned table: index i selects packed row <c>mapping[i]</c>, or nothing when that is -1.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index, a mapping entry or <paramref name="paddingIndex"/> is out of range, the layout's bits or dimension are invalid, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException">The packed length is not a whole number of rows; malformed offsets; per-sample weights with mean or of the wrong length; an output too short or overlapping an input.</exception>
    /// <exception cref="NotSupportedException"><see cref="EmbeddingBagMode.Max"/> (a quantized bag sums), or <typeparamref name="TIndex"/> or <typeparamref name="TOffset"/> is neither int nor long.</exception>
    public static void QuantizedEmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, bool includeLastOffset = false, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<int> compressedIndicesMapping = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        QuantizedEmbeddingBag(indices, offsets, packed, layout, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, compressedIndicesMapping, KernelDispatch.BestWidth);

    /// <summary>
    /// Fixed-size bags of a quantized table: torch's quantized bag ops for a 2-D <c>[B, bagSize]</c> input
    /// (flattened row-major), <c>B</c> bags of exactly <paramref name="bagSize"/> positions.
    /// </summary>
    /// <remarks>The arithmetic of <see cref="QuantizedEmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{byte}, QuantizedRowLayout, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, ReadOnlySpan{int})"/> with <c>start(b) = b · bagSize</c>.</remarks>
    /// <param name="indices">The flattened <c>[B, bagSize]</c> input.</param>
    /// <param name="bagSize">Positions per bag; positive and dividing <c>indices.Length</c>.</param>
    /// <param name="packed">The packed table: <c>rows × layout.RowBytes</c> bytes.</param>
    /// <param name="layout">The code width and the columns per row (positive).</param>
    /// <param name="mode"><see cref="EmbeddingBagMode.Sum"/> or <see cref="EmbeddingBagMode.Mean"/>.</param>
    /// <param name="destination">Receives <c>B × layout.Dimension</c> floats.</param>
    /// <param name="perSampleWeights">Empty, or one float32 weight per position (<see cref="EmbeddingBagMode.Sum"/> only).</param>
    /// <param name="paddingIndex">An index whose positions count for nothing, or <see cref="NoPadding"/>.</param>
    /// <param name="compressedIndicesMapping">Empty, or the mapping of a pruned table.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index, a mapping entry or <paramref name="paddingIndex"/> is out of range, the layout's bits or dimension are invalid, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException">A bad bag size or packed length; per-sample weights with mean or of the wrong length; an output too short or overlapping an input.</exception>
    /// <exception cref="NotSupportedException"><see cref="EmbeddingBagMode.Max"/>, or <typeparamref name="TIndex"/> is neither int nor long.</exception>
    public static void QuantizedEmbeddingBag<TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = NoPadding, ReadOnlySpan<int> compressedIndicesMapping = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        QuantizedEmbeddingBag(indices, bagSize, packed, layout, mode, destination, perSampleWeights, paddingIndex, compressedIndicesMapping, KernelDispatch.BestWidth);
#pragma warning restore RS0026

    /// <summary>
    /// Looks up rows of a row-wise quantized table, dequantized: torch 1.13's <c>quantized::embedding_byte</c> /
    /// <c>embedding_4bit</c> (<c>torch.ao.nn.quantized.Embedding</c>), bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// for i in 0 .. indices.Length-1:                                  // torch: a bag of one per index
    ///   r = mapped ? mapping[indices[i]] : indices[i]                  // validated as in QuantizedEmbeddingBag
    ///   destination[i][j] = r == -1 ? +0.0 : (float)((double)scale(r) * code(r, j) + (double)(0.0f + bias(r)))
    /// </code>
    /// torch crashes on an empty input; here it gives an empty result. 2-bit tables work too (torch has no
    /// 2-bit lookup op, but its bag op computes the same).
    /// </remarks>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <param name="indices">Row indices (or, with a mapping, uncompressed rows), any count (flatten N-d inputs row-major).</param>
    /// <param name="packed">The packed table: <c>rows × layout.RowBytes</c> bytes.</param>
    /// <param name="layout">The code width and the columns per row (positive).</param>
    /// <param name="destination">Receives <c>indices.Length × layout.Dimension</c> floats.</param>
    /// <param name="compressedIndicesMapping">Empty, or the mapping of a pruned table.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or a mapping entry is out of range, or the layout's bits or dimension are invalid.</exception>
    /// <exception cref="ArgumentException">The packed length is not a whole number of rows, or the destination is too short or overlaps an input.</exception>
    /// <exception cref="NotSupportedException"><typeparamref name="TIndex"/> is neither int nor long.</exception>
    public static void QuantizedEmbedding<TIndex>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, Span<float> destination, ReadOnlySpan<int> compressedIndicesMapping = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        QuantizedEmbedding(indices, packed, layout, destination, compressedIndicesMapping, KernelDispatch.BestWidth);

    /// <summary>The offsets span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void QuantizedEmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, bool includeLastOffset, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<int> compressedIndicesMapping, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        QuantizedEmbeddingBag(indices, offsets, in MemoryMarshal.GetReference(packed), packed.Length, layout, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, compressedIndicesMapping, width, threads);
    }

    /// <summary>
    /// The offsets bag over a packed table given by its first byte and length rather than a span: a mapped
    /// table file (<see cref="EmbeddingTable"/>) may hold more than <see cref="int.MaxValue"/> bytes.
    /// Validates as the span overload does.
    /// </summary>
    internal static void QuantizedEmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, ref readonly byte packed, long packedBytes, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, bool includeLastOffset, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<int> compressedIndicesMapping, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckIndexType<TOffset>(nameof(TOffset));
        long rows = CheckQuantizedArguments(indices, packedBytes, layout, mode, perSampleWeights, paddingIndex, compressedIndicesMapping);
        if (BagsBuilder.TryCreateBags(indices, offsets, includeLastOffset, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled) is { } error)
        {
            throw new ArgumentException(error, perSampleWeights.IsEmpty || perSampleWeights.Length == indices.Length ? nameof(offsets) : nameof(perSampleWeights));
        }

        using (pooled)
        {
            RunQuantizedBag(pooled.Bags, MemoryMarshal.AsBytes(offsets), in packed, packedBytes, rows, layout, mode, destination, compressedIndicesMapping, width, threads);
        }
    }

    /// <summary>The fixed-size span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void QuantizedEmbeddingBag<TIndex>(ReadOnlySpan<TIndex> indices, int bagSize, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<int> compressedIndicesMapping, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long rows = CheckQuantizedArguments(indices, packed.Length, layout, mode, perSampleWeights, paddingIndex, compressedIndicesMapping);
        if (BagsBuilder.TryCreateFixedBags(indices, bagSize, perSampleWeights, paddingIndex, out PooledBags<TIndex> pooled) is { } error)
        {
            throw new ArgumentException(error, perSampleWeights.IsEmpty || perSampleWeights.Length == indices.Length ? nameof(bagSize) : nameof(perSampleWeights));
        }

        using (pooled)
        {
            RunQuantizedBag(pooled.Bags, default, in MemoryMarshal.GetReference(packed), packed.Length, rows, layout, mode, destination, compressedIndicesMapping, width, threads);
        }
    }

    /// <summary>The lookup with the vector width chosen by the caller: bags of one position each, as torch computes it.</summary>
    internal static void QuantizedEmbedding<TIndex>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, Span<float> destination, ReadOnlySpan<int> compressedIndicesMapping, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        QuantizedEmbedding(indices, in MemoryMarshal.GetReference(packed), packed.Length, layout, destination, compressedIndicesMapping, width, threads);

    /// <summary>The lookup over a packed table given by its first byte and length (a mapped table file may exceed a span).</summary>
    internal static void QuantizedEmbedding<TIndex>(ReadOnlySpan<TIndex> indices, ref readonly byte packed, long packedBytes, QuantizedRowLayout layout, Span<float> destination, ReadOnlySpan<int> compressedIndicesMapping, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long rows = CheckQuantizedArguments(indices, packedBytes, layout, EmbeddingBagMode.Sum, default, NoPadding, compressedIndicesMapping);
        if (BagsBuilder.TryCreateFixedBags(indices, 1, default, NoPadding, out PooledBags<TIndex> pooled) is { } error)
        {
            throw new ArgumentException(error, nameof(indices));
        }

        using (pooled)
        {
            RunQuantizedBag(pooled.Bags, default, in packed, packedBytes, rows, layout, EmbeddingBagMode.Sum, destination, compressedIndicesMapping, width, threads);
        }
    }

    /// <summary>
    /// The validated core shared by the span API and the C ABI: checks every index and, when pruned, every
    /// mapping entry the indices select (on the calling thread), then reduces every bag; large calls split the
    /// bags into contiguous ranges of about equal work (positions plus bags), each reduced by the one-thread
    /// kernel into its own output rows, so the bits do not depend on the thread count. Shapes, mode, weights,
    /// padding and buffers are the caller's responsibility.
    /// </summary>
    /// <param name="packed">First byte of <paramref name="rows"/> packed rows.</param>
    /// <param name="rows">Packed rows.</param>
    /// <param name="layout">A valid layout (positive dimension).</param>
    /// <param name="bags">The validated bag layout (per-sample weights float32).</param>
    /// <param name="mean">True for the mean, false for the sum.</param>
    /// <param name="mapping">The pruning map, or empty.</param>
    /// <param name="destination">First of <c>bags.Count × layout.Dimension</c> floats.</param>
    /// <param name="width">The widest vector width to use.</param>
    /// <param name="threads">The thread ceiling, or <see cref="EmbeddingThreads.UseCount"/>.</param>
    /// <returns>Success, or the first bad position and what is wrong there; then nothing was written.</returns>
    internal static unsafe QuantizedLookupFailure QuantizedEmbeddingBag<TIndex>(ref readonly byte packed, long rows, QuantizedRowLayout layout, scoped in Bags<TIndex> bags, bool mean, ReadOnlySpan<int> mapping, ref float destination, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        if (FindBadQuantizedIndex(bags.Indices, rows, mapping) is { IsFailure: true } failure)
        {
            return failure;
        }

        if (bags.Count == 0)
        {
            return QuantizedLookupFailure.None;
        }

        int dimension = layout.Dimension;
        ref TIndex indices = ref MemoryMarshal.GetReference(bags.Indices);
        ref long starts = ref MemoryMarshal.GetReference(bags.Starts);
        ref int map = ref mapping.IsEmpty ? ref Unsafe.NullRef<int>() : ref MemoryMarshal.GetReference(mapping);
        ref float perSampleWeights = ref bags.IsWeighted ? ref MemoryMarshal.GetReference(bags.PerSampleWeights) : ref Unsafe.NullRef<float>();
        QuantizedBagKernel<TIndex> kernel = QuantizedBagKernelFor<TIndex>(layout, ref width);
        long positions = bags.Starts[bags.Count] - bags.Starts[0];
        threads = EmbeddingThreads.For(layout.RowBytes * positions + sizeof(float) * (long)dimension * bags.Count, bags.Count, threads);
        if (threads == 1)
        {
            kernel(in packed, dimension, in indices, in starts, bags.Count, bags.PaddingIndex, in map, in perSampleWeights, mean, ref destination);
            return QuantizedLookupFailure.None;
        }

        fixed (byte* table = &Unsafe.AsRef(in packed))
        fixed (TIndex* first = &indices)
        fixed (long* bounds = &starts)
        fixed (int* entries = &map)
        fixed (float* sampleWeights = &perSampleWeights)
        fixed (float* output = &destination)
        {
            var work = new QuantizedBagWork<TIndex>
            {
                Kernel = kernel, Packed = table, Indices = first, Starts = bounds, Count = bags.Count, PaddingIndex = bags.PaddingIndex,
                Mapping = entries, PerSampleWeights = sampleWeights, Mean = mean, Destination = output, Dimension = dimension,
            };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, bags.Count), threads);
        }

        return QuantizedLookupFailure.None;
    }

    /// <summary>
    /// The kernel for <paramref name="layout"/>: a specialised one when a registered set has it, else the generic
    /// one. Narrows <paramref name="width"/> until one vector fits the columns of whole code bytes.
    /// </summary>
    private static QuantizedBagKernel<TIndex> QuantizedBagKernelFor<TIndex>(QuantizedRowLayout layout, ref VectorWidth width)
        where TIndex : unmanaged, IBinaryInteger<TIndex> => layout.Bits switch
        {
            QuantizedBits.Eight => QuantizedBagKernelFor<TIndex, QuantizedRow8>(layout.Dimension, ref width),
            QuantizedBits.Four => QuantizedBagKernelFor<TIndex, QuantizedRow4>(layout.Dimension, ref width),
            _ => QuantizedBagKernelFor<TIndex, QuantizedRow2>(layout.Dimension, ref width),
        };

    private static QuantizedBagKernel<TIndex> QuantizedBagKernelFor<TIndex, TRow>(int dimension, ref VectorWidth width)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TRow : IQuantizedRow
    {
        width = KernelDispatch.FitWidth(width, GenericQuantizedBag<TIndex, TRow>.VectorColumns(dimension));
        return KernelDispatch.Find(
            new KernelKey(GenericQuantizedBag<TIndex, TRow>.Operation, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), dimension, width),
            GenericQuantizedBag<TIndex, TRow>.At(width));
    }

    /// <summary>
    /// The first position whose index is outside <c>[0, rows)</c> (or, when pruned, outside the mapping), then,
    /// when pruned, the first whose mapping entry is neither -1 nor a row. Every position is checked, padding
    /// positions included (torch reads the mapping at every position).
    /// </summary>
    internal static QuantizedLookupFailure FindBadQuantizedIndex<TIndex>(ReadOnlySpan<TIndex> indices, long rows, ReadOnlySpan<int> mapping)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex first = ref MemoryMarshal.GetReference(indices);
        nint bad = IndexRange.FindFirstOutOfRange(ref first, indices.Length, mapping.IsEmpty ? rows : mapping.Length);
        if (bad >= 0)
        {
            return new QuantizedLookupFailure(bad, MappingEntry: false);
        }

        if (!mapping.IsEmpty)
        {
            ref int entries = ref MemoryMarshal.GetReference(mapping);
            for (nint i = 0; i < indices.Length; i++)
            {
                // -1 (pruned) and 0 .. rows-1 pass: one unsigned compare of entry + 1 against rows + 1.
                long entry = Unsafe.Add(ref entries, KernelRows.Index(in first, i));
                if ((ulong)(entry + 1) > (ulong)rows)
                {
                    return new QuantizedLookupFailure(i, MappingEntry: true);
                }
            }
        }

        return QuantizedLookupFailure.None;
    }

    /// <summary>Checks what does not depend on the bag layout; returns the packed table's row count.</summary>
    private static long CheckQuantizedArguments<TIndex>(ReadOnlySpan<TIndex> indices, long packedBytes, QuantizedRowLayout layout, EmbeddingBagMode mode, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<int> mapping)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckIndexType<TIndex>(nameof(TIndex));
        if (QuantizedLayoutError(layout) is { } layoutError)
        {
            throw new ArgumentOutOfRangeException(nameof(layout), layout, layoutError);
        }

        if (mode == EmbeddingBagMode.Max)
        {
            throw new NotSupportedException(QuantizedMaxUnsupported);
        }

        if (mode is not (EmbeddingBagMode.Sum or EmbeddingBagMode.Mean))
        {
            throw new ArgumentOutOfRangeException(nameof(mode), mode, "mode has to be sum or mean for a quantized table");
        }

        if (packedBytes % layout.RowBytes != 0)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The packed table holds {packedBytes} bytes, which is not a whole number of {(int)layout.Bits}-bit rows of {layout.RowBytes} bytes (dimension {layout.Dimension})."), "packed");
        }

        if (!perSampleWeights.IsEmpty && mode != EmbeddingBagMode.Sum)
        {
            throw new ArgumentException(WeightsNeedSum(mode), nameof(perSampleWeights));
        }

        long rows = packedBytes / layout.RowBytes;
        long indexRange = mapping.IsEmpty ? rows : mapping.Length;
        if (!IsValidPaddingRow(paddingIndex, indexRange))
        {
            throw new ArgumentOutOfRangeException(nameof(paddingIndex), paddingIndex, mapping.IsEmpty
                ? PaddingRowOutOfRange(paddingIndex, rows)
                : string.Create(CultureInfo.InvariantCulture, $"padding_idx {paddingIndex} is not an index of the pruned table: pass one in [0, {mapping.Length}) (an entry of compressed_indices_mapping) or {NoPadding} for no padding"));
        }

        return rows;
    }

    /// <summary>Checks the destination and runs the core; turns a bad index or mapping entry into an exception.</summary>
    private static void RunQuantizedBag<TIndex>(scoped in Bags<TIndex> bags, ReadOnlySpan<byte> offsets, ref readonly byte packed, long packedBytes, long rows, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, ReadOnlySpan<int> mapping, VectorWidth width, int threads)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        long required = (long)bags.Count * layout.Dimension;
        if (destination.Length < required)
        {
            throw new ArgumentException($"The destination holds {destination.Length} elements; {bags.Count} bags × {layout.Dimension} columns need {required}.", nameof(destination));
        }

        ReadOnlySpan<byte> written = MemoryMarshal.AsBytes(destination[..(int)required]);
        if (OverlapsTable(written, in packed, packedBytes) || written.Overlaps(MemoryMarshal.AsBytes(bags.Indices)) || written.Overlaps(offsets)
            || written.Overlaps(MemoryMarshal.AsBytes(bags.PerSampleWeights)) || written.Overlaps(MemoryMarshal.AsBytes(mapping)))
        {
            throw new ArgumentException("The destination overlaps the packed table, the indices, the offsets, the per-sample weights or the mapping.", nameof(destination));
        }

        QuantizedLookupFailure failure = QuantizedEmbeddingBag(in packed, rows, layout, bags, mode == EmbeddingBagMode.Mean, mapping, ref MemoryMarshal.GetReference(destination), width, threads);
        if (failure.IsFailure)
        {
            long value = long.CreateTruncating(bags.Indices[(int)failure.Position]);
            throw failure.MappingEntry
                ? new ArgumentOutOfRangeException(nameof(mapping), mapping[(int)value], QuantizedMappingEntryOutOfRange(failure.Position, value, mapping[(int)value], rows))
                : new ArgumentOutOfRangeException(nameof(bags.Indices), value, QuantizedIndexOutOfRange(failure.Position, value, rows, mapping.Length));
        }
    }

    /// <summary>Why a quantized bag has no max mode.</summary>
    internal const string QuantizedMaxUnsupported =
        "a quantized bag sums (or, here, averages) dequantized rows: torch 1.13's quantized embedding_bag ops have no max mode (they ignore mode and always sum)";

    /// <summary>Why <paramref name="layout"/> cannot describe a table, or null.</summary>
    internal static string? QuantizedLayoutError(QuantizedRowLayout layout) =>
        layout.Bits is not (QuantizedBits.Two or QuantizedBits.Four or QuantizedBits.Eight)
            ? string.Create(CultureInfo.InvariantCulture, $"quantized tables have 2-, 4- or 8-bit codes, not {(int)layout.Bits}")
            : layout.Dimension <= 0
                ? string.Create(CultureInfo.InvariantCulture, $"a quantized row holds at least one column, not {layout.Dimension}")
                : null;

    /// <summary>The message for an index outside the table (or, when pruned, outside the mapping).</summary>
    internal static string QuantizedIndexOutOfRange(long position, long value, long rows, long mappingLength) => mappingLength == 0
        ? EmbeddingErrors.IndexOutOfRange(position, value, rows)
        : string.Create(CultureInfo.InvariantCulture, $"index {value} at position {position} is outside compressed_indices_mapping: valid indices are 0 to {mappingLength - 1} (the mapping has {mappingLength} entries; torch: \"Invalid indices data for Sparse Op.\")");

    /// <summary>The message for a mapping entry that is neither -1 nor a packed row.</summary>
    internal static string QuantizedMappingEntryOutOfRange(long position, long index, long entry, long rows) =>
        string.Create(CultureInfo.InvariantCulture, $"compressed_indices_mapping[{index}] = {entry} (index {index} at position {position}) is neither -1 (pruned) nor a row of the packed table (0 to {rows - 1}, {rows} rows); torch 1.13 would read it out of bounds");

    /// <summary>One piece of a parallel quantized bag: a contiguous range of bags and their output rows.</summary>
    private unsafe struct QuantizedBagWork<TIndex> : IParallelWork
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        public QuantizedBagKernel<TIndex> Kernel;
        public byte* Packed;
        public TIndex* Indices;
        public long* Starts;
        public int Count;
        public long PaddingIndex;
        public int* Mapping;
        public float* PerSampleWeights;
        public bool Mean;
        public float* Destination;
        public int Dimension;

        public readonly void Execute(int part, int parts)
        {
            int first = BagBoundary(Starts, Count, part, parts), end = BagBoundary(Starts, Count, part + 1, parts);
            if (end <= first)
            {
                return;
            }

            ref int mapping = ref Mapping == null ? ref Unsafe.NullRef<int>() : ref *Mapping;
            ref float sampleWeights = ref PerSampleWeights == null ? ref Unsafe.NullRef<float>() : ref *PerSampleWeights;
            Kernel(in *Packed, Dimension, in *Indices, in Starts[first], end - first, PaddingIndex, in mapping, in sampleWeights, Mean, ref Destination[(nint)first * Dimension]);
        }
    }
}

/// <summary>
/// What the quantized lookup's index check found: nothing (<see cref="IsFailure"/> false), or the first position
/// whose index is out of range or, with <paramref name="MappingEntry"/>, whose mapping entry is.
/// </summary>
/// <param name="Position">The position, or -1 when every position is valid.</param>
/// <param name="MappingEntry">True when the index is valid but the mapping entry it selects is not.</param>
internal readonly record struct QuantizedLookupFailure(nint Position, bool MappingEntry)
{
    /// <summary>Every position is valid.</summary>
    public static QuantizedLookupFailure None => new(-1, false);

    /// <summary>True when a position is bad.</summary>
    public bool IsFailure => Position >= 0;
}
