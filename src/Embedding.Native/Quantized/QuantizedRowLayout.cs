using System;

namespace Embedding.Native;

/// <summary>
/// The code width of a row-wise quantized table: torch's <c>quint8</c> (8-bit, <c>embedding_bag_byte_*</c>),
/// <c>quint4x2</c> (4-bit) and the 2-bit format of <c>embedding_bag_2bit_prepack</c>.
/// </summary>
public enum QuantizedBits
{
    /// <summary>2-bit codes, four per byte, with a float16 scale and bias per row.</summary>
    Two = 2,

    /// <summary>4-bit codes, two per byte, with a float16 scale and bias per row.</summary>
    Four = 4,

    /// <summary>8-bit codes, one per byte, with a float32 scale and bias per row.</summary>
    Eight = 8,
}

/// <summary>
/// Where the codes, scale and bias of one packed row live: FBGEMM's and torch's "fused" row-wise layout,
/// byte for byte.
/// </summary>
/// <remarks>
/// <code>
/// | codes: CodeBytes bytes | scale | bias |
///   8-bit: one code per byte;                  scale, bias: float32 little-endian (8 bytes)
///   4-bit: column j in byte j/2, bits 4·(j%2);   scale, bias: float16 little-endian (4 bytes)
///   2-bit: column j in byte j/4, bits 2·(j%4);   scale, bias: float16 little-endian (4 bytes)
/// value(j) = scale · code(j) + bias
/// </code>
/// A row of an odd dimension (4-bit) or of one not divisible by four (2-bit) ends in padding codes;
/// torch reads its dimension from the packed width, so it sees those padding columns (see
/// <see cref="TorchDimension"/>). No row is aligned: scale and bias are read byte-wise.
/// </remarks>
/// <param name="Bits">The code width.</param>
/// <param name="Dimension">Columns per row (positive).</param>
public readonly record struct QuantizedRowLayout(QuantizedBits Bits, int Dimension)
{
    /// <summary>Codes per byte: 1, 2 or 4.</summary>
    public int CodesPerByte => 8 / (int)Bits;

    /// <summary>Bytes of codes: <c>ceil(Dimension / CodesPerByte)</c>.</summary>
    public int CodeBytes => (int)(((long)Dimension + CodesPerByte - 1) / CodesPerByte);

    /// <summary>Bytes of scale plus bias: 8 (two float32) for 8-bit rows, 4 (two float16) otherwise.</summary>
    public int ScaleBiasBytes => Bits == QuantizedBits.Eight ? 2 * sizeof(float) : 2 * 2;

    /// <summary>Bytes per packed row, the table's second dimension in torch.</summary>
    public long RowBytes => (long)CodeBytes + ScaleBiasBytes;

    /// <summary>The dimension torch 1.13's lookups read from a packed width: every code slot, padding included.</summary>
    public int TorchDimension => CodeBytes * CodesPerByte;

    /// <summary>The layout torch 1.13 infers from a packed table's row width (every code slot a column).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bits"/> is not 2, 4 or 8, or the row holds no code.</exception>
    public static QuantizedRowLayout FromRowBytes(QuantizedBits bits, long rowBytes)
    {
        Validate(bits);
        long scaleBias = bits == QuantizedBits.Eight ? 8 : 4;
        long dimension = (rowBytes - scaleBias) * (8 / (int)bits);
        if (rowBytes <= scaleBias || dimension > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(rowBytes), rowBytes,
                $"a {(int)bits}-bit packed row holds {scaleBias} bytes of scale and bias after its codes, so it needs between {scaleBias + 1} and {scaleBias + (int.MaxValue / (8 / (int)bits))} bytes");
        }

        return new QuantizedRowLayout(bits, (int)dimension);
    }

    /// <summary>Throws unless <paramref name="bits"/> is 2, 4 or 8.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Another value.</exception>
    public static void Validate(QuantizedBits bits)
    {
        if (bits is not (QuantizedBits.Two or QuantizedBits.Four or QuantizedBits.Eight))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), (int)bits, "quantized tables have 2-, 4- or 8-bit codes");
        }
    }
}
