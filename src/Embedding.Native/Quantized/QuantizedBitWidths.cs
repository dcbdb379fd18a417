using System;

namespace Embedding.Native;

/// <summary>
/// A set of <see cref="QuantizedBits"/>: the code widths of quantized tables a kernel set specialises
/// (<see cref="EmbeddingKernelsAttribute.Quantized"/>). Each member's value is its code width, so
/// <c>(int)QuantizedBitWidths.Four == (int)QuantizedBits.Four</c>.
/// </summary>
[Flags]
public enum QuantizedBitWidths
{
    /// <summary>No quantized table: the default, the kernel set specialises float tables only.</summary>
    None = 0,

    /// <summary>2-bit rows (<see cref="QuantizedBits.Two"/>, torch's <c>embedding_bag_2bit_rowwise_offsets</c>).</summary>
    Two = QuantizedBits.Two,

    /// <summary>4-bit rows (<see cref="QuantizedBits.Four"/>, torch's <c>embedding_bag_4bit_rowwise_offsets</c>).</summary>
    Four = QuantizedBits.Four,

    /// <summary>8-bit rows (<see cref="QuantizedBits.Eight"/>, torch's <c>embedding_bag_byte_rowwise_offsets</c>).</summary>
    Eight = QuantizedBits.Eight,

    /// <summary>Every code width.</summary>
    All = Two | Four | Eight,
}
