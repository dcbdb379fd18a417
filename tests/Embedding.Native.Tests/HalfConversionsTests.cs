using System;
using System.Collections.Generic;
using System.Runtime.Intrinsics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <see cref="HalfConversions"/> at every vector width against the scalar casts, bit for bit: every one of
/// the 65536 float16 and bfloat16 patterns widened, and narrowing of every halfway case between two
/// adjacent 16-bit values (and its float neighbours), the subnormal, overflow and NaN edges, and random floats.
/// </summary>
public sealed class HalfConversionsTests
{
    public static TheoryData<int> Widths => [128, 256, 512];

    /// <summary>All 65536 16-bit patterns, in order.</summary>
    private static uint[] AllPatterns()
    {
        var patterns = new uint[65536];
        for (uint i = 0; i < patterns.Length; i++)
        {
            patterns[i] = i;
        }

        return patterns;
    }

    /// <summary>
    /// Floats whose narrowing exercises every rounding decision: for every pair of adjacent finite 16-bit
    /// values of the type (both signs), the float halfway between them and its two float neighbours; the
    /// float neighbours of every 16-bit value; zeros, float subnormals, the half subnormal and overflow
    /// bounds, infinities, NaNs with many payloads and both signs; and a million random bit patterns (seed 2024).
    /// </summary>
    private static float[] NarrowingCases(bool bfloat16)
    {
        var bits = new List<uint>();
        for (uint pattern = 0; pattern < 0x8000; pattern++)
        {
            float value = bfloat16 ? (float)new BFloat16((ushort)pattern) : (float)BitConverter.UInt16BitsToHalf((ushort)pattern);
            if (!float.IsFinite(value))
            {
                continue;
            }

            uint at = BitConverter.SingleToUInt32Bits(value);
            float next = bfloat16 ? (float)new BFloat16((ushort)(pattern + 1)) : (float)BitConverter.UInt16BitsToHalf((ushort)(pattern + 1));
            uint halfway = BitConverter.SingleToUInt32Bits((float)(((double)value + next) / 2));
            foreach (uint b in new[] { at - 1, at, at + 1, halfway - 1, halfway, halfway + 1 })
            {
                bits.Add(b);
                bits.Add(b | 0x8000_0000);
            }
        }

        // float16 subnormal and overflow bounds, float subnormals, zeros, infinities.
        foreach (uint b in new uint[] { 0, 1, 2, 0x007F_FFFF, 0x0080_0000, 0x3300_0000, 0x3300_0001, 0x3380_0000, 0x387F_E000, 0x387F_F000, 0x387F_FFFF, 0x3880_0000, 0x477F_E000, 0x477F_EFFF, 0x477F_F000, 0x477F_F001, 0x4780_0000, 0x7F7F_FFFF, 0x7F80_0000 })
        {
            bits.Add(b);
            bits.Add(b | 0x8000_0000);
        }

        // NaNs: signalling and quiet, every payload bit on its own, and their neighbours of the bounds.
        for (int bit = 0; bit < 23; bit++)
        {
            bits.Add(0x7F80_0000u | (1u << bit));
            bits.Add(0x7FC0_0000u | (1u << bit));
            bits.Add(0xFF80_0000u | (1u << bit));
        }

        bits.AddRange([0x7F80_0001, 0x7FBF_FFFF, 0x7FC0_0000, 0x7FFF_FFFF, 0xFFC0_0000, 0xFFFF_FFFF, 0x7F80_1FFF, 0x7F80_2000]);
        var random = new Random(2024);
        for (int i = 0; i < 1_000_000; i++)
        {
            bits.Add((uint)random.NextInt64(0, 1L << 32));
        }

        // A whole number of the widest vector.
        while (bits.Count % 16 != 0)
        {
            bits.Add(0);
        }

        float[] values = new float[bits.Count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = BitConverter.UInt32BitsToSingle(bits[i]);
        }

        return values;
    }

    private static float[] Widen(uint[] patterns, int width, bool bfloat16)
    {
        var result = new float[patterns.Length];
        for (int i = 0; i < patterns.Length; i += width / 32)
        {
            switch (width)
            {
                case 512:
                    Vector512<uint> wide = Vector512.Create(patterns.AsSpan(i, 16));
                    (bfloat16 ? HalfConversions.WidenBFloat16(wide) : HalfConversions.WidenHalf(wide)).CopyTo(result, i);
                    break;
                case 256:
                    Vector256<uint> middle = Vector256.Create(patterns.AsSpan(i, 8));
                    (bfloat16 ? HalfConversions.WidenBFloat16(middle) : HalfConversions.WidenHalf(middle)).CopyTo(result, i);
                    break;
                default:
                    Vector128<uint> narrow = Vector128.Create(patterns.AsSpan(i, 4));
                    (bfloat16 ? HalfConversions.WidenBFloat16(narrow) : HalfConversions.WidenHalf(narrow)).CopyTo(result, i);
                    break;
            }
        }

        return result;
    }

    private static uint[] Narrow(float[] values, int width, bool bfloat16)
    {
        var result = new uint[values.Length];
        for (int i = 0; i < values.Length; i += width / 32)
        {
            switch (width)
            {
                case 512:
                    Vector512<float> wide = Vector512.Create(values.AsSpan(i, 16));
                    (bfloat16 ? HalfConversions.NarrowToBFloat16(wide) : HalfConversions.NarrowToHalf(wide)).CopyTo(result, i);
                    break;
                case 256:
                    Vector256<float> middle = Vector256.Create(values.AsSpan(i, 8));
                    (bfloat16 ? HalfConversions.NarrowToBFloat16(middle) : HalfConversions.NarrowToHalf(middle)).CopyTo(result, i);
                    break;
                default:
                    Vector128<float> narrow = Vector128.Create(values.AsSpan(i, 4));
                    (bfloat16 ? HalfConversions.NarrowToBFloat16(narrow) : HalfConversions.NarrowToHalf(narrow)).CopyTo(result, i);
                    break;
            }
        }

        return result;
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void WidenHalf_EveryPatternAsTheScalarCast(int width)
    {
        uint[] patterns = AllPatterns();
        float[] actual = Widen(patterns, width, bfloat16: false);
        for (int i = 0; i < patterns.Length; i++)
        {
            uint expected = BitConverter.SingleToUInt32Bits((float)BitConverter.UInt16BitsToHalf((ushort)patterns[i]));
            uint got = BitConverter.SingleToUInt32Bits(actual[i]);
            Assert.True(expected == got, $"V{width}: half 0x{patterns[i]:X4} widened to 0x{got:X8}, the scalar cast gives 0x{expected:X8}");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void WidenBFloat16_EveryPatternAsTheScalarCast(int width)
    {
        uint[] patterns = AllPatterns();
        float[] actual = Widen(patterns, width, bfloat16: true);
        for (int i = 0; i < patterns.Length; i++)
        {
            uint expected = BitConverter.SingleToUInt32Bits((float)new BFloat16((ushort)patterns[i]));
            uint got = BitConverter.SingleToUInt32Bits(actual[i]);
            Assert.True(expected == got, $"V{width}: bfloat16 0x{patterns[i]:X4} widened to 0x{got:X8}, the scalar cast gives 0x{expected:X8}");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void NarrowToHalf_RoundsAsTheScalarCast(int width)
    {
        float[] values = NarrowingCases(bfloat16: false);
        uint[] actual = Narrow(values, width, bfloat16: false);
        for (int i = 0; i < values.Length; i++)
        {
            uint expected = BitConverter.HalfToUInt16Bits((Half)values[i]);
            Assert.True(expected == actual[i], $"V{width}: 0x{BitConverter.SingleToUInt32Bits(values[i]):X8} narrowed to 0x{actual[i]:X8}, (Half) gives 0x{expected:X4}");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void NarrowToBFloat16_RoundsAsTheScalarCast(int width)
    {
        float[] values = NarrowingCases(bfloat16: true);
        uint[] actual = Narrow(values, width, bfloat16: true);
        for (int i = 0; i < values.Length; i++)
        {
            uint expected = ((BFloat16)values[i]).Bits;
            Assert.True(expected == actual[i], $"V{width}: 0x{BitConverter.SingleToUInt32Bits(values[i]):X8} narrowed to 0x{actual[i]:X8}, (BFloat16) gives 0x{expected:X4}");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void LoadAndStore_MoveTheLanesAtAnyOffsetAndTouchNothingElse(int width)
    {
        int lanes = width / 32;
        var random = new Random(width);
        var halves = new Half[64];
        var bfloats = new BFloat16[64];
        for (int i = 0; i < halves.Length; i++)
        {
            halves[i] = BitConverter.UInt16BitsToHalf((ushort)random.Next(65536));
            bfloats[i] = new BFloat16((ushort)random.Next(65536));
        }

        for (int offset = 0; offset + lanes <= 40; offset++)
        {
            var halfCopy = new Half[64];
            var bfloatCopy = new BFloat16[64];
            Array.Fill(halfCopy, BitConverter.UInt16BitsToHalf(0x5555));
            Array.Fill(bfloatCopy, new BFloat16(0x5555));
            nuint at = (nuint)offset;
            switch (width)
            {
                case 512:
                    HalfConversions.Store(HalfConversions.Load512(ref halves[0], at), ref halfCopy[0], at);
                    HalfConversions.Store(HalfConversions.Load512(ref bfloats[0], at), ref bfloatCopy[0], at);
                    break;
                case 256:
                    HalfConversions.Store(HalfConversions.Load256(ref halves[0], at), ref halfCopy[0], at);
                    HalfConversions.Store(HalfConversions.Load256(ref bfloats[0], at), ref bfloatCopy[0], at);
                    break;
                default:
                    HalfConversions.Store(HalfConversions.Load128(ref halves[0], at), ref halfCopy[0], at);
                    HalfConversions.Store(HalfConversions.Load128(ref bfloats[0], at), ref bfloatCopy[0], at);
                    break;
            }

            for (int i = 0; i < halves.Length; i++)
            {
                bool inside = i >= offset && i < offset + lanes;
                ushort half = BitConverter.HalfToUInt16Bits(halves[i]);
                ushort expectedHalf = !inside ? (ushort)0x5555
                    : Half.IsNaN(halves[i]) ? (ushort)(half | 0x0200)
                    : half;
                ushort expectedBFloat = !inside ? (ushort)0x5555
                    : float.IsNaN((float)bfloats[i]) ? (ushort)0x7FC0
                    : bfloats[i].Bits;
                Assert.Equal(expectedHalf, BitConverter.HalfToUInt16Bits(halfCopy[i]));
                Assert.Equal(expectedBFloat, bfloatCopy[i].Bits);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Round_IsTheScalarRoundTrip(int width)
    {
        float[] values = NarrowingCases(bfloat16: false);
        var half = new float[values.Length];
        var bfloat = new float[values.Length];
        for (int i = 0; i < values.Length; i += width / 32)
        {
            switch (width)
            {
                case 512:
                    HalfConversions.RoundToHalf(Vector512.Create(values.AsSpan(i, 16))).CopyTo(half, i);
                    HalfConversions.RoundToBFloat16(Vector512.Create(values.AsSpan(i, 16))).CopyTo(bfloat, i);
                    break;
                case 256:
                    HalfConversions.RoundToHalf(Vector256.Create(values.AsSpan(i, 8))).CopyTo(half, i);
                    HalfConversions.RoundToBFloat16(Vector256.Create(values.AsSpan(i, 8))).CopyTo(bfloat, i);
                    break;
                default:
                    HalfConversions.RoundToHalf(Vector128.Create(values.AsSpan(i, 4))).CopyTo(half, i);
                    HalfConversions.RoundToBFloat16(Vector128.Create(values.AsSpan(i, 4))).CopyTo(bfloat, i);
                    break;
            }
        }

        for (int i = 0; i < values.Length; i++)
        {
            uint expectedHalf = BitConverter.SingleToUInt32Bits((float)(Half)values[i]), expectedBFloat = BitConverter.SingleToUInt32Bits((float)(BFloat16)values[i]);
            Assert.True(expectedHalf == BitConverter.SingleToUInt32Bits(half[i]), $"V{width}: 0x{BitConverter.SingleToUInt32Bits(values[i]):X8} rounded through half to 0x{BitConverter.SingleToUInt32Bits(half[i]):X8}, expected 0x{expectedHalf:X8}");
            Assert.True(expectedBFloat == BitConverter.SingleToUInt32Bits(bfloat[i]), $"V{width}: 0x{BitConverter.SingleToUInt32Bits(values[i]):X8} rounded through bfloat16 to 0x{BitConverter.SingleToUInt32Bits(bfloat[i]):X8}, expected 0x{expectedBFloat:X8}");
        }
    }
}
