using System;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// float16 and bfloat16 to and from float32 for whole vectors, with the bits of the scalar casts
/// (<c>(float)half</c>, <c>(Half)f</c>, <c>(float)bfloat16</c>, <c>(BFloat16)f</c>) in every lane: the
/// conversions the 16-bit arithmetic does around each float32 operation, a vector at a time instead of an
/// element at a time.
/// </summary>
/// <remarks>
/// <para>
/// Written with the cross-platform vector API on integer lanes (plus one float add or subtract where the
/// float adder does a variable shift that integer vectors cannot do portably), so the same code runs on
/// SSE, AVX2, AVX-512 and NEON. .NET exposes no F16C or AVX-512 FP16 conversion intrinsics, so there is
/// no hardware path to keep in step. The three widths are textually identical except for the width.
/// </para>
/// <para>
/// Widening is exact. float16: normals rebias the exponent; subnormals are made normal and their implicit
/// bit subtracted in float32 (the steps of .NET's <c>(float)Half</c>, so no float32 subnormal is ever an
/// operand); ±inf keep their sign; a NaN keeps its payload and becomes quiet, as the scalar cast makes it.
/// bfloat16 is the upper half of a float32: a shift.
/// </para>
/// <para>
/// Narrowing rounds to nearest, ties to even. float16: a normal result drops 13 fraction bits, adding
/// <c>0xFFF</c> plus the lowest kept bit first (a carry out of the fraction raises the exponent, up to
/// infinity); a subnormal result lets the float adder round: <c>|x| + 0.5</c> has an ulp of 2⁻²⁴, the
/// smallest half subnormal, so its low bits count the units of the rounded result; at or above 65520 the
/// result is infinity; a NaN becomes <c>sign | 0x7E00 | top 9 payload bits</c>, what <c>(Half)f</c> gives.
/// bfloat16: <c>(bits + 0x7FFF + lowest kept bit) &gt;&gt; 16</c>, and every NaN becomes 0x7FC0, as
/// <see cref="BFloat16"/>'s cast does.
/// </para>
/// </remarks>
internal static class HalfConversions
{
    private const uint HalfSign = 0x8000;
    private const uint HalfExponent = 0x7C00;
    private const uint HalfInfinity = 0x7C00;
    private const uint HalfQuietNaN = 0x7E00;
    private const uint HalfToSingleBits = 0x0FFF_E000;
    private const uint ExponentOffset = 0x3800_0000;
    private const uint SubnormalBound = 0x3880_0000;
    private const int SingleMagnitude = 0x7FFF_FFFF;
    private const int SingleInfinity = 0x7F80_0000;
    private const int HalfSmallestNormal = 0x3880_0000;
    private const int HalfRebias = 0x0FFF - 0x3800_0000;
    private const int HalfPayload = 0x1FF;
    private const float HalfSubnormalRounder = 0.5f;
    private const int HalfSubnormalRounderBits = 0x3F00_0000;
    private const uint BFloat16QuietNaN = 0x7FC0;

    /// <summary>float16 bit patterns (one in the low 16 bits of each lane) widened to float32, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WidenHalf(Vector512<uint> half)
    {
        Vector512<uint> exponent = half & Vector512.Create(HalfExponent);
        Vector512<uint> subnormal = Vector512.Equals(exponent, Vector512<uint>.Zero) & Vector512.Create(SubnormalBound);
        Vector512<uint> special = Vector512.Equals(exponent, Vector512.Create(HalfExponent)) & Vector512.Create(ExponentOffset);
        Vector512<uint> bits = ((half << 13) & Vector512.Create(HalfToSingleBits)) + (Vector512.Create(ExponentOffset) | subnormal) + special;
        Vector512<uint> magnitude = (bits.AsSingle() - subnormal.AsSingle()).AsUInt32();
        return (magnitude | ((half & Vector512.Create(HalfSign)) << 16)).AsSingle();
    }

    /// <summary>float16 bit patterns (one in the low 16 bits of each lane) widened to float32, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WidenHalf(Vector256<uint> half)
    {
        Vector256<uint> exponent = half & Vector256.Create(HalfExponent);
        Vector256<uint> subnormal = Vector256.Equals(exponent, Vector256<uint>.Zero) & Vector256.Create(SubnormalBound);
        Vector256<uint> special = Vector256.Equals(exponent, Vector256.Create(HalfExponent)) & Vector256.Create(ExponentOffset);
        Vector256<uint> bits = ((half << 13) & Vector256.Create(HalfToSingleBits)) + (Vector256.Create(ExponentOffset) | subnormal) + special;
        Vector256<uint> magnitude = (bits.AsSingle() - subnormal.AsSingle()).AsUInt32();
        return (magnitude | ((half & Vector256.Create(HalfSign)) << 16)).AsSingle();
    }

    /// <summary>float16 bit patterns (one in the low 16 bits of each lane) widened to float32, exactly.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> WidenHalf(Vector128<uint> half)
    {
        Vector128<uint> exponent = half & Vector128.Create(HalfExponent);
        Vector128<uint> subnormal = Vector128.Equals(exponent, Vector128<uint>.Zero) & Vector128.Create(SubnormalBound);
        Vector128<uint> special = Vector128.Equals(exponent, Vector128.Create(HalfExponent)) & Vector128.Create(ExponentOffset);
        Vector128<uint> bits = ((half << 13) & Vector128.Create(HalfToSingleBits)) + (Vector128.Create(ExponentOffset) | subnormal) + special;
        Vector128<uint> magnitude = (bits.AsSingle() - subnormal.AsSingle()).AsUInt32();
        return (magnitude | ((half & Vector128.Create(HalfSign)) << 16)).AsSingle();
    }

    /// <summary>Each float32 rounded to float16 (to nearest, ties to even), as a bit pattern in the low 16 bits of its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> NarrowToHalf(Vector512<float> value)
    {
        Vector512<uint> sign = (value.AsUInt32() >>> 16) & Vector512.Create(HalfSign);
        Vector512<int> magnitude = value.AsInt32() & Vector512.Create(SingleMagnitude);
        Vector512<int> normal = Vector512.Min((magnitude + Vector512.Create(HalfRebias) + ((magnitude >>> 13) & Vector512<int>.One)) >>> 13, Vector512.Create((int)HalfInfinity));
        Vector512<int> subnormal = (magnitude.AsSingle() + Vector512.Create(HalfSubnormalRounder)).AsInt32() - Vector512.Create(HalfSubnormalRounderBits);
        Vector512<int> nan = Vector512.Create((int)HalfQuietNaN) | ((magnitude >>> 13) & Vector512.Create(HalfPayload));
        Vector512<int> finite = Vector512.ConditionalSelect(Vector512.LessThan(magnitude, Vector512.Create(HalfSmallestNormal)), subnormal, normal);
        return Vector512.ConditionalSelect(Vector512.GreaterThan(magnitude, Vector512.Create(SingleInfinity)), nan, finite).AsUInt32() | sign;
    }

    /// <summary>Each float32 rounded to float16 (to nearest, ties to even), as a bit pattern in the low 16 bits of its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> NarrowToHalf(Vector256<float> value)
    {
        Vector256<uint> sign = (value.AsUInt32() >>> 16) & Vector256.Create(HalfSign);
        Vector256<int> magnitude = value.AsInt32() & Vector256.Create(SingleMagnitude);
        Vector256<int> normal = Vector256.Min((magnitude + Vector256.Create(HalfRebias) + ((magnitude >>> 13) & Vector256<int>.One)) >>> 13, Vector256.Create((int)HalfInfinity));
        Vector256<int> subnormal = (magnitude.AsSingle() + Vector256.Create(HalfSubnormalRounder)).AsInt32() - Vector256.Create(HalfSubnormalRounderBits);
        Vector256<int> nan = Vector256.Create((int)HalfQuietNaN) | ((magnitude >>> 13) & Vector256.Create(HalfPayload));
        Vector256<int> finite = Vector256.ConditionalSelect(Vector256.LessThan(magnitude, Vector256.Create(HalfSmallestNormal)), subnormal, normal);
        return Vector256.ConditionalSelect(Vector256.GreaterThan(magnitude, Vector256.Create(SingleInfinity)), nan, finite).AsUInt32() | sign;
    }

    /// <summary>Each float32 rounded to float16 (to nearest, ties to even), as a bit pattern in the low 16 bits of its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<uint> NarrowToHalf(Vector128<float> value)
    {
        Vector128<uint> sign = (value.AsUInt32() >>> 16) & Vector128.Create(HalfSign);
        Vector128<int> magnitude = value.AsInt32() & Vector128.Create(SingleMagnitude);
        Vector128<int> normal = Vector128.Min((magnitude + Vector128.Create(HalfRebias) + ((magnitude >>> 13) & Vector128<int>.One)) >>> 13, Vector128.Create((int)HalfInfinity));
        Vector128<int> subnormal = (magnitude.AsSingle() + Vector128.Create(HalfSubnormalRounder)).AsInt32() - Vector128.Create(HalfSubnormalRounderBits);
        Vector128<int> nan = Vector128.Create((int)HalfQuietNaN) | ((magnitude >>> 13) & Vector128.Create(HalfPayload));
        Vector128<int> finite = Vector128.ConditionalSelect(Vector128.LessThan(magnitude, Vector128.Create(HalfSmallestNormal)), subnormal, normal);
        return Vector128.ConditionalSelect(Vector128.GreaterThan(magnitude, Vector128.Create(SingleInfinity)), nan, finite).AsUInt32() | sign;
    }

    /// <summary>bfloat16 bit patterns (one in the low 16 bits of each lane) widened to float32: the upper half of the float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> WidenBFloat16(Vector512<uint> bfloat16) => (bfloat16 << 16).AsSingle();

    /// <summary>bfloat16 bit patterns (one in the low 16 bits of each lane) widened to float32: the upper half of the float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> WidenBFloat16(Vector256<uint> bfloat16) => (bfloat16 << 16).AsSingle();

    /// <summary>bfloat16 bit patterns (one in the low 16 bits of each lane) widened to float32: the upper half of the float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> WidenBFloat16(Vector128<uint> bfloat16) => (bfloat16 << 16).AsSingle();

    /// <summary>Each float32 rounded to bfloat16 (to nearest, ties to even; NaN 0x7FC0), as a bit pattern in the low 16 bits of its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> NarrowToBFloat16(Vector512<float> value)
    {
        Vector512<uint> bits = value.AsUInt32();
        Vector512<uint> rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >>> 16) & Vector512<uint>.One)) >>> 16;
        Vector512<int> nan = Vector512.GreaterThan(value.AsInt32() & Vector512.Create(SingleMagnitude), Vector512.Create(SingleInfinity));
        return Vector512.ConditionalSelect(nan.AsUInt32(), Vector512.Create(BFloat16QuietNaN), rounded);
    }

    /// <summary>Each float32 rounded to bfloat16 (to nearest, ties to even; NaN 0x7FC0), as a bit pattern in the low 16 bits of its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> NarrowToBFloat16(Vector256<float> value)
    {
        Vector256<uint> bits = value.AsUInt32();
        Vector256<uint> rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >>> 16) & Vector256<uint>.One)) >>> 16;
        Vector256<int> nan = Vector256.GreaterThan(value.AsInt32() & Vector256.Create(SingleMagnitude), Vector256.Create(SingleInfinity));
        return Vector256.ConditionalSelect(nan.AsUInt32(), Vector256.Create(BFloat16QuietNaN), rounded);
    }

    /// <summary>Each float32 rounded to bfloat16 (to nearest, ties to even; NaN 0x7FC0), as a bit pattern in the low 16 bits of its lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<uint> NarrowToBFloat16(Vector128<float> value)
    {
        Vector128<uint> bits = value.AsUInt32();
        Vector128<uint> rounded = (bits + Vector128.Create(0x7FFFu) + ((bits >>> 16) & Vector128<uint>.One)) >>> 16;
        Vector128<int> nan = Vector128.GreaterThan(value.AsInt32() & Vector128.Create(SingleMagnitude), Vector128.Create(SingleInfinity));
        return Vector128.ConditionalSelect(nan.AsUInt32(), Vector128.Create(BFloat16QuietNaN), rounded);
    }

    /// <summary>Each lane rounded to float16 and widened back: <c>(float)(Half)x</c>, the rounding point of float16 arithmetic.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundToHalf(Vector512<float> value) => WidenHalf(NarrowToHalf(value));

    /// <summary>Each lane rounded to float16 and widened back: <c>(float)(Half)x</c>, the rounding point of float16 arithmetic.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> RoundToHalf(Vector256<float> value) => WidenHalf(NarrowToHalf(value));

    /// <summary>Each lane rounded to float16 and widened back: <c>(float)(Half)x</c>, the rounding point of float16 arithmetic.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> RoundToHalf(Vector128<float> value) => WidenHalf(NarrowToHalf(value));

    /// <summary>Each lane rounded to bfloat16 and widened back: <c>(float)(BFloat16)x</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> RoundToBFloat16(Vector512<float> value) => WidenBFloat16(NarrowToBFloat16(value));

    /// <summary>Each lane rounded to bfloat16 and widened back: <c>(float)(BFloat16)x</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> RoundToBFloat16(Vector256<float> value) => WidenBFloat16(NarrowToBFloat16(value));

    /// <summary>Each lane rounded to bfloat16 and widened back: <c>(float)(BFloat16)x</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> RoundToBFloat16(Vector128<float> value) => WidenBFloat16(NarrowToBFloat16(value));

    /// <summary>The 16 float16 values at <paramref name="offset"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref Half source, nuint offset) => WidenHalf(Load16Bits512(ref Unsafe.As<Half, ushort>(ref source), offset));

    /// <summary>The 8 float16 values at <paramref name="offset"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref Half source, nuint offset) => WidenHalf(Load16Bits256(ref Unsafe.As<Half, ushort>(ref source), offset));

    /// <summary>The 4 float16 values at <paramref name="offset"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(ref Half source, nuint offset) => WidenHalf(Load16Bits128(ref Unsafe.As<Half, ushort>(ref source), offset));

    /// <summary>The 16 bfloat16 values at <paramref name="offset"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load512(ref BFloat16 source, nuint offset) => WidenBFloat16(Load16Bits512(ref Unsafe.As<BFloat16, ushort>(ref source), offset));

    /// <summary>The 8 bfloat16 values at <paramref name="offset"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load256(ref BFloat16 source, nuint offset) => WidenBFloat16(Load16Bits256(ref Unsafe.As<BFloat16, ushort>(ref source), offset));

    /// <summary>The 4 bfloat16 values at <paramref name="offset"/>, widened.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load128(ref BFloat16 source, nuint offset) => WidenBFloat16(Load16Bits128(ref Unsafe.As<BFloat16, ushort>(ref source), offset));

    /// <summary>Rounds the 16 lanes to float16 and stores them at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref Half target, nuint offset) => Store16Bits(NarrowToHalf(value), ref Unsafe.As<Half, ushort>(ref target), offset);

    /// <summary>Rounds the 8 lanes to float16 and stores them at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref Half target, nuint offset) => Store16Bits(NarrowToHalf(value), ref Unsafe.As<Half, ushort>(ref target), offset);

    /// <summary>Rounds the 4 lanes to float16 and stores them at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref Half target, nuint offset) => Store16Bits(NarrowToHalf(value), ref Unsafe.As<Half, ushort>(ref target), offset);

    /// <summary>Rounds the 16 lanes to bfloat16 and stores them at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref BFloat16 target, nuint offset) => Store16Bits(NarrowToBFloat16(value), ref Unsafe.As<BFloat16, ushort>(ref target), offset);

    /// <summary>Rounds the 8 lanes to bfloat16 and stores them at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref BFloat16 target, nuint offset) => Store16Bits(NarrowToBFloat16(value), ref Unsafe.As<BFloat16, ushort>(ref target), offset);

    /// <summary>Rounds the 4 lanes to bfloat16 and stores them at <paramref name="offset"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref BFloat16 target, nuint offset) => Store16Bits(NarrowToBFloat16(value), ref Unsafe.As<BFloat16, ushort>(ref target), offset);

    /// <summary>16 consecutive 16-bit values, zero-extended into 32-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Load16Bits512(ref ushort source, nuint offset) =>
        Vector512.WidenLower(Vector256.LoadUnsafe(ref source, offset).ToVector512Unsafe());

    /// <summary>8 consecutive 16-bit values, zero-extended into 32-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Load16Bits256(ref ushort source, nuint offset) =>
        Vector256.WidenLower(Vector128.LoadUnsafe(ref source, offset).ToVector256Unsafe());

    /// <summary>4 consecutive 16-bit values, zero-extended into 32-bit lanes (an 8-byte load: reads nothing past them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<uint> Load16Bits128(ref ushort source, nuint offset) =>
        Vector128.WidenLower(Vector128.CreateScalarUnsafe(Unsafe.ReadUnaligned<ulong>(ref Unsafe.As<ushort, byte>(ref Unsafe.Add(ref source, offset)))).AsUInt16());

    /// <summary>The low 16 bits of each of the 16 lanes, stored consecutively.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16Bits(Vector512<uint> bits, ref ushort target, nuint offset) =>
        Vector256.Narrow(bits.GetLower(), bits.GetUpper()).StoreUnsafe(ref target, offset);

    /// <summary>The low 16 bits of each of the 8 lanes, stored consecutively.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16Bits(Vector256<uint> bits, ref ushort target, nuint offset) =>
        Vector128.Narrow(bits.GetLower(), bits.GetUpper()).StoreUnsafe(ref target, offset);

    /// <summary>The low 16 bits of each of the 4 lanes, stored consecutively (an 8-byte store: writes nothing past them).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16Bits(Vector128<uint> bits, ref ushort target, nuint offset) =>
        Unsafe.WriteUnaligned(ref Unsafe.As<ushort, byte>(ref Unsafe.Add(ref target, offset)), Vector128.Narrow(bits, bits).AsUInt64().ToScalar());
}
