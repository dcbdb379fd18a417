using System;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// A bfloat16 value: the upper 16 bits of an IEEE binary32 (8 exponent bits, 7 mantissa bits), the
/// layout of <c>torch.bfloat16</c>. Widening to <see cref="float"/> is exact; narrowing rounds to
/// nearest, ties to even, and turns every NaN into the quiet NaN 0x7FC0, as torch's conversion does.
/// </summary>
/// <param name="bits">The 16-bit pattern.</param>
[SkipLocalsInit]
public readonly struct BFloat16(ushort bits) : IEquatable<BFloat16>
{
    /// <summary>The 16-bit pattern.</summary>
    public ushort Bits { get; } = bits;

    /// <summary>Widens exactly: the bits become the upper half of a float.</summary>
    /// <param name="value">The bfloat16 value.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static explicit operator float(BFloat16 value) => BitConverter.Int32BitsToSingle(value.Bits << 16);

    /// <summary>Rounds to the nearest bfloat16, ties to even; NaN gives 0x7FC0.</summary>
    /// <param name="value">The float to narrow.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static explicit operator BFloat16(float value)
    {
        if (float.IsNaN(value))
        {
            return new BFloat16(0x7FC0);
        }

        uint bits = BitConverter.SingleToUInt32Bits(value);
        return new BFloat16((ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16));
    }

    /// <inheritdoc/>
    public bool Equals(BFloat16 other) => Bits == other.Bits;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => Bits;

    /// <summary>The value as a float, formatted.</summary>
    public override string ToString() => ((float)this).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Bitwise equality (NaN patterns compare by bits).</summary>
    public static bool operator ==(BFloat16 left, BFloat16 right) => left.Equals(right);

    /// <summary>Bitwise inequality.</summary>
    public static bool operator !=(BFloat16 left, BFloat16 right) => !left.Equals(right);
}
