using System;
using System.Buffers;
using System.Globalization;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// A <see cref="Bags{TIndex}"/> whose boundaries live in a pooled array. Dispose it (a <c>using</c>
/// declaration) to return the array; the bags must not be used afterwards.
/// </summary>
internal ref struct PooledBags<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    private long[]? _rented;

    public PooledBags(Bags<TIndex> bags, long[]? rented)
    {
        Bags = bags;
        _rented = rented;
    }

    /// <summary>The validated layout.</summary>
    public Bags<TIndex> Bags { get; }

    /// <summary>Returns the boundaries to the pool (once).</summary>
    public void Dispose()
    {
        if (_rented is { } rented)
        {
            _rented = null;
            ArrayPool<long>.Shared.Return(rented);
        }
    }
}

/// <summary>
/// Builds the <see cref="Bags{TIndex}"/> every bag kernel and bag backward reads, from the two ways
/// torch describes bags: 1-D offsets (<see cref="TryCreateBags{TIndex, TOffset, TWeight}"/>) or fixed-size bags of a 2-D input
/// (<see cref="TryCreateFixedBags{TIndex, TWeight}"/>). Shared by the span API and the C ABI (<c>EmbBags</c>), forward
/// and backward, so every entry point validates a layout the same way.
/// </summary>
/// <remarks>
/// What is checked here: the offsets (via <see cref="BagLayout"/>), the per-sample weight count and
/// that the boundaries fit a pooled array. What is not: the index values and the padding row, which
/// need the table; check them with <see cref="FindFirstBadIndex"/> and
/// <see cref="EmbeddingPrimitives.IsValidPaddingRow"/> before a kernel runs.
/// The boundaries are rented from <see cref="ArrayPool{T}.Shared"/>, so nothing is allocated once a
/// call of the same size has run.
/// </remarks>
internal static class BagsBuilder
{
    /// <summary>Bags from 1-D offsets: <c>offsets.Length</c> bags, or one fewer with <paramref name="includeLastOffset"/>.</summary>
    /// <param name="indices">The index of every position.</param>
    /// <param name="offsets">Where each bag starts (int or long); validated by <see cref="BagLayout.Build"/>.</param>
    /// <param name="includeLastOffset">torch's CSR form: the last offset ends the last bag and must equal <c>indices.Length</c>.</param>
    /// <param name="perSampleWeights">Empty, or one weight per position.</param>
    /// <param name="paddingIndex">A normalised row or <see cref="EmbeddingPrimitives.NoPadding"/>; stored, not checked.</param>
    /// <param name="bags">On success the layout (dispose it); otherwise default.</param>
    /// <returns>null on success, otherwise the message (nothing to dispose).</returns>
    internal static string? TryCreateBags<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, bool includeLastOffset, ReadOnlySpan<float> perSampleWeights, long paddingIndex, out PooledBags<TIndex> bags)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset> =>
        TryCreateBags<TIndex, TOffset, float>(indices, offsets, includeLastOffset, perSampleWeights, paddingIndex, out bags);

    /// <summary>Bags from 1-D offsets with per-sample weights of the table's type <typeparamref name="TWeight"/>.</summary>
    /// <inheritdoc cref="TryCreateBags{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, bool, ReadOnlySpan{float}, long, out PooledBags{TIndex})"/>
    internal static string? TryCreateBags<TIndex, TOffset, TWeight>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, bool includeLastOffset, ReadOnlySpan<TWeight> perSampleWeights, long paddingIndex, out PooledBags<TIndex> bags)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
        where TWeight : unmanaged
    {
        bags = default;
        if (CheckWeights(indices.Length, perSampleWeights) is { } weightError)
        {
            return weightError;
        }

        long count = BagLayout.CountBags(offsets.Length, includeLastOffset);
        if (count + 1 > Array.MaxLength)
        {
            return Text($"{count} bags exceed {Array.MaxLength - 1}, the most one call can describe");
        }

        long[] starts = ArrayPool<long>.Shared.Rent((int)count + 1);
        if (BagLayout.Build(offsets, indices.Length, includeLastOffset, starts) is { } layoutError)
        {
            ArrayPool<long>.Shared.Return(starts);
            return layoutError;
        }

        bags = new PooledBags<TIndex>(Bags<TIndex>.Create(indices, starts.AsSpan(0, (int)count + 1), perSampleWeights, paddingIndex), starts);
        return null;
    }

    /// <summary>Fixed-size bags of a 2-D <c>[B, bagSize]</c> input: <c>indices.Length / bagSize</c> bags.</summary>
    /// <param name="indices">The flattened <c>[B, bagSize]</c> input.</param>
    /// <param name="bagSize">Positions per bag: positive and dividing <c>indices.Length</c>.</param>
    /// <param name="perSampleWeights">Empty, or one weight per position.</param>
    /// <param name="paddingIndex">A normalised row or <see cref="EmbeddingPrimitives.NoPadding"/>; stored, not checked.</param>
    /// <param name="bags">On success the layout (dispose it); otherwise default.</param>
    /// <returns>null on success, otherwise the message (nothing to dispose).</returns>
    internal static string? TryCreateFixedBags<TIndex>(ReadOnlySpan<TIndex> indices, long bagSize, ReadOnlySpan<float> perSampleWeights, long paddingIndex, out PooledBags<TIndex> bags)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        TryCreateFixedBags<TIndex, float>(indices, bagSize, perSampleWeights, paddingIndex, out bags);

    /// <summary>Fixed-size bags with per-sample weights of the table's type <typeparamref name="TWeight"/>.</summary>
    /// <inheritdoc cref="TryCreateFixedBags{TIndex}(ReadOnlySpan{TIndex}, long, ReadOnlySpan{float}, long, out PooledBags{TIndex})"/>
    internal static string? TryCreateFixedBags<TIndex, TWeight>(ReadOnlySpan<TIndex> indices, long bagSize, ReadOnlySpan<TWeight> perSampleWeights, long paddingIndex, out PooledBags<TIndex> bags)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWeight : unmanaged
    {
        bags = default;
        if (CheckWeights(indices.Length, perSampleWeights) is { } weightError)
        {
            return weightError;
        }

        if (bagSize <= 0 || indices.Length % bagSize != 0)
        {
            return BagLayout.BuildFixed(indices.Length, bagSize, default);
        }

        long count = indices.Length / bagSize;
        long[] starts = ArrayPool<long>.Shared.Rent((int)count + 1);
        BagLayout.BuildFixed(indices.Length, bagSize, starts);
        bags = new PooledBags<TIndex>(Bags<TIndex>.Create(indices, starts.AsSpan(0, (int)count + 1), perSampleWeights, paddingIndex), starts);
        return null;
    }

    /// <summary>The number of bags 1-D offsets describe, after validating them (nothing is kept).</summary>
    /// <returns>null on success, otherwise the message.</returns>
    internal static string? TryCountBags<TOffset>(ReadOnlySpan<TOffset> offsets, long numIndices, bool includeLastOffset, out long count)
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        count = BagLayout.CountBags(offsets.Length, includeLastOffset);
        if (count + 1 > Array.MaxLength)
        {
            return Text($"{count} bags exceed {Array.MaxLength - 1}, the most one call can describe");
        }

        long[] starts = ArrayPool<long>.Shared.Rent((int)count + 1);
        try
        {
            return BagLayout.Build(offsets, numIndices, includeLastOffset, starts);
        }
        finally
        {
            ArrayPool<long>.Shared.Return(starts);
        }
    }

    /// <summary>The position of the first index outside <c>[0, rows)</c>, or -1 when all are valid.</summary>
    internal static nint FindFirstBadIndex<TIndex>(scoped in Bags<TIndex> bags, long rows)
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        IndexRange.FindFirstOutOfRange(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(bags.Indices), bags.Indices.Length, rows);

    private static string? CheckWeights<TWeight>(int numIndices, ReadOnlySpan<TWeight> perSampleWeights) =>
        perSampleWeights.IsEmpty || perSampleWeights.Length == numIndices
            ? null
            : Text($"embedding_bag: If per_sample_weights ({perSampleWeights.Length}) is not None, then it must have the same shape as the input ({numIndices})");

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
