using System;
using System.Buffers.Binary;

namespace Embedding.Native;

/// <summary>
/// The quantized bag as plain loops that read like the pseudocode of
/// <see cref="EmbeddingPrimitives.QuantizedEmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{byte}, QuantizedRowLayout, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, ReadOnlySpan{int})"/>
/// and like torch 1.13's fallback loop (one column at a time, codes shifted out of their byte, torch's
/// <c>fma(float, uint8_t, float)</c> in double): the test oracle. No vectors, no unsafe code.
/// </summary>
internal static class QuantizedBagReference
{
    /// <summary>Reduces every bag of <paramref name="starts"/> (<c>count + 1</c> validated boundaries); indices and mapping entries must be valid.</summary>
    public static void EmbeddingBag(ReadOnlySpan<long> indices, ReadOnlySpan<long> starts, ReadOnlySpan<byte> packed, QuantizedRowLayout layout, bool mean, Span<float> destination, ReadOnlySpan<float> perSampleWeights, long paddingIndex, ReadOnlySpan<int> mapping)
    {
        int dimension = layout.Dimension, codeBytes = layout.CodeBytes, bits = (int)layout.Bits;
        int rowBytes = (int)layout.RowBytes, perByte = layout.CodesPerByte;
        for (int b = 0; b + 1 < starts.Length; b++)
        {
            Span<float> output = destination.Slice(b * dimension, dimension);
            output.Fill(0.0f);
            int count = 0;
            for (int i = (int)starts[b]; i < (int)starts[b + 1]; i++)
            {
                if (indices[i] == paddingIndex)
                {
                    continue;
                }

                count++;
                long r = mapping.IsEmpty ? indices[i] : mapping[(int)indices[i]];
                if (r == -1)
                {
                    continue;
                }

                ReadOnlySpan<byte> row = packed.Slice((int)(r * rowBytes), rowBytes);
                float rowScale, rowBias;
                if (layout.Bits == QuantizedBits.Eight)
                {
                    rowScale = BinaryPrimitives.ReadSingleLittleEndian(row[codeBytes..]);
                    rowBias = BinaryPrimitives.ReadSingleLittleEndian(row[(codeBytes + 4)..]);
                }
                else
                {
                    rowScale = (float)BinaryPrimitives.ReadHalfLittleEndian(row[codeBytes..]);
                    rowBias = (float)BinaryPrimitives.ReadHalfLittleEndian(row[(codeBytes + 2)..]);
                }

                float w = perSampleWeights.IsEmpty ? 1.0f : perSampleWeights[i];
                float scale = w * rowScale, bias = w * rowBias;
                for (int j = 0; j < dimension; j++)
                {
                    int code = (row[j / perByte] >> (j % perByte * bits)) & ((1 << bits) - 1);
                    output[j] = (float)((double)scale * code + (double)(output[j] + bias));
                }
            }

            if (mean)
            {
                for (int j = 0; j < dimension; j++)
                {
                    output[j] = output[j] / Math.Max(count, 1);
                }
            }
        }
    }
}
