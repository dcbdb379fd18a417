using System;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The plain scalar oracle: each operation written as the pseudocode in its XML docs, with no
/// vectors and no unsafe code. Tests compare every kernel with it, and benchmarks check one
/// result against it before timing.
/// </summary>
internal static class EmbeddingReference
{
    /// <summary>Forward lookup. Returns -1, or the position of the first bad index with nothing written.</summary>
    public static int Embedding<TIndex>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<float> weight, int embeddingDim, Span<float> destination)
        where TIndex : IBinaryInteger<TIndex>
    {
        long rows = weight.Length / embeddingDim;
        for (int i = 0; i < indices.Length; i++)
        {
            long index = long.CreateTruncating(indices[i]);
            if (index < 0 || index >= rows)
            {
                return i;
            }
        }

        for (int i = 0; i < indices.Length; i++)
        {
            long row = long.CreateTruncating(indices[i]);
            for (int column = 0; column < embeddingDim; column++)
            {
                destination[i * embeddingDim + column] = weight[(int)(row * embeddingDim + column)];
            }
        }

        return -1;
    }
}
