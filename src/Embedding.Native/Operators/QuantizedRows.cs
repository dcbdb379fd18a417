using System;
using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// The lane operations of a quantized bag at one vector width: widen a row's 8-, 4- or 2-bit codes to
/// float lanes, fold one dequantized row into the accumulators with torch 1.13's rounding, finish a mean
/// and store. With <see cref="IQuantizedRow"/> (which code width a table has) this lets
/// <see cref="GenericQuantizedBag{TIndex, TRow}"/> be written once and specialised per width and code
/// width by the compiler; a kernel specialised per dimension calls the same members with the columns
/// folded in. Public only so that kernels generated into a consumer assembly can call it.
/// </summary>
/// <remarks>
/// <para>
/// <b>The arithmetic.</b> torch 1.13 without FBGEMM dequantizes and accumulates one column at a time as
/// <c>out[j] = fma(scale, code_j, out[j] + bias)</c> where the code is a <c>uint8_t</c>, so C++ picks the
/// double overload of <c>fma</c>: <c>out[j] = (float)((double)scale · code_j + (double)(out[j] + bias))</c>.
/// The float sum <c>out[j] + bias</c> is rounded to float first; the product of a float (24 significant
/// bits) and a code (at most 8) is exact in double (53), so the double fma rounds once, exactly like a
/// double multiply followed by a double add; then the result is rounded again, to float. The double path of every
/// width does exactly that per lane (<see cref="MultiplyAdd"/>): float add, widen both to double, multiply-add
/// (fused or not: the same bits, since the product is exact), narrow with round-to-nearest-even.
/// </para>
/// <para>
/// <b>A float FMA where it is exact.</b> A float FMA <c>fma(scale, code, acc + bias)</c> rounds the exact value
/// <c>x</c> once; torch rounds it to double and then to float. The two differ only when <c>x</c> needs more than 53 bits
/// and its double rounding lands on the midpoint of two floats (then ties-to-even decides instead of the discarded
/// bits), e.g. scale = 16519105·2⁻⁵⁵, code = 130, bias = 1: x = 1 + 2⁻²⁴ + 2⁻⁵⁴, torch gives 1, a float FMA 1 + 2⁻²³
/// (QuantizedBagTests checks torch's answer). Emulating the double rounding in float lanes would need the exact
/// remainder of the FMA (a product split, two two-sums and a midpoint test per lane), more work than the double path.
/// But x needs more than 53 bits only when the sum and the row's scale are more than about 2²⁸ apart (the row's window,
/// proved in <see cref="QuantizedRowFactors"/>). So a kernel runs each pass over a bag twice at most: first with float
/// FMAs only (<see cref="MultiplyAddTracked"/>: two instructions and about 7 cycles of latency on the accumulator, plus
/// three integer instructions off it that fold every sum into a lane-wise maximum of window offsets), tested once at the
/// end (<see cref="AllInside"/>); only when a sum left its window (in practice: a scale that is subnormal or tiny next
/// to the sums, or exact cancellation) does the pass run again with <see cref="MultiplyAdd"/>, which takes the float
/// FMA for the vectors the window proves and the double path for the rest (about 25 cycles for the conversions).
/// </para>
/// <para>
/// <b>Codes.</b> Column j of an 8-bit row is byte j; of a 4-bit row the nibble <c>4·(j % 2)</c> of byte
/// j/2 (low nibble first); of a 2-bit row bits <c>2·(j % 4)</c> of byte j/4. The vector widths unpack with
/// shifts and masks on integer lanes (every code of a byte is moved to a byte of its own, in column order)
/// and widen bytes to float lanes (one zero-extending instruction where the ISA has it: the cross-platform
/// widening takes two); the first column must be a multiple of the codes per byte (the kernels ensure it).
/// The scalar width takes any column.
/// </para>
/// </remarks>
/// <typeparam name="TVector">The accumulator: <see cref="float"/>, <see cref="Vector128{T}"/>, <see cref="Vector256{T}"/> or <see cref="Vector512{T}"/> of float.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IQuantizedCodes<TVector>
{
    /// <summary>Columns per vector (float lanes).</summary>
    static abstract int Lanes { get; }

    /// <summary>Every lane +0.0: the start of a bag, as torch's <c>memset</c>.</summary>
    static abstract TVector Zero { get; }

    /// <summary>The 8-bit codes of columns <c>[column, column + Lanes)</c> of a row, as floats.</summary>
    /// <param name="codes">The row's first code byte.</param>
    /// <param name="column">The first column.</param>
    static abstract TVector Codes8(ref byte codes, nuint column);

    /// <summary>The 4-bit codes of columns <c>[column, column + Lanes)</c>, as floats; <paramref name="column"/> is even (any column at the scalar width).</summary>
    /// <inheritdoc cref="Codes8"/>
    static abstract TVector Codes4(ref byte codes, nuint column);

    /// <summary>The 2-bit codes of columns <c>[column, column + Lanes)</c>, as floats; <paramref name="column"/> is a multiple of 4 (any column at the scalar width).</summary>
    /// <inheritdoc cref="Codes8"/>
    static abstract TVector Codes2(ref byte codes, nuint column);

    /// <summary>
    /// One dequantized row folded into the accumulators, torch's rounding in every lane:
    /// <c>(float)((double)row.Scale · codes + (double)(accumulator + row.Bias))</c>, computed as a float FMA where
    /// <see cref="QuantizedRowFactors"/> proves that gives the same bits, else in double.
    /// </summary>
    /// <param name="accumulator">The bag's running sums.</param>
    /// <param name="codes">The row's codes (<see cref="Codes8"/> …).</param>
    /// <param name="row">The row's weighted scale and bias (<see cref="IQuantizedRow.ScaleBias"/>).</param>
    static abstract TVector MultiplyAdd(TVector accumulator, TVector codes, in QuantizedRowFactors row);

    /// <summary>A row's <see cref="QuantizedRowFactors"/> broadcast to every lane, once per row, for <see cref="MultiplyAddTracked"/>.</summary>
    /// <param name="row">The row's factors.</param>
    /// <param name="first">True when the row is the bag's first counted position (<c>count == 1</c>: every accumulator still +0); its window start is then <see cref="QuantizedRowFactors.FirstRowWindowStart"/>. False is always correct (a zero sum then only costs the exact pass).</param>
    static abstract QuantizedRowVectors<TVector> Broadcast(in QuantizedRowFactors row, bool first);

    /// <summary>
    /// The speculative step: <c>fma(codes, row.Scale, accumulator + row.Bias)</c> in float, and every lane's sum folded into
    /// <paramref name="outside"/> (<see cref="QuantizedRowFactors.WindowOffset"/>, the lane-wise unsigned maximum). When at the
    /// end of a pass every row was <see cref="QuantizedRowFactors.Windowed"/> and <see cref="AllInside"/> holds, every step had
    /// torch's bits; otherwise the pass is run again with <see cref="MultiplyAdd"/>.
    /// </summary>
    /// <param name="accumulator">The bag's running sums.</param>
    /// <param name="codes">The row's codes.</param>
    /// <param name="row">The row's weighted scale, bias and window start (<see cref="Broadcast"/>).</param>
    /// <param name="outside">The pass's largest window offset per lane (unsigned integer lanes, kept in a float vector; start from <see cref="Zero"/>).</param>
    static abstract TVector MultiplyAddTracked(TVector accumulator, TVector codes, in QuantizedRowVectors<TVector> row, ref TVector outside);

    /// <summary>True when every lane of <paramref name="outside"/> (from <see cref="MultiplyAddTracked"/>) lies below <see cref="QuantizedRowFactors.WindowWidth"/>.</summary>
    static abstract bool AllInside(TVector outside);

    /// <summary>Lane-wise <c>value / count</c> in float (a true division): the mean.</summary>
    static abstract TVector Divide(TVector value, float count);

    /// <summary>Stores the <see cref="Lanes"/> floats at column <paramref name="column"/>.</summary>
    static abstract void Store(TVector value, ref float target, nuint column);
}

/// <summary>
/// One code width of a row-wise quantized table: where its codes and its scale and bias live, and which
/// <see cref="IQuantizedCodes{TVector}"/> member widens its codes. Public only so that kernels generated
/// into a consumer assembly can call it; it validates nothing.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public interface IQuantizedRow
{
    /// <summary>The code width.</summary>
    static abstract QuantizedBits Bits { get; }

    /// <summary>Codes per byte: 1, 2 or 4.</summary>
    static abstract int CodesPerByte { get; }

    /// <summary>Bytes of scale plus bias after the codes: 8 (two float32) or 4 (two float16).</summary>
    static abstract int ScaleBiasBytes { get; }

    /// <summary>The codes of <c>Lanes</c> columns from <paramref name="column"/>, as floats in <typeparamref name="TVector"/>'s lanes.</summary>
    static abstract TVector Codes<TVector, TCodes>(ref byte codes, nuint column)
        where TCodes : IQuantizedCodes<TVector>;

    /// <summary>
    /// torch's per-row factors: <c>scale = weight · rowScale</c> and <c>bias = weight · rowBias</c>, float
    /// products (float16 scale and bias are widened first, exactly). An unweighted bag passes 1, whose products are exact.
    /// </summary>
    /// <param name="scaleBias">The row's first byte after its codes.</param>
    /// <param name="weight">The position's per-sample weight, or 1.</param>
    static abstract QuantizedRowFactors ScaleBias(ref byte scaleBias, float weight);
}

/// <summary>
/// One row's weighted scale and bias, and the window of sums for which a float FMA gives torch's double-rounded bits
/// (see remarks): what <see cref="IQuantizedCodes{TVector}.MultiplyAdd"/> needs per row, computed once per row and position.
/// </summary>
/// <remarks>
/// <para>
/// <b>Claim.</b> Let <c>A = fl32(acc + bias)</c> (the float sum every path computes first), <c>s</c> the weighted scale
/// and <c>c</c> an integer code in [0, 255]. torch computes <c>r₂ = fl32(fl64(A + c·s))</c>; a float FMA computes
/// <c>r₁ = fl32(A + c·s)</c>. If the exact sum <c>x = A + c·s</c> is a double, then <c>fl64(x) = x</c> and
/// <c>r₂ = r₁</c>, whatever the rounding does next (ties, overflow to infinity, a subnormal result). The kernels keep a
/// float FMA only where every lane satisfies the condition below, which implies that x is a double; anything else is
/// computed again on the double path, so every lane has torch's bits.
/// </para>
/// <para>
/// <b>Condition.</b> With e(v) the exponent of the leading bit of v (so <c>2^e ≤ |v| &lt; 2^(e+1)</c>, subnormals included):
/// s finite and normal with <c>−106 ≤ e(s) ≤ 99</c>, and A = 0 or <c>e(s) − 20 ≤ e(A) ≤ e(s) + 28</c> (the window: 49 binades);
/// or s = 0 and A finite.
/// </para>
/// <para>
/// <b>Proof.</b> Every set bit of a float v lies in [e(v) − 23, e(v)] (a subnormal's lowest bit is 2⁻¹⁴⁹ ≥ e(v) − 23
/// because e(v) ≤ −127). If c = 0 or s = 0 then x = A, a float. Otherwise <c>c·s</c> is an integer multiple of the lowest bit of
/// s, so its bits lie at or above e(s) − 23, and <c>|c·s| &lt; 2⁸ · 2^(e(s)+1)</c>, so at or below e(s) + 8. If A = 0 then
/// x = c·s, which has at most 8 + 24 bits: a double. Otherwise the bits of x lie between
/// <c>min(e(A), e(s)) − 23</c> and <c>max(e(A), e(s) + 8) + 1</c> (the + 1 for a carry), a span of at most
/// <c>max(e(A), e(s) + 8) − min(e(A), e(s)) + 25</c> bits; in the window the difference is at most 28 (e(A) ≥ e(s) + 8:
/// e(A) − e(s) ≤ 28; e(A) ≤ e(s): e(s) + 8 − e(A) ≤ 28; between: 8), so x spans at most 53 bits. Its magnitude lies
/// between 2⁻¹⁴⁹ and 2¹³⁷, where doubles are normal: x is a double. ∎
/// </para>
/// <para>
/// <b>Test.</b> Non-negative float bits order like magnitudes, and doubling a float's bits (an integer add of the bits to
/// themselves) drops the sign. So with <see cref="WindowStart"/> the doubled bits of 2^(e(s) − 20), a lane is in the window
/// exactly when <c>2·bits(A) − WindowStart</c>, unsigned, lies below <see cref="WindowWidth"/> (49 binades of doubled bits);
/// the bounds on e(s) keep both ends of the window normal and finite, and a zero A counts as offset 0
/// (<see cref="WindowOffset"/>). The range of e(s) makes the window a constant width, so a kernel can fold every lane of every
/// row of a pass into one lane-wise maximum (three or four integer instructions a vector, no branch) and test it once at the
/// end of the pass: <see cref="IQuantizedCodes{TVector}.MultiplyAddTracked"/>. A zero scale takes a window around 1 (any
/// window is proven for it); a subnormal, tiny (below 2⁻¹⁰⁶), huge (2¹⁰⁰ and up) or non-finite scale proves nothing
/// (<see cref="Windowed"/> false: its passes take the double path, as torch computes).
/// </para>
/// </remarks>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedRowFactors
{
    /// <summary>The window's width in doubled float bits: 49 binades, e(s) − 20 … e(s) + 28.</summary>
    public const uint WindowWidth = 49u << 24;

    /// <summary>True where a float FMA is one instruction (x86 FMA3, ARM64): the kernels then run a speculative float pass first and prove its bits; elsewhere every step takes the double path.</summary>
    public static bool SpeculatesInFloat => Fma.IsSupported || AdvSimd.IsSupported;

    /// <summary>The factors of a row whose weighted scale and bias are <paramref name="scale"/> and <paramref name="bias"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public QuantizedRowFactors(float scale, float bias)
    {
        Scale = scale;
        Bias = bias;
        uint bits = BitConverter.SingleToUInt32Bits(scale);
        uint exponent = bits & 0x7F80_0000u;
        if (exponent - (21u << 23) <= (226u - 21u) << 23)
        {
            // Biased exponent 21 … 226 (e(s) in −106 … 99): the window starts at a normal float and ends at or below infinity, which lies outside it.
            WindowStart = (exponent - (20u << 23)) << 1;
            Windowed = true;
        }
        else
        {
            // c·s = 0 proves every finite sum (any window will do: one around 1); a subnormal, extreme or non-finite scale none.
            Windowed = (bits & int.MaxValue) == 0;
            WindowStart = (127u - 20u) << 24;
        }
    }

    /// <summary>The weighted scale <c>s = w · scale</c>.</summary>
    public float Scale { get; }

    /// <summary>The weighted bias <c>w · bias</c>.</summary>
    public float Bias { get; }

    /// <summary>The doubled float bits of 2^(e(s) − 20), where the window starts.</summary>
    public uint WindowStart { get; }

    /// <summary>False when the scale proves no sum exact (subnormal, extreme or non-finite): every step of the row takes the double path.</summary>
    public bool Windowed { get; }

    /// <summary>
    /// The window start for the first row a pass adds, whose sums are all <c>+0 + bias</c>, one float: a start that puts
    /// every lane at offset 0 when that sum is proven (zero included), and past the window when it is not. So the vector
    /// widths need no test for a zero sum (<see cref="IQuantizedCodes{TVector}.MultiplyAddTracked"/>): the only zero sums
    /// they meet elsewhere come from exact cancellation, which fails the pass and only costs time.
    /// </summary>
    public uint FirstRowWindowStart
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            uint doubled = BitConverter.SingleToUInt32Bits(Bias) << 1;
            return Windowed && WindowOffset(Bias, WindowStart) < WindowWidth ? doubled : doubled + 2;
        }
    }

    /// <summary>
    /// A sum's offset into the window of <paramref name="windowStart"/>: <c>2·bits(sum) − windowStart</c> as an unsigned
    /// integer, or 0 for a zero sum; in the window exactly when below <see cref="WindowWidth"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint WindowOffset(float sum, uint windowStart)
    {
        uint doubled = BitConverter.SingleToUInt32Bits(sum) << 1;
        return doubled == 0 ? 0 : doubled - windowStart;
    }
}

/// <summary>A row's weighted scale, bias and window start in every lane of <typeparamref name="TVector"/> (<see cref="IQuantizedCodes{TVector}.Broadcast"/>).</summary>
/// <typeparam name="TVector">The accumulator type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedRowVectors<TVector>
{
    /// <summary>Holds the three broadcasts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public QuantizedRowVectors(TVector scale, TVector bias, TVector windowStart)
    {
        Scale = scale;
        Bias = bias;
        WindowStart = windowStart;
    }

    /// <summary>The weighted scale.</summary>
    public TVector Scale { get; }

    /// <summary>The weighted bias.</summary>
    public TVector Bias { get; }

    /// <summary><see cref="QuantizedRowFactors.WindowStart"/> (unsigned integer lanes, kept as float lanes).</summary>
    public TVector WindowStart { get; }
}

/// <summary>8-bit rows (torch's <c>embedding_bag_byte</c>): a code per byte, float32 scale and bias.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedRow8 : IQuantizedRow
{
    /// <inheritdoc/>
    public static QuantizedBits Bits => QuantizedBits.Eight;

    /// <inheritdoc/>
    public static int CodesPerByte => 1;

    /// <inheritdoc/>
    public static int ScaleBiasBytes => 2 * sizeof(float);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Codes<TVector, TCodes>(ref byte codes, nuint column)
        where TCodes : IQuantizedCodes<TVector> => TCodes.Codes8(ref codes, column);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowFactors ScaleBias(ref byte scaleBias, float weight) =>
        new(weight * QuantizedScalars.Single(ref scaleBias), weight * QuantizedScalars.Single(ref Unsafe.Add(ref scaleBias, sizeof(float))));
}

/// <summary>4-bit rows (torch's <c>quint4x2</c>, <c>embedding_bag_4bit</c>): two codes per byte, low nibble first; float16 scale and bias.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedRow4 : IQuantizedRow
{
    /// <inheritdoc/>
    public static QuantizedBits Bits => QuantizedBits.Four;

    /// <inheritdoc/>
    public static int CodesPerByte => 2;

    /// <inheritdoc/>
    public static int ScaleBiasBytes => 2 * sizeof(ushort);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Codes<TVector, TCodes>(ref byte codes, nuint column)
        where TCodes : IQuantizedCodes<TVector> => TCodes.Codes4(ref codes, column);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowFactors ScaleBias(ref byte scaleBias, float weight) =>
        new(weight * QuantizedScalars.Half(ref scaleBias), weight * QuantizedScalars.Half(ref Unsafe.Add(ref scaleBias, sizeof(ushort))));
}

/// <summary>2-bit rows (<c>embedding_bag_2bit</c>): four codes per byte, lowest bits first; float16 scale and bias.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedRow2 : IQuantizedRow
{
    /// <inheritdoc/>
    public static QuantizedBits Bits => QuantizedBits.Two;

    /// <inheritdoc/>
    public static int CodesPerByte => 4;

    /// <inheritdoc/>
    public static int ScaleBiasBytes => 2 * sizeof(ushort);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TVector Codes<TVector, TCodes>(ref byte codes, nuint column)
        where TCodes : IQuantizedCodes<TVector> => TCodes.Codes2(ref codes, column);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowFactors ScaleBias(ref byte scaleBias, float weight) =>
        new(weight * QuantizedScalars.Half(ref scaleBias), weight * QuantizedScalars.Half(ref Unsafe.Add(ref scaleBias, sizeof(ushort))));
}

/// <summary>Byte-wise reads of a packed row's scale and bias (rows are not aligned) and the code unpacking shared by the vector widths.</summary>
internal static class QuantizedScalars
{
    /// <summary>A little-endian float32 at any address.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Single(ref byte source)
    {
        uint bits = Unsafe.ReadUnaligned<uint>(ref source);
        return BitConverter.UInt32BitsToSingle(BitConverter.IsLittleEndian ? bits : BinaryPrimitives.ReverseEndianness(bits));
    }

    /// <summary>A little-endian float16 at any address, widened to float32 (exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Half(ref byte source)
    {
        ushort bits = Unsafe.ReadUnaligned<ushort>(ref source);
        return HalfToSingle(BitConverter.IsLittleEndian ? bits : BinaryPrimitives.ReverseEndianness(bits));
    }

    /// <summary>
    /// float16 bits widened to float32 with the bits of <c>(float)Half</c> (and of torch's <c>at::Half</c> to float):
    /// normals rebias the exponent; subnormals are their 10-bit integer times 2⁻²⁴ (exact, and no float32 subnormal is
    /// ever an operand); ±inf keep their sign; a NaN keeps its payload and becomes quiet.
    /// </summary>
    /// <remarks>Inlined arithmetic rather than the <see cref="System.Half"/> cast, which .NET compiles to a call: a call
    /// per row would make the kernels spill their accumulators around it.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HalfToSingle(ushort bits)
    {
        uint exponent = bits & 0x7C00u, mantissa = bits & 0x03FFu;
        float magnitude = exponent == 0 ? mantissa * (1.0f / (1 << 24))
            : exponent == 0x7C00u ? BitConverter.UInt32BitsToSingle(0x7F80_0000u | (mantissa << 13) | (mantissa != 0 ? 0x0040_0000u : 0))
            : BitConverter.UInt32BitsToSingle(((bits & 0x7FFFu) << 13) + (112u << 23));
        return (bits & 0x8000) != 0 ? -magnitude : magnitude;
    }

    /// <summary><typeparamref name="T"/>'s bytes at <paramref name="offset"/>, in the low bytes of a vector (the rest zero).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> LoadLow<T>(ref byte source, nuint offset)
        where T : unmanaged =>
        Vector128.CreateScalar(Unsafe.ReadUnaligned<T>(ref Unsafe.Add(ref source, offset))).AsByte();

    /// <summary>
    /// The nibbles of the low 8 bytes, one per byte in column order: byte k becomes bytes 2k (its low
    /// nibble) and 2k + 1 (its high nibble). Each byte widens to a 16-bit lane holding
    /// <c>low | high &lt;&lt; 8</c>, which is the two codes in little-endian byte order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Nibbles(Vector128<byte> packed)
    {
        Vector128<ushort> bytes = Vector128.WidenLower(packed);
        return ((bytes & Vector128.Create((ushort)0x000F)) | ((bytes << 4) & Vector128.Create((ushort)0x0F00))).AsByte();
    }

    /// <summary>
    /// The 2-bit codes of the low 4 bytes, one per byte in column order: byte k becomes bytes 4k … 4k + 3
    /// (bits 0-1, 2-3, 4-5, 6-7). Each byte widens to a 32-bit lane and each code moves to its own byte.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<byte> Crumbs(Vector128<byte> packed)
    {
        Vector128<uint> bytes = Vector128.WidenLower(Vector128.WidenLower(packed));
        return ((bytes & Vector128.Create(0x0000_0003u))
              | ((bytes << 6) & Vector128.Create(0x0000_0300u))
              | ((bytes << 12) & Vector128.Create(0x0003_0000u))
              | ((bytes << 18) & Vector128.Create(0x0300_0000u))).AsByte();
    }
}

/// <summary>AVX-512: 16 float lanes (8- and 16-byte code loads widened to 32-bit lanes).</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedCodes512 : IQuantizedCodes<Vector512<float>>
{
    /// <inheritdoc/>
    public static int Lanes => Vector512<float>.Count;

    /// <inheritdoc/>
    public static Vector512<float> Zero => Vector512<float>.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Codes8(ref byte codes, nuint column) => Widen(Vector128.LoadUnsafe(ref codes, column));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Codes4(ref byte codes, nuint column)
    {
        Vector128<byte> packed = QuantizedScalars.LoadLow<ulong>(ref codes, column >> 1);
        if (Avx512F.IsSupported)
        {
            // Every byte twice, a 32-bit lane each, shifted right by 0 or 4: lane j holds code j in its low four bits, which are
            // all vpermps reads of an index, so a lookup in the table {0, …, 15} is the code as a float (four instructions, not seven).
            Vector512<uint> lanes = Avx512F.ConvertToVector512UInt32(Sse2.UnpackLow(packed, packed));
            return Avx512F.PermuteVar16x32(Vector512.Create(0.0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), Avx512F.ShiftRightLogicalVariable(lanes, Vector512.Create(0u, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4)).AsInt32());
        }

        return Widen(QuantizedScalars.Nibbles(packed));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Codes2(ref byte codes, nuint column)
    {
        Vector128<byte> packed = QuantizedScalars.LoadLow<uint>(ref codes, column >> 2);
        if (Avx512F.IsSupported)
        {
            // Every byte four times, a lane each, shifted right by 0, 2, 4, 6: lane j's low four bits are code j and the next
            // code's bits, so the lookup table repeats {0, 1, 2, 3} (lane i holds i mod 4).
            Vector128<byte> twice = Sse2.UnpackLow(packed, packed);
            Vector512<uint> lanes = Avx512F.ConvertToVector512UInt32(Sse2.UnpackLow(twice.AsUInt16(), twice.AsUInt16()).AsByte());
            return Avx512F.PermuteVar16x32(Vector512.Create(0.0f, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3), Avx512F.ShiftRightLogicalVariable(lanes, Vector512.Create(0u, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6)).AsInt32());
        }

        return Widen(QuantizedScalars.Crumbs(packed));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> accumulator, Vector512<float> codes, in QuantizedRowFactors row)
    {
        Vector512<float> sum = accumulator + Vector512.Create(row.Bias);
        if (QuantizedRowFactors.SpeculatesInFloat && row.Windowed && AllInside(WindowOffset(sum, Vector512.Create(row.WindowStart).AsSingle())))
        {
            return Vector512.FusedMultiplyAdd(codes, Vector512.Create(row.Scale), sum);
        }

        (Vector512<double> lower, Vector512<double> upper) = Vector512.Widen(sum);
        (Vector512<double> codesLower, Vector512<double> codesUpper) = Vector512.Widen(codes);
        Vector512<double> factor = Vector512.Create((double)row.Scale);
        return Vector512.Narrow(Vector512.MultiplyAddEstimate(codesLower, factor, lower), Vector512.MultiplyAddEstimate(codesUpper, factor, upper));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAddTracked(Vector512<float> accumulator, Vector512<float> codes, in QuantizedRowVectors<Vector512<float>> row, ref Vector512<float> outside)
    {
        Vector512<float> sum = accumulator + row.Bias;
        outside = Vector512.Max(outside.AsUInt32(), WindowOffset(sum, row.WindowStart).AsUInt32()).AsSingle();
        return Vector512.FusedMultiplyAdd(codes, row.Scale, sum);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowVectors<Vector512<float>> Broadcast(in QuantizedRowFactors row, bool first) =>
        new(Vector512.Create(row.Scale), Vector512.Create(row.Bias), Vector512.Create(first ? row.FirstRowWindowStart : row.WindowStart).AsSingle());

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AllInside(Vector512<float> outside) => Vector512.LessThanAll(outside.AsUInt32(), Vector512.Create(QuantizedRowFactors.WindowWidth));

    /// <summary><see cref="QuantizedRowFactors.WindowOffset"/> lane-wise (as float lanes), except that a zero sum is outside (<see cref="QuantizedRowFactors.FirstRowWindowStart"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> WindowOffset(Vector512<float> sum, Vector512<float> windowStart)
    {
        Vector512<uint> doubled = sum.AsUInt32() + sum.AsUInt32();
        return (doubled - windowStart.AsUInt32()).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Divide(Vector512<float> value, float count) => value / Vector512.Create(count);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, ref float target, nuint column) => value.StoreUnsafe(ref target, column);

    /// <summary>The low 16 bytes as 16 float lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector128<byte> codes) =>
        Vector512.ConvertToSingle(Avx512F.IsSupported
            ? Avx512F.ConvertToVector512Int32(codes)
            : Vector512.WidenLower(Vector512.WidenLower(codes.ToVector256Unsafe().ToVector512Unsafe())).AsInt32());
}

/// <summary>AVX2: 8 float lanes.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedCodes256 : IQuantizedCodes<Vector256<float>>
{
    /// <inheritdoc/>
    public static int Lanes => Vector256<float>.Count;

    /// <inheritdoc/>
    public static Vector256<float> Zero => Vector256<float>.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Codes8(ref byte codes, nuint column) => Widen(QuantizedScalars.LoadLow<ulong>(ref codes, column));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Codes4(ref byte codes, nuint column) => Widen(QuantizedScalars.Nibbles(QuantizedScalars.LoadLow<uint>(ref codes, column >> 1)));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Codes2(ref byte codes, nuint column) => Widen(QuantizedScalars.Crumbs(QuantizedScalars.LoadLow<ushort>(ref codes, column >> 2)));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> accumulator, Vector256<float> codes, in QuantizedRowFactors row)
    {
        Vector256<float> sum = accumulator + Vector256.Create(row.Bias);
        if (QuantizedRowFactors.SpeculatesInFloat && row.Windowed && AllInside(WindowOffset(sum, Vector256.Create(row.WindowStart).AsSingle())))
        {
            return Vector256.FusedMultiplyAdd(codes, Vector256.Create(row.Scale), sum);
        }

        (Vector256<double> lower, Vector256<double> upper) = Vector256.Widen(sum);
        (Vector256<double> codesLower, Vector256<double> codesUpper) = Vector256.Widen(codes);
        Vector256<double> factor = Vector256.Create((double)row.Scale);
        return Vector256.Narrow(Vector256.MultiplyAddEstimate(codesLower, factor, lower), Vector256.MultiplyAddEstimate(codesUpper, factor, upper));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAddTracked(Vector256<float> accumulator, Vector256<float> codes, in QuantizedRowVectors<Vector256<float>> row, ref Vector256<float> outside)
    {
        Vector256<float> sum = accumulator + row.Bias;
        outside = Vector256.Max(outside.AsUInt32(), WindowOffset(sum, row.WindowStart).AsUInt32()).AsSingle();
        return Vector256.FusedMultiplyAdd(codes, row.Scale, sum);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowVectors<Vector256<float>> Broadcast(in QuantizedRowFactors row, bool first) =>
        new(Vector256.Create(row.Scale), Vector256.Create(row.Bias), Vector256.Create(first ? row.FirstRowWindowStart : row.WindowStart).AsSingle());

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AllInside(Vector256<float> outside) => Vector256.LessThanAll(outside.AsUInt32(), Vector256.Create(QuantizedRowFactors.WindowWidth));

    /// <summary><see cref="QuantizedRowFactors.WindowOffset"/> lane-wise (as float lanes), except that a zero sum is outside (<see cref="QuantizedRowFactors.FirstRowWindowStart"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> WindowOffset(Vector256<float> sum, Vector256<float> windowStart)
    {
        Vector256<uint> doubled = sum.AsUInt32() + sum.AsUInt32();
        return (doubled - windowStart.AsUInt32()).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Divide(Vector256<float> value, float count) => value / Vector256.Create(count);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, ref float target, nuint column) => value.StoreUnsafe(ref target, column);

    /// <summary>The low 8 bytes as 8 float lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(Vector128<byte> codes) =>
        Vector256.ConvertToSingle(Avx2.IsSupported
            ? Avx2.ConvertToVector256Int32(codes)
            : Vector256.WidenLower(Vector256.WidenLower(codes.ToVector256Unsafe())).AsInt32());
}

/// <summary>SSE / NEON: 4 float lanes.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedCodes128 : IQuantizedCodes<Vector128<float>>
{
    /// <inheritdoc/>
    public static int Lanes => Vector128<float>.Count;

    /// <inheritdoc/>
    public static Vector128<float> Zero => Vector128<float>.Zero;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Codes8(ref byte codes, nuint column) => Widen(QuantizedScalars.LoadLow<uint>(ref codes, column));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Codes4(ref byte codes, nuint column) => Widen(QuantizedScalars.Nibbles(QuantizedScalars.LoadLow<ushort>(ref codes, column >> 1)));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Codes2(ref byte codes, nuint column) => Widen(QuantizedScalars.Crumbs(QuantizedScalars.LoadLow<byte>(ref codes, column >> 2)));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> accumulator, Vector128<float> codes, in QuantizedRowFactors row)
    {
        Vector128<float> sum = accumulator + Vector128.Create(row.Bias);
        if (QuantizedRowFactors.SpeculatesInFloat && row.Windowed && AllInside(WindowOffset(sum, Vector128.Create(row.WindowStart).AsSingle())))
        {
            return Vector128.FusedMultiplyAdd(codes, Vector128.Create(row.Scale), sum);
        }

        (Vector128<double> lower, Vector128<double> upper) = Vector128.Widen(sum);
        (Vector128<double> codesLower, Vector128<double> codesUpper) = Vector128.Widen(codes);
        Vector128<double> factor = Vector128.Create((double)row.Scale);
        return Vector128.Narrow(Vector128.MultiplyAddEstimate(codesLower, factor, lower), Vector128.MultiplyAddEstimate(codesUpper, factor, upper));
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAddTracked(Vector128<float> accumulator, Vector128<float> codes, in QuantizedRowVectors<Vector128<float>> row, ref Vector128<float> outside)
    {
        Vector128<float> sum = accumulator + row.Bias;
        outside = Vector128.Max(outside.AsUInt32(), WindowOffset(sum, row.WindowStart).AsUInt32()).AsSingle();
        return Vector128.FusedMultiplyAdd(codes, row.Scale, sum);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowVectors<Vector128<float>> Broadcast(in QuantizedRowFactors row, bool first) =>
        new(Vector128.Create(row.Scale), Vector128.Create(row.Bias), Vector128.Create(first ? row.FirstRowWindowStart : row.WindowStart).AsSingle());

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AllInside(Vector128<float> outside) => Vector128.LessThanAll(outside.AsUInt32(), Vector128.Create(QuantizedRowFactors.WindowWidth));

    /// <summary><see cref="QuantizedRowFactors.WindowOffset"/> lane-wise (as float lanes), except that a zero sum is outside (<see cref="QuantizedRowFactors.FirstRowWindowStart"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> WindowOffset(Vector128<float> sum, Vector128<float> windowStart)
    {
        Vector128<uint> doubled = sum.AsUInt32() + sum.AsUInt32();
        return (doubled - windowStart.AsUInt32()).AsSingle();
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Divide(Vector128<float> value, float count) => value / Vector128.Create(count);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, ref float target, nuint column) => value.StoreUnsafe(ref target, column);

    /// <summary>The low 4 bytes as 4 float lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Widen(Vector128<byte> codes) =>
        Vector128.ConvertToSingle(Sse41.IsSupported
            ? Sse41.ConvertToVector128Int32(codes)
            : Vector128.WidenLower(Vector128.WidenLower(codes)).AsInt32());
}

/// <summary>No vectors: one column at a time, any column.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly struct QuantizedCodesScalar : IQuantizedCodes<float>
{
    /// <inheritdoc/>
    public static int Lanes => 1;

    /// <inheritdoc/>
    public static float Zero => 0.0f;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Codes8(ref byte codes, nuint column) => Unsafe.Add(ref codes, column);

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Codes4(ref byte codes, nuint column) => (Unsafe.Add(ref codes, column >> 1) >> (int)((column & 1) << 2)) & 0xF;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Codes2(ref byte codes, nuint column) => (Unsafe.Add(ref codes, column >> 2) >> (int)((column & 3) << 1)) & 0x3;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float accumulator, float codes, in QuantizedRowFactors row)
    {
        float sum = accumulator + row.Bias;
        if (QuantizedRowFactors.SpeculatesInFloat && row.Windowed && QuantizedRowFactors.WindowOffset(sum, row.WindowStart) < QuantizedRowFactors.WindowWidth)
        {
            return MathF.FusedMultiplyAdd(codes, row.Scale, sum);
        }

        return (float)((double)row.Scale * codes + (double)sum);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAddTracked(float accumulator, float codes, in QuantizedRowVectors<float> row, ref float outside)
    {
        float sum = accumulator + row.Bias;
        outside = BitConverter.UInt32BitsToSingle(Math.Max(BitConverter.SingleToUInt32Bits(outside), QuantizedRowFactors.WindowOffset(sum, BitConverter.SingleToUInt32Bits(row.WindowStart))));
        return MathF.FusedMultiplyAdd(codes, row.Scale, sum);
    }

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static QuantizedRowVectors<float> Broadcast(in QuantizedRowFactors row, bool first) =>
        new(row.Scale, row.Bias, BitConverter.UInt32BitsToSingle(first ? row.FirstRowWindowStart : row.WindowStart));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool AllInside(float outside) => BitConverter.SingleToUInt32Bits(outside) < QuantizedRowFactors.WindowWidth;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Divide(float value, float count) => value / count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float value, ref float target, nuint column) => Unsafe.Add(ref target, column) = value;
}
