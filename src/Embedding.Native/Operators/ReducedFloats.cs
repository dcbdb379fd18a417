using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// A 16-bit table type (float16, bfloat16) as the optimizer steps compute with it: loaded and
/// widened to float, each operation computed in float and rounded back to the type where torch
/// rounds (<see cref="R(float)"/>), stored narrowed. Scalar members, and the same conversions for
/// <c>Vector512/256/128&lt;float&gt;</c> worth of elements.
/// </summary>
/// <remarks>
/// Every vector member gives, in every lane, exactly the bits of the scalar member (NaNs
/// included), so a column gets the same bits whichever width computes it. The scalar members equal
/// the type's own conversion operators bit for bit (<see cref="Half"/>'s, <see cref="BFloat16"/>'s):
/// widening is exact; narrowing rounds to nearest, ties to even, and overflows to infinity.
/// </remarks>
/// <typeparam name="T"><see cref="Half"/> or <see cref="BFloat16"/>.</typeparam>
internal interface IReducedArithmetic<T>
    where T : unmanaged
{
    /// <summary>The value as a float (exact).</summary>
    static abstract float Widen(T x);

    /// <summary>The float rounded to the type (to nearest, ties to even).</summary>
    static abstract T Narrow(float x);

    /// <summary>rd(x) = <c>Widen(Narrow(x))</c>: the float rounded to a value of the type, kept as a float.</summary>
    static abstract float R(float x);

    /// <summary>Sixteen elements at <paramref name="offset"/>, widened.</summary>
    static abstract Vector512<float> Load512(ref T source, nuint offset);

    /// <summary>Eight elements at <paramref name="offset"/>, widened.</summary>
    static abstract Vector256<float> Load256(ref T source, nuint offset);

    /// <summary>Four elements at <paramref name="offset"/>, widened.</summary>
    static abstract Vector128<float> Load128(ref T source, nuint offset);

    /// <summary>Narrows each lane and stores the sixteen elements at <paramref name="offset"/>.</summary>
    static abstract void Store(Vector512<float> value, ref T target, nuint offset);

    /// <summary>Narrows each lane and stores the eight elements at <paramref name="offset"/>.</summary>
    static abstract void Store(Vector256<float> value, ref T target, nuint offset);

    /// <summary>Narrows each lane and stores the four elements at <paramref name="offset"/>.</summary>
    static abstract void Store(Vector128<float> value, ref T target, nuint offset);

    /// <summary><see cref="R(float)"/> in every lane.</summary>
    static abstract Vector512<float> R(Vector512<float> x);

    /// <summary><see cref="R(float)"/> in every lane.</summary>
    static abstract Vector256<float> R(Vector256<float> x);

    /// <summary><see cref="R(float)"/> in every lane.</summary>
    static abstract Vector128<float> R(Vector128<float> x);
}

/// <summary>
/// float16 with the conversions of <see cref="Half"/>'s operators, bit for bit, written out so they
/// inline into the column loops (<see cref="Half"/>'s are calls) and run on vectors: exact widening
/// (a NaN made quiet, its payload kept); narrowing to nearest, ties to even, overflowing to
/// infinity, a NaN becoming <c>sign | 0x7E00 | payload &gt;&gt; 13</c>. The tests check the scalar
/// members against <see cref="Half"/> at every rounding boundary and the vector members against the
/// scalar ones.
/// </summary>
internal readonly struct Float16Arithmetic : IReducedArithmetic<Half>
{
    // float16 magnitudes: 0x0400 is the smallest normal (2^-14), 0x7C00 infinity. float magnitudes:
    // 0x3880_0000 is 2^-14, 0x4780_0000 is 65536 (past the largest float16, 65504), 0x3800_0000 is
    // the exponent rebias (127 - 15) << 23, and 0x3F00_0000 is 0.5, whose float ulp is 2^-24, the
    // float16 subnormal step: adding 0.5 rounds a magnitude below 2^-14 to a multiple of 2^-24, ties
    // to even, and the low bits of the sum then count those steps.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(Half x)
    {
        uint bits = BitConverter.HalfToUInt16Bits(x);
        uint sign = (bits & 0x8000u) << 16, magnitude = bits & 0x7FFFu;
        if (magnitude - 0x0400u < 0x7800u)
        {
            // Normal: the exponent and mantissa moved into place, rebiased.
            return BitConverter.UInt32BitsToSingle(sign | ((magnitude << 13) + 0x3800_0000u));
        }

        if (magnitude < 0x0400u)
        {
            // Zero or subnormal: the mantissa counts steps of 2^-24, exactly representable in float.
            return BitConverter.UInt32BitsToSingle(sign | BitConverter.SingleToUInt32Bits(magnitude * (1f / 16777216f)));
        }

        // Infinity, or a NaN made quiet with its payload kept.
        uint quiet = magnitude == 0x7C00u ? 0u : 0x0040_0000u;
        return BitConverter.UInt32BitsToSingle(sign | 0x7F80_0000u | quiet | ((magnitude & 0x03FFu) << 13));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Half Narrow(float x) => BitConverter.UInt16BitsToHalf(NarrowBits(x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float R(float x) => Widen(Narrow(x));

    /// <summary>The float16 bit pattern nearest to <paramref name="x"/> (ties to even).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort NarrowBits(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFF_FFFFu;
        if (magnitude - 0x3880_0000u < 0x0F00_0000u)
        {
            // |x| in [2^-14, 65536): round the mantissa to 10 bits (ties to even) and rebias; a carry out
            // of the mantissa moves to the next exponent, and past 65504 to infinity (0x7C00).
            return (ushort)(sign | ((magnitude + 0x0FFFu + ((magnitude >> 13) & 1u) - 0x3800_0000u) >> 13));
        }

        if (magnitude < 0x3880_0000u)
        {
            // A float16 subnormal or zero.
            return (ushort)(sign | (BitConverter.SingleToUInt32Bits(BitConverter.UInt32BitsToSingle(magnitude) + 0.5f) - 0x3F00_0000u));
        }

        // |x| >= 65536: infinity, or a NaN made quiet with the top of its payload kept.
        return (ushort)(sign | (magnitude > 0x7F80_0000u ? 0x7E00u | ((magnitude >> 13) & 0x03FFu) : 0x7C00u));
    }

    // The vector members: the float16/bfloat16 conversions every 16-bit path shares (HalfConversions).

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref Half source, nuint offset) => HalfConversions.Load512(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref Half source, nuint offset) => HalfConversions.Load256(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(ref Half source, nuint offset) => HalfConversions.Load128(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref Half target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref Half target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref Half target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> R(Vector512<float> x) => HalfConversions.RoundToHalf(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> R(Vector256<float> x) => HalfConversions.RoundToHalf(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> R(Vector128<float> x) => HalfConversions.RoundToHalf(x);
}

/// <summary>
/// bfloat16 with <see cref="BFloat16"/>'s conversions: widening puts the bits in the upper half of a
/// float; narrowing rounds to nearest, ties to even (<c>(u + 0x7FFF + ((u &gt;&gt; 16) &amp; 1)) &gt;&gt; 16</c>),
/// and every NaN becomes 0x7FC0.
/// </summary>
internal readonly struct BFloat16Arithmetic : IReducedArithmetic<BFloat16>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Widen(BFloat16 x) => (float)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static BFloat16 Narrow(float x) => (BFloat16)x;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float R(float x) => (float)(BFloat16)x;

    // The vector members: the float16/bfloat16 conversions every 16-bit path shares (HalfConversions).

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref BFloat16 source, nuint offset) => HalfConversions.Load512(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref BFloat16 source, nuint offset) => HalfConversions.Load256(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(ref BFloat16 source, nuint offset) => HalfConversions.Load128(ref source, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref BFloat16 target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref BFloat16 target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref BFloat16 target, nuint offset) => HalfConversions.Store(value, ref target, offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> R(Vector512<float> x) => HalfConversions.RoundToBFloat16(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> R(Vector256<float> x) => HalfConversions.RoundToBFloat16(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> R(Vector128<float> x) => HalfConversions.RoundToBFloat16(x);
}
