using System;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// A validated bag layout, the form every bag kernel and bag backward reads: the indices, the
/// <c>Count + 1</c> boundaries from <see cref="BagLayout"/> (bag <c>b</c> is positions
/// <c>[Starts[b], Starts[b + 1])</c>), optional per-sample weights and the padding row.
/// </summary>
/// <remarks>Built only after validation: every index is in range, boundaries are non-decreasing and within the indices.</remarks>
internal readonly ref struct Bags<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    public Bags(ReadOnlySpan<TIndex> indices, ReadOnlySpan<long> starts, ReadOnlySpan<float> perSampleWeights, long paddingIndex)
    {
        Indices = indices;
        Starts = starts;
        PerSampleWeights = perSampleWeights;
        PaddingIndex = paddingIndex;
    }

    /// <summary>The row index of every position.</summary>
    public ReadOnlySpan<TIndex> Indices { get; }

    /// <summary><c>Count + 1</c> non-decreasing boundaries.</summary>
    public ReadOnlySpan<long> Starts { get; }

    /// <summary>One weight per position, or empty when the bags are unweighted.</summary>
    public ReadOnlySpan<float> PerSampleWeights { get; }

    /// <summary>The row whose positions count for nothing, or <see cref="EmbeddingPrimitives.NoPadding"/>.</summary>
    public long PaddingIndex { get; }

    /// <summary>The number of bags.</summary>
    public int Count => Starts.Length - 1;

    /// <summary>True when per-sample weights were given.</summary>
    public bool IsWeighted => !PerSampleWeights.IsEmpty;
}
