using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>
/// <c>a·b + c</c> on four floats, rounded once, on every ISA: the FMA instruction where the CPU has it
/// (x86-64-v3 and up, every arm64), and on x86-64-v2 an exact emulation in double precision.
/// </summary>
/// <remarks>
/// <para>
/// torch's weighted bags round each step once (<c>fma</c>), so ours must too. Without the instruction .NET's
/// <see cref="Vector128.FusedMultiplyAdd(Vector128{float}, Vector128{float}, Vector128{float})"/> calls the C
/// library's <c>fmaf</c> once per lane, which made a weighted bag 18× slower than an unweighted one at v2.
/// </para>
/// <para>
/// The emulation, per pair of lanes widened to double: the product <c>p = a·b</c> is exact (24 + 24 bits fit in
/// 53). The sum <c>s = p + c</c> is rounded, and TwoSum gives its error <c>e</c> exactly (<c>s + e = p + c</c>).
/// Rounding to float from <c>s</c> alone could round twice; instead <c>s</c> is first made the sum rounded
/// <em>to odd</em>: when <c>e ≠ 0</c> and <c>s</c>'s last bit is even, <c>s</c> moves one unit toward <c>e</c>
/// (the exact sum lies strictly between <c>s</c> and that neighbour, and the one of the two with an odd last
/// bit is the round-to-odd result). A sum rounded to odd in 53 bits, then rounded to nearest in 24 bits, is
/// the sum rounded to nearest once, since 53 ≥ 24 + 2 (Boldo and Melquiond, "Emulation of FMA and correctly
/// rounded sums: proved algorithms using rounding to odd", IEEE TC 2008). It holds for float subnormal
/// results too, and needs no care for overflow: products and sums of floats are far inside double's range.
/// Infinities and NaNs give <c>e</c> = NaN (or 0) and pass through unadjusted, as the FMA gives them.
/// </para>
/// <para>The rounding to odd costs about 30 SSE4.2 instructions per four lanes, so <see cref="Emulated"/> takes it only
/// for lanes that can need it (below). Both are tested lane for lane against <c>MathF.FusedMultiplyAdd</c>
/// (ExactFusedMultiplyAddTests).</para>
/// </remarks>
internal static class ExactFusedMultiplyAdd
{
    /// <summary>Whether <see cref="MultiplyAdd"/> is the emulation: SSE4.2 without the FMA instruction (x86-64-v2). A constant to the JIT.</summary>
    public static bool IsEmulated
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => !(Fma.IsSupported || AdvSimd.IsSupported) && Sse42.IsSupported;
    }

    /// <summary><c>a·b + c</c> lane-wise, one rounding.</summary>
    /// <remarks>
    /// The test is <see cref="IsEmulated"/>'s, written out with the instruction first: as
    /// <c>IsEmulated ? Emulated(…) : Vector128.FusedMultiplyAdd(…)</c> the ARM64 build copied the broadcast
    /// scale into a fresh register before every <c>fmla</c> of the scaled scatter-add (bench/results/arm64-instruction-counts.md).
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> c) =>
        Fma.IsSupported || AdvSimd.IsSupported || !Sse42.IsSupported
            ? Vector128.FusedMultiplyAdd(a, b, c)
            : Emulated(a, b, c);

    /// <summary>The double-precision emulation (portable vector code), on its own so that the tests run it on any CPU.</summary>
    /// <remarks>
    /// The product is exact, so only the double sum was rounded; rounding it again to float differs from one
    /// rounding only where the double sum is a float halfway point (its low 29 bits are 1 then 28 zeros) or the
    /// float result is subnormal or zero (whose halfway points lie higher). Those lanes are rare in real data (zero
    /// rows are the common one), so the plain double sum is taken unless a lane of the four is one of them; then
    /// all four go through <see cref="RoundedOnce"/>.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> Emulated(Vector128<float> a, Vector128<float> b, Vector128<float> c)
    {
        Vector128<double> lower = Vector128.WidenLower(a) * Vector128.WidenLower(b) + Vector128.WidenLower(c);
        Vector128<double> upper = Vector128.WidenUpper(a) * Vector128.WidenUpper(b) + Vector128.WidenUpper(c);
        Vector128<float> rounded = Vector128.Narrow(lower, upper);
        Vector128<long> lowBits = Vector128.Create((1L << 29) - 1);
        Vector128<long> halfway = Vector128.Create(1L << 28);
        Vector128<long> ties = Vector128.Equals(lower.AsInt64() & lowBits, halfway) | Vector128.Equals(upper.AsInt64() & lowBits, halfway);
        Vector128<int> tiny = Vector128.Equals(rounded.AsInt32() & Vector128.Create(0x7F800000), Vector128<int>.Zero);
        return (ties.AsInt32() | tiny) == Vector128<int>.Zero ? rounded : RoundedOnce(a, b, c);
    }

    /// <summary>The emulation for every lane, halfway points included: the sum rounded to odd in double, then to float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector128<float> RoundedOnce(Vector128<float> a, Vector128<float> b, Vector128<float> c)
    {
        Vector128<double> lower = RoundedToOdd(Vector128.WidenLower(a), Vector128.WidenLower(b), Vector128.WidenLower(c));
        Vector128<double> upper = RoundedToOdd(Vector128.WidenUpper(a), Vector128.WidenUpper(b), Vector128.WidenUpper(c));
        return Vector128.Narrow(lower, upper);
    }

    /// <summary><c>a·b + c</c> rounded to odd in double, for float-valued <paramref name="a"/>, <paramref name="b"/>, <paramref name="c"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<double> RoundedToOdd(Vector128<double> a, Vector128<double> b, Vector128<double> c)
    {
        Vector128<double> product = a * b;
        Vector128<double> sum = product + c;
        // TwoSum (Knuth): the exact error of the rounded sum, whatever the operands' magnitudes.
        Vector128<double> cPart = sum - product;
        Vector128<double> error = (product - (sum - cPart)) + (c - cPart);

        Vector128<long> bits = sum.AsInt64();
        // Inexact (error ≠ 0 and not NaN: the NaN of an infinite sum fails the equality) with an even last bit.
        Vector128<long> inexact = (~Vector128.Equals(error, Vector128<double>.Zero) & Vector128.Equals(error, error)).AsInt64();
        Vector128<long> even = Vector128.Equals(bits & Vector128<long>.One, Vector128<long>.Zero);
        // One unit up in magnitude when error and sum have the same sign, else down: +1 or -1 on the bits.
        Vector128<long> away = Vector128.GreaterThanOrEqual((error.AsInt64() ^ bits), Vector128<long>.Zero);
        Vector128<long> step = Vector128.ConditionalSelect(away, Vector128<long>.One, Vector128<long>.AllBitsSet);
        return (bits + (step & inexact & even)).AsDouble();
    }
}
