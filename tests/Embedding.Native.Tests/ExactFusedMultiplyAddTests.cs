using System;
using System.Runtime.Intrinsics;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <see cref="ExactFusedMultiplyAdd"/>'s double-precision emulation (the screened double sum and the rounding to
/// odd it falls back to, each on its own) against <see cref="MathF.FusedMultiplyAdd"/>
/// (one rounding, by hardware or by the C library), bit for bit: random operands of every magnitude, the cases
/// where rounding the double sum to float would round twice (exact sums a hair off a float halfway point),
/// cancellation, subnormal results, signed zeros, infinities and NaNs. The emulation is portable vector code,
/// so it runs on any CPU; the dispatching entry point must give the FMA's bits on every ISA setting the suite
/// runs under (with AVX2 off it is the emulation itself).
/// </summary>
public sealed class ExactFusedMultiplyAddTests
{
    private static readonly float[] Specials =
    [
        0f, -0f, 1f, -1f, float.Epsilon, -float.Epsilon, float.MaxValue, -float.MaxValue, float.MinValue,
        float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1.17549435e-38f, 1e-30f, 3e30f, 0.1f, 1 / 3f,
        BitConverter.Int32BitsToSingle(0x007FFFFF), BitConverter.Int32BitsToSingle(0x3F800001), 16777215f, 16777217f,
    ];

    private static void AssertEmulationMatches(float a, float b, float c)
    {
        float expected = MathF.FusedMultiplyAdd(a, b, c);
        Vector128<float> x = Vector128.Create(a, b, a, -a), y = Vector128.Create(b, a, b, b), z = Vector128.Create(c, c, -c, -c);
        Vector128<float> lanes = ExactFusedMultiplyAdd.Emulated(x, y, z);
        Vector128<float> roundedOnce = ExactFusedMultiplyAdd.RoundedOnce(x, y, z);
        float[] want = [expected, MathF.FusedMultiplyAdd(b, a, c), MathF.FusedMultiplyAdd(a, b, -c), MathF.FusedMultiplyAdd(-a, b, -c)];
        for (int result = 0; result < 8; result++)
        {
            int lane = result % 4;
            float got = result < 4 ? lanes.GetElement(lane) : roundedOnce.GetElement(lane);
            if (float.IsNaN(want[lane]))
            {
                Assert.True(float.IsNaN(got), $"fma lane {lane} of ({a:R}, {b:R}, {c:R}): NaN expected, got {got:R}");
                continue;
            }

            Assert.True(BitConverter.SingleToInt32Bits(want[lane]) == BitConverter.SingleToInt32Bits(got),
                $"fma lane {lane} of ({a:R}, {b:R}, {c:R}): {want[lane]:R} expected, got {got:R}");
        }
    }

    [Fact]
    public void Emulation_IsOneRounding_OnSpecialOperands()
    {
        foreach (float a in Specials)
        {
            foreach (float b in Specials)
            {
                foreach (float c in Specials)
                {
                    AssertEmulationMatches(a, b, c);
                }
            }
        }
    }

    [Fact]
    public void Emulation_IsOneRounding_WhereRoundingTheDoubleSumWouldRoundTwice()
    {
        var random = new Random(20261205);
        float x = MathF.ScaleB(1f, -12);
        int doubleRoundingCases = 0;
        for (int trial = 0; trial < 100_000; trial++)
        {
            // c = F, a float; a·b = half of F's last place times (1 ± 2⁻³⁶): (1 + x)(1 - x + x²) = 1 + x³ with
            // x = 2⁻¹². The exact sum is a hair off F's halfway point, too close for double to hold (23 + 37 bits),
            // so rounding the double sum to float meets a tie and rounds to even, the wrong way half the time.
            int exponent = random.Next(-100, 100);
            float f = MathF.ScaleB(1f + random.Next(0, 1 << 23) / (float)(1 << 23), exponent);
            float halfUlp = MathF.ScaleB(1f, exponent - 24);
            bool above = random.Next(2) == 0;
            float a = halfUlp * (above ? 1 + x : 1 - x);
            float b = above ? 1 - x + x * x : 1 + x + x * x;
            float sign = random.Next(2) == 0 ? 1f : -1f;
            AssertEmulationMatches(sign * a, b, sign * f);
            if ((float)((double)(sign * a) * b + sign * f) != MathF.FusedMultiplyAdd(sign * a, b, sign * f))
            {
                doubleRoundingCases++;
            }

            // And random operands of every magnitude.
            float ra = (float)(random.NextDouble() * 2 - 1) * MathF.ScaleB(1f, random.Next(-60, 61));
            float rb = (float)(random.NextDouble() * 2 - 1) * MathF.ScaleB(1f, random.Next(-60, 61));
            float rc = (float)(random.NextDouble() * 2 - 1) * MathF.ScaleB(1f, random.Next(-120, 121));
            AssertEmulationMatches(ra, rb, rc);
        }

        // The trials must really contain double-rounding cases, or this test would prove nothing.
        Assert.True(doubleRoundingCases > 10_000, $"only {doubleRoundingCases} double-rounding cases were drawn");
    }

    [Fact]
    public void Emulation_IsOneRounding_OnRandomBitPatterns()
    {
        var random = new Random(7);
        for (int trial = 0; trial < 300_000; trial++)
        {
            float a = BitConverter.Int32BitsToSingle(random.Next() ^ (random.Next(2) << 31));
            float b = BitConverter.Int32BitsToSingle(random.Next() ^ (random.Next(2) << 31));
            // Exponents near each other's product make the sums interesting (cancellation, subnormals).
            float c = random.Next(3) == 0
                ? -a * b * (1 + (float)random.NextDouble() * 1e-6f)
                : BitConverter.Int32BitsToSingle(random.Next() ^ (random.Next(2) << 31));
            AssertEmulationMatches(a, b, c);
        }
    }

    [Fact]
    public void MultiplyAdd_IsTheFusedMultiplyAdd_OnThisIsaSetting()
    {
        var random = new Random(3);
        for (int trial = 0; trial < 50_000; trial++)
        {
            Vector128<float> a = Vector128.Create((float)random.NextDouble() - 0.5f, (float)random.NextDouble(), 3f, 1e-20f);
            Vector128<float> b = Vector128.Create((float)random.NextDouble(), -(float)random.NextDouble(), 1f / 3f, 1e-20f);
            Vector128<float> c = Vector128.Create((float)random.NextDouble(), 0.1f, -1f, float.Epsilon);
            Vector128<float> got = ExactFusedMultiplyAdd.MultiplyAdd(a, b, c);
            for (int lane = 0; lane < 4; lane++)
            {
                Assert.Equal(BitConverter.SingleToInt32Bits(MathF.FusedMultiplyAdd(a[lane], b[lane], c[lane])),
                             BitConverter.SingleToInt32Bits(got[lane]));
            }
        }
    }
}
