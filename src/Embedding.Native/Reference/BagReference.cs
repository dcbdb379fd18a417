using System;

namespace Embedding.Native;

/// <summary>
/// The bag forward as plain loops that read like the pseudocode of
/// <see cref="EmbeddingPrimitives.EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/>,
/// with the same arithmetic as the kernels (so results match bit for bit): the test oracle.
/// </summary>
internal static class BagReference
{
    /// <summary>Reduces every bag of <paramref name="starts"/> (<c>count + 1</c> validated boundaries); indices must be in range.</summary>
    public static void EmbeddingBag(ReadOnlySpan<long> indices, ReadOnlySpan<long> starts, ReadOnlySpan<float> weight, int dimension, EmbeddingBagMode mode, Span<float> destination, ReadOnlySpan<float> perSampleWeights, long paddingIndex, Span<long> maxIndices)
    {
        for (int b = 0; b + 1 < starts.Length; b++)
        {
            Span<float> output = destination.Slice(b * dimension, dimension);
            int count = 0;
            output.Fill(0.0f);
            if (mode == EmbeddingBagMode.Max)
            {
                maxIndices.Slice(b * dimension, dimension).Fill(-1);
            }

            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                long k = indices[i];
                if (k == paddingIndex)
                {
                    continue;
                }

                ReadOnlySpan<float> row = weight.Slice((int)(k * dimension), dimension);
                for (int d = 0; d < dimension; d++)
                {
                    switch (mode)
                    {
                        case EmbeddingBagMode.Max:
                            if (count == 0 || row[d] > output[d])
                            {
                                output[d] = row[d];
                                maxIndices[b * dimension + d] = k;
                            }

                            break;
                        case EmbeddingBagMode.Sum when !perSampleWeights.IsEmpty:
                            output[d] = paddingIndex == EmbeddingPrimitives.NoPadding && TorchProducts.LookupsAreFused
                                ? MathF.FusedMultiplyAdd(row[d], perSampleWeights[i], output[d])
                                : output[d] + row[d] * perSampleWeights[i];
                            break;
                        default:
                            output[d] = output[d] + row[d];
                            break;
                    }
                }

                count++;
            }

            if (mode == EmbeddingBagMode.Mean)
            {
                for (int d = 0; d < dimension; d++)
                {
                    output[d] = output[d] / Math.Max(count, 1);
                }
            }
        }
    }
}
