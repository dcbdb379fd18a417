using System;
using System.Buffers.Binary;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

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
/// double multiply followed by a double add; then the result is rounded again, to float. Every width here
/// does exactly that per lane (<see cref="MultiplyAdd"/>): float add, widen both to double, multiply-add
/// (fused or not: the same bits, since the product is exact), narrow with round-to-nearest-even.
/// </para>
/// <para>
/// <b>Why no float-only formulation.</b> A float FMA <c>fma(scale, code, acc + bias)</c> rounds the exact
/// value <c>x</c> once; torch rounds it to double and then to float. The two differ exactly when
/// <c>x</c> needs more than 53 bits and its double rounding lands on the midpoint of two floats (then
/// ties-to-even decides instead of the discarded bits), e.g. scale = 16519105·2⁻⁵⁵, code = 130, bias = 1:
/// x = 1 + 2⁻²⁴ + 2⁻⁵⁴, torch gives 1, a float FMA 1 + 2⁻²³ (QuantizedBagTests checks torch's answer).
/// Reproducing that in float lanes needs the exact remainder of the FMA (an error-free transform: a
/// product split, two two-sums and a midpoint test per lane), which costs more than the four conversions
/// of the double path; the measured cost of the double path over a plain (inexact) float FMA is in the
/// bench notes. So the double path stays.
/// </para>
/// <para>
/// <b>Codes.</b> Column j of an 8-bit row is byte j; of a 4-bit row the nibble <c>4·(j % 2)</c> of byte
/// j/2 (low nibble first); of a 2-bit row bits <c>2·(j % 4)</c> of byte j/4. The vector widths unpack with
/// shifts and masks on integer lanes (every code of a byte is moved to a byte of its own, in column order)
/// and widen bytes to float lanes; the first column must be a multiple of the codes per byte (the kernels
/// ensure it). The scalar width takes any column.
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
    /// <c>(float)((double)scale · codes + (double)(accumulator + bias))</c>.
    /// </summary>
    /// <param name="accumulator">The bag's running sums.</param>
    /// <param name="codes">The row's codes (<see cref="Codes8"/> …).</param>
    /// <param name="scale">The row's scale times the per-sample weight, rounded to float and widened (exactly).</param>
    /// <param name="bias">The row's bias times the per-sample weight, rounded to float.</param>
    static abstract TVector MultiplyAdd(TVector accumulator, TVector codes, double scale, float bias);

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
    /// products (float16 scale and bias are widened first, exactly); the scale is then widened to double.
    /// An unweighted bag passes 1, whose products are exact.
    /// </summary>
    /// <param name="scaleBias">The row's first byte after its codes.</param>
    /// <param name="weight">The position's per-sample weight, or 1.</param>
    /// <param name="scale">Receives the weighted scale.</param>
    /// <param name="bias">Receives the weighted bias.</param>
    static abstract void ScaleBias(ref byte scaleBias, float weight, out double scale, out float bias);
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
    public static void ScaleBias(ref byte scaleBias, float weight, out double scale, out float bias)
    {
        scale = weight * QuantizedScalars.Single(ref scaleBias);
        bias = weight * QuantizedScalars.Single(ref Unsafe.Add(ref scaleBias, sizeof(float)));
    }
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
    public static void ScaleBias(ref byte scaleBias, float weight, out double scale, out float bias)
    {
        scale = weight * QuantizedScalars.Half(ref scaleBias);
        bias = weight * QuantizedScalars.Half(ref Unsafe.Add(ref scaleBias, sizeof(ushort)));
    }
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
    public static void ScaleBias(ref byte scaleBias, float weight, out double scale, out float bias)
    {
        scale = weight * QuantizedScalars.Half(ref scaleBias);
        bias = weight * QuantizedScalars.Half(ref Unsafe.Add(ref scaleBias, sizeof(ushort)));
    }
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
        return (float)BitConverter.UInt16BitsToHalf(BitConverter.IsLittleEndian ? bits : BinaryPrimitives.ReverseEndianness(bits));
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
    public static Vector512<float> Codes4(ref byte codes, nuint column) => Widen(QuantizedScalars.Nibbles(QuantizedScalars.LoadLow<ulong>(ref codes, column >> 1)));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Codes2(ref byte codes, nuint column) => Widen(QuantizedScalars.Crumbs(QuantizedScalars.LoadLow<uint>(ref codes, column >> 2)));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> accumulator, Vector512<float> codes, double scale, float bias)
    {
        (Vector512<double> lower, Vector512<double> upper) = Vector512.Widen(accumulator + Vector512.Create(bias));
        (Vector512<double> codesLower, Vector512<double> codesUpper) = Vector512.Widen(codes);
        Vector512<double> factor = Vector512.Create(scale);
        return Vector512.Narrow(Vector512.MultiplyAddEstimate(codesLower, factor, lower), Vector512.MultiplyAddEstimate(codesUpper, factor, upper));
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
        Vector512.ConvertToSingle(Vector512.WidenLower(Vector512.WidenLower(codes.ToVector256Unsafe().ToVector512Unsafe())).AsInt32());
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
    public static Vector256<float> MultiplyAdd(Vector256<float> accumulator, Vector256<float> codes, double scale, float bias)
    {
        (Vector256<double> lower, Vector256<double> upper) = Vector256.Widen(accumulator + Vector256.Create(bias));
        (Vector256<double> codesLower, Vector256<double> codesUpper) = Vector256.Widen(codes);
        Vector256<double> factor = Vector256.Create(scale);
        return Vector256.Narrow(Vector256.MultiplyAddEstimate(codesLower, factor, lower), Vector256.MultiplyAddEstimate(codesUpper, factor, upper));
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
        Vector256.ConvertToSingle(Vector256.WidenLower(Vector256.WidenLower(codes.ToVector256Unsafe())).AsInt32());
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
    public static Vector128<float> MultiplyAdd(Vector128<float> accumulator, Vector128<float> codes, double scale, float bias)
    {
        (Vector128<double> lower, Vector128<double> upper) = Vector128.Widen(accumulator + Vector128.Create(bias));
        (Vector128<double> codesLower, Vector128<double> codesUpper) = Vector128.Widen(codes);
        Vector128<double> factor = Vector128.Create(scale);
        return Vector128.Narrow(Vector128.MultiplyAddEstimate(codesLower, factor, lower), Vector128.MultiplyAddEstimate(codesUpper, factor, upper));
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
        Vector128.ConvertToSingle(Vector128.WidenLower(Vector128.WidenLower(codes)).AsInt32());
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
    public static float MultiplyAdd(float accumulator, float codes, double scale, float bias) =>
        (float)(scale * codes + (double)(accumulator + bias));

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Divide(float value, float count) => value / count;

    /// <inheritdoc/>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float value, ref float target, nuint column) => Unsafe.Add(ref target, column) = value;
}
