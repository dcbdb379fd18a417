using System;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// A validated bag layout, the form every bag kernel and bag backward reads: the indices, the
/// <c>Count + 1</c> boundaries from <see cref="BagLayout"/> (bag <c>b</c> is positions
/// <c>[Starts[b], Starts[b + 1])</c>), optional per-sample weights and the padding row.
/// </summary>
/// <remarks>
/// Built only after validation: every index is in range, boundaries are non-decreasing and within the indices.
/// The per-sample weights have the table's element type (torch requires it); they are kept as bytes and
/// read through <see cref="PerSampleWeightsOf{T}"/>, or <see cref="PerSampleWeights"/> for a float32 table.
/// </remarks>
internal readonly ref struct Bags<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    private readonly ReadOnlySpan<byte> _perSampleWeights;

    /// <summary>Bags over a float32 table (or unweighted).</summary>
    public Bags(ReadOnlySpan<TIndex> indices, ReadOnlySpan<long> starts, ReadOnlySpan<float> perSampleWeights, long paddingIndex)
        : this(indices, starts, MemoryMarshal.AsBytes(perSampleWeights), paddingIndex)
    {
    }

    private Bags(ReadOnlySpan<TIndex> indices, ReadOnlySpan<long> starts, ReadOnlySpan<byte> perSampleWeights, long paddingIndex)
    {
        Indices = indices;
        Starts = starts;
        _perSampleWeights = perSampleWeights;
        PaddingIndex = paddingIndex;
    }

    /// <summary>Bags whose per-sample weights are <typeparamref name="TWeight"/>, the table's element type.</summary>
    public static Bags<TIndex> Create<TWeight>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<long> starts, ReadOnlySpan<TWeight> perSampleWeights, long paddingIndex)
        where TWeight : unmanaged =>
        new(indices, starts, MemoryMarshal.AsBytes(perSampleWeights), paddingIndex);

    /// <summary>The row index of every position.</summary>
    public ReadOnlySpan<TIndex> Indices { get; }

    /// <summary><c>Count + 1</c> non-decreasing boundaries.</summary>
    public ReadOnlySpan<long> Starts { get; }

    /// <summary>One float32 weight per position, or empty when the bags are unweighted (float32 tables only).</summary>
    public ReadOnlySpan<float> PerSampleWeights => PerSampleWeightsOf<float>();

    /// <summary>One weight of the table's type <typeparamref name="T"/> per position, or empty when the bags are unweighted.</summary>
    public ReadOnlySpan<T> PerSampleWeightsOf<T>()
        where T : unmanaged => MemoryMarshal.Cast<byte, T>(_perSampleWeights);

    /// <summary>The row whose positions count for nothing, or <see cref="EmbeddingPrimitives.NoPadding"/>.</summary>
    public long PaddingIndex { get; }

    /// <summary>The number of bags.</summary>
    public int Count => Starts.Length - 1;

    /// <summary>True when per-sample weights were given.</summary>
    public bool IsWeighted => !_perSampleWeights.IsEmpty;
}
