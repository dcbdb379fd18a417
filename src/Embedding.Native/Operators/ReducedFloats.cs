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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref Half source, nuint offset)
    {
        Vector256<ushort> bits = Vector256.LoadUnsafe(ref Unsafe.As<Half, ushort>(ref source), offset);
        return WidenBits(Vector512.Create(Vector256.WidenLower(bits), Vector256.WidenUpper(bits)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref Half source, nuint offset)
    {
        Vector128<ushort> bits = Vector128.LoadUnsafe(ref Unsafe.As<Half, ushort>(ref source), offset);
        return WidenBits(Vector256.Create(Vector128.WidenLower(bits), Vector128.WidenUpper(bits)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(ref Half source, nuint offset) =>
        WidenBits(Vector128.WidenLower(ReducedVectors.Load4(ref Unsafe.As<Half, ushort>(ref source), offset)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref Half target, nuint offset)
    {
        Vector512<uint> bits = NarrowBits(value);
        Vector256.Narrow(bits.GetLower(), bits.GetUpper()).StoreUnsafe(ref Unsafe.As<Half, ushort>(ref target), offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref Half target, nuint offset)
    {
        Vector256<uint> bits = NarrowBits(value);
        Vector128.Narrow(bits.GetLower(), bits.GetUpper()).StoreUnsafe(ref Unsafe.As<Half, ushort>(ref target), offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref Half target, nuint offset) =>
        ReducedVectors.Store4(NarrowBits(value), ref Unsafe.As<Half, ushort>(ref target), offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> R(Vector512<float> x) => WidenBits(NarrowBits(x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> R(Vector256<float> x) => WidenBits(NarrowBits(x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> R(Vector128<float> x) => WidenBits(NarrowBits(x));

    // ---- The scalar conversions above, lane by lane: every case computed, then selected ----------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<uint> NarrowBits(Vector512<float> x)
    {
        Vector512<uint> bits = x.AsUInt32();
        Vector512<uint> sign = (bits >> 16) & Vector512.Create(0x8000u);
        Vector512<uint> magnitude = bits & Vector512.Create(0x7FFF_FFFFu);
        Vector512<uint> normal = (magnitude + Vector512.Create(0x0FFFu) + ((magnitude >> 13) & Vector512<uint>.One) - Vector512.Create(0x3800_0000u)) >> 13;
        Vector512<uint> subnormal = (magnitude.AsSingle() + Vector512.Create(0.5f)).AsUInt32() - Vector512.Create(0x3F00_0000u);
        Vector512<uint> large = Vector512.ConditionalSelect(
            Vector512.GreaterThan(magnitude, Vector512.Create(0x7F80_0000u)), Vector512.Create(0x7E00u) | ((magnitude >> 13) & Vector512.Create(0x03FFu)), Vector512.Create(0x7C00u));
        return sign | Vector512.ConditionalSelect(
            Vector512.LessThan(magnitude, Vector512.Create(0x3880_0000u)), subnormal,
            Vector512.ConditionalSelect(Vector512.LessThan(magnitude, Vector512.Create(0x4780_0000u)), normal, large));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> NarrowBits(Vector256<float> x)
    {
        Vector256<uint> bits = x.AsUInt32();
        Vector256<uint> sign = (bits >> 16) & Vector256.Create(0x8000u);
        Vector256<uint> magnitude = bits & Vector256.Create(0x7FFF_FFFFu);
        Vector256<uint> normal = (magnitude + Vector256.Create(0x0FFFu) + ((magnitude >> 13) & Vector256<uint>.One) - Vector256.Create(0x3800_0000u)) >> 13;
        Vector256<uint> subnormal = (magnitude.AsSingle() + Vector256.Create(0.5f)).AsUInt32() - Vector256.Create(0x3F00_0000u);
        Vector256<uint> large = Vector256.ConditionalSelect(
            Vector256.GreaterThan(magnitude, Vector256.Create(0x7F80_0000u)), Vector256.Create(0x7E00u) | ((magnitude >> 13) & Vector256.Create(0x03FFu)), Vector256.Create(0x7C00u));
        return sign | Vector256.ConditionalSelect(
            Vector256.LessThan(magnitude, Vector256.Create(0x3880_0000u)), subnormal,
            Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(0x4780_0000u)), normal, large));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<uint> NarrowBits(Vector128<float> x)
    {
        Vector128<uint> bits = x.AsUInt32();
        Vector128<uint> sign = (bits >> 16) & Vector128.Create(0x8000u);
        Vector128<uint> magnitude = bits & Vector128.Create(0x7FFF_FFFFu);
        Vector128<uint> normal = (magnitude + Vector128.Create(0x0FFFu) + ((magnitude >> 13) & Vector128<uint>.One) - Vector128.Create(0x3800_0000u)) >> 13;
        Vector128<uint> subnormal = (magnitude.AsSingle() + Vector128.Create(0.5f)).AsUInt32() - Vector128.Create(0x3F00_0000u);
        Vector128<uint> large = Vector128.ConditionalSelect(
            Vector128.GreaterThan(magnitude, Vector128.Create(0x7F80_0000u)), Vector128.Create(0x7E00u) | ((magnitude >> 13) & Vector128.Create(0x03FFu)), Vector128.Create(0x7C00u));
        return sign | Vector128.ConditionalSelect(
            Vector128.LessThan(magnitude, Vector128.Create(0x3880_0000u)), subnormal,
            Vector128.ConditionalSelect(Vector128.LessThan(magnitude, Vector128.Create(0x4780_0000u)), normal, large));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> WidenBits(Vector512<uint> bits)
    {
        Vector512<uint> sign = (bits & Vector512.Create(0x8000u)) << 16;
        Vector512<uint> magnitude = bits & Vector512.Create(0x7FFFu);
        Vector512<uint> normal = (magnitude << 13) + Vector512.Create(0x3800_0000u);
        Vector512<uint> subnormal = (Vector512.ConvertToSingle(magnitude.AsInt32()) * Vector512.Create(1f / 16777216f)).AsUInt32();
        Vector512<uint> quiet = ~Vector512.Equals(magnitude, Vector512.Create(0x7C00u)) & Vector512.Create(0x0040_0000u);
        Vector512<uint> special = Vector512.Create(0x7F80_0000u) | quiet | ((magnitude & Vector512.Create(0x03FFu)) << 13);
        return (sign | Vector512.ConditionalSelect(
            Vector512.LessThan(magnitude, Vector512.Create(0x0400u)), subnormal,
            Vector512.ConditionalSelect(Vector512.LessThan(magnitude, Vector512.Create(0x7C00u)), normal, special))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> WidenBits(Vector256<uint> bits)
    {
        Vector256<uint> sign = (bits & Vector256.Create(0x8000u)) << 16;
        Vector256<uint> magnitude = bits & Vector256.Create(0x7FFFu);
        Vector256<uint> normal = (magnitude << 13) + Vector256.Create(0x3800_0000u);
        Vector256<uint> subnormal = (Vector256.ConvertToSingle(magnitude.AsInt32()) * Vector256.Create(1f / 16777216f)).AsUInt32();
        Vector256<uint> quiet = ~Vector256.Equals(magnitude, Vector256.Create(0x7C00u)) & Vector256.Create(0x0040_0000u);
        Vector256<uint> special = Vector256.Create(0x7F80_0000u) | quiet | ((magnitude & Vector256.Create(0x03FFu)) << 13);
        return (sign | Vector256.ConditionalSelect(
            Vector256.LessThan(magnitude, Vector256.Create(0x0400u)), subnormal,
            Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(0x7C00u)), normal, special))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> WidenBits(Vector128<uint> bits)
    {
        Vector128<uint> sign = (bits & Vector128.Create(0x8000u)) << 16;
        Vector128<uint> magnitude = bits & Vector128.Create(0x7FFFu);
        Vector128<uint> normal = (magnitude << 13) + Vector128.Create(0x3800_0000u);
        Vector128<uint> subnormal = (Vector128.ConvertToSingle(magnitude.AsInt32()) * Vector128.Create(1f / 16777216f)).AsUInt32();
        Vector128<uint> quiet = ~Vector128.Equals(magnitude, Vector128.Create(0x7C00u)) & Vector128.Create(0x0040_0000u);
        Vector128<uint> special = Vector128.Create(0x7F80_0000u) | quiet | ((magnitude & Vector128.Create(0x03FFu)) << 13);
        return (sign | Vector128.ConditionalSelect(
            Vector128.LessThan(magnitude, Vector128.Create(0x0400u)), subnormal,
            Vector128.ConditionalSelect(Vector128.LessThan(magnitude, Vector128.Create(0x7C00u)), normal, special))).AsSingle();
    }
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref BFloat16 source, nuint offset)
    {
        Vector256<ushort> bits = Vector256.LoadUnsafe(ref Unsafe.As<BFloat16, ushort>(ref source), offset);
        return (Vector512.Create(Vector256.WidenLower(bits), Vector256.WidenUpper(bits)) << 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref BFloat16 source, nuint offset)
    {
        Vector128<ushort> bits = Vector128.LoadUnsafe(ref Unsafe.As<BFloat16, ushort>(ref source), offset);
        return (Vector256.Create(Vector128.WidenLower(bits), Vector128.WidenUpper(bits)) << 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(ref BFloat16 source, nuint offset) =>
        (Vector128.WidenLower(ReducedVectors.Load4(ref Unsafe.As<BFloat16, ushort>(ref source), offset)) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref BFloat16 target, nuint offset)
    {
        Vector512<uint> bits = NarrowBits(value);
        Vector256.Narrow(bits.GetLower(), bits.GetUpper()).StoreUnsafe(ref Unsafe.As<BFloat16, ushort>(ref target), offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref BFloat16 target, nuint offset)
    {
        Vector256<uint> bits = NarrowBits(value);
        Vector128.Narrow(bits.GetLower(), bits.GetUpper()).StoreUnsafe(ref Unsafe.As<BFloat16, ushort>(ref target), offset);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref BFloat16 target, nuint offset) =>
        ReducedVectors.Store4(NarrowBits(value), ref Unsafe.As<BFloat16, ushort>(ref target), offset);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> R(Vector512<float> x) => (NarrowBits(x) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> R(Vector256<float> x) => (NarrowBits(x) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> R(Vector128<float> x) => (NarrowBits(x) << 16).AsSingle();

    // ---- BFloat16's narrowing, lane by lane --------------------------------------------------------

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<uint> NarrowBits(Vector512<float> x)
    {
        Vector512<uint> bits = x.AsUInt32();
        Vector512<uint> rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One)) >> 16;
        return Vector512.ConditionalSelect(Vector512.Equals(x, x).AsUInt32(), rounded, Vector512.Create(0x7FC0u));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> NarrowBits(Vector256<float> x)
    {
        Vector256<uint> bits = x.AsUInt32();
        Vector256<uint> rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        return Vector256.ConditionalSelect(Vector256.Equals(x, x).AsUInt32(), rounded, Vector256.Create(0x7FC0u));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<uint> NarrowBits(Vector128<float> x)
    {
        Vector128<uint> bits = x.AsUInt32();
        Vector128<uint> rounded = (bits + Vector128.Create(0x7FFFu) + ((bits >> 16) & Vector128<uint>.One)) >> 16;
        return Vector128.ConditionalSelect(Vector128.Equals(x, x).AsUInt32(), rounded, Vector128.Create(0x7FC0u));
    }
}

/// <summary>Four 16-bit elements in and out of a <c>Vector128</c>: one 64-bit load or store, never past the fourth element.</summary>
internal static class ReducedVectors
{
    /// <summary>The four elements at <paramref name="offset"/> in the lower half of a vector (upper half zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<ushort> Load4(ref ushort source, nuint offset) =>
        Vector128.CreateScalar(Unsafe.ReadUnaligned<ulong>(ref Unsafe.As<ushort, byte>(ref Unsafe.Add(ref source, offset)))).AsUInt16();

    /// <summary>Stores the low 16 bits of each of the four lanes at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store4(Vector128<uint> bits, ref ushort target, nuint offset) =>
        Unsafe.WriteUnaligned(ref Unsafe.As<ushort, byte>(ref Unsafe.Add(ref target, offset)), Vector128.Narrow(bits, bits).AsUInt64().ToScalar());
}
