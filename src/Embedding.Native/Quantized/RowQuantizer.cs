using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// One row of a row-wise quantized table, packed and unpacked with the arithmetic of torch 1.13's
/// <c>embedding_bag_{byte,4bit,2bit}_prepack</c> and <c>_unpack</c> (their non-FBGEMM code): every
/// operation below is one float32 operation of torch's, in torch's order, so the bytes and floats
/// are torch's bit for bit.
/// </summary>
/// <remarks>
/// <code>
/// lrint(v)  = v rounded to the nearest integer, ties to even, as a 64-bit integer; NaN and |v| ≥ 2^63
///             give -2^63 (x86-64's cvtss2si, what torch's lrintf compiles to)
/// half(v)   = v rounded to float16 (nearest, ties to even; overflow to ±inf), widened back; a NaN
///             becomes sign | 0x7E00 (c10's software conversion drops the payload)
/// min, max  = the first smallest and the first largest element (std::min_element / max_element:
///             a later element replaces only if strictly smaller / larger, so a NaN is the result
///             only when it is the first element, and the first of -0.0 and +0.0 wins)
/// </code>
/// </remarks>
internal static class RowQuantizer
{
    /// <summary>The float16 1.0 that replaces a zero or overflowing scale.</summary>
    private const ushort HalfOne = 0x3C00;

    /// <summary>Element <paramref name="index"/> of a float32 or float16 row, as float32 (float16 widens exactly).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load<T>(ReadOnlySpan<T> row, int index)
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            return Unsafe.As<T, float>(ref Unsafe.AsRef(in row[index]));
        }

        return (float)Unsafe.As<T, Half>(ref Unsafe.AsRef(in row[index]));
    }

    /// <summary>The first smallest and first largest element of a non-empty row (std::min_element / std::max_element).</summary>
    public static void MinMax<T>(ReadOnlySpan<T> row, out float min, out float max)
        where T : unmanaged
    {
        float smallest = Load(row, 0), largest = smallest;
        for (int i = 1; i < row.Length; i++)
        {
            float x = Load(row, i);
            if (x < smallest)
            {
                smallest = x;
            }

            if (largest < x)
            {
                largest = x;
            }
        }

        min = smallest;
        max = largest;
    }

    /// <summary>
    /// Packs one 8-bit row (<c>embedding_bag_byte_prepack</c>):
    /// <code>
    /// range = max - min;  scale = range / 255;  inverse = 255 / (range + 1e-8f)      (float32 each)
    /// code[j] = lrint((x[j] - min) * inverse) mod 256                                 (the C cast to uint8)
    /// packed = code[0..D), scale (float32 LE), min (float32 LE)
    /// </code>
    /// </summary>
    public static void Pack8<T>(ReadOnlySpan<T> row, Span<byte> packed)
        where T : unmanaged
    {
        MinMax(row, out float min, out float max);
        float range = max - min;
        float scale = range / 255.0f;
        float inverse = 255.0f / (range + 1e-8f);
        Span<byte> codes = packed[..row.Length];
        for (int j = 0; j < codes.Length; j++)
        {
            codes[j] = (byte)RoundToLong((Load(row, j) - min) * inverse);
        }

        BinaryPrimitives.WriteSingleLittleEndian(packed.Slice(row.Length, sizeof(float)), scale);
        BinaryPrimitives.WriteSingleLittleEndian(packed.Slice(row.Length + sizeof(float), sizeof(float)), min);
    }

    /// <summary>
    /// Packs one 4- or 2-bit row from the range <paramref name="xmin"/>..<paramref name="xmax"/>
    /// (the row's min and max, or the optimized search's pair):
    /// <code>
    /// q = 2^bits - 1;  xmin = half(xmin);  range = xmax - xmin
    /// scale = range == 0 ? 1 : half(range / q)
    /// inverse = scale == 0 ? 1 : 1 / scale;  if scale == 0 or inverse is ±inf: scale = 1, inverse = 1
    /// code[j] = clamp((int32)lrint((x[j] - xmin) * inverse), 0, q)    (the low 32 bits, then clamped)
    /// packed = codes (column j at bits·(j mod per) of byte j / per, padding codes 0), scale, xmin (float16 LE)
    /// </code>
    /// </summary>
    public static void PackBits<T>(ReadOnlySpan<T> row, int bits, float xmin, float xmax, Span<byte> packed)
        where T : unmanaged
    {
        int maxCode = (1 << bits) - 1;
        ushort biasBits = ToTorchHalf(xmin);
        xmin = (float)BitConverter.UInt16BitsToHalf(biasBits);
        float range = xmax - xmin;
        ushort scaleBits = range == 0 ? HalfOne : ToTorchHalf(range / maxCode);
        float scale = (float)BitConverter.UInt16BitsToHalf(scaleBits);
        float inverse = scale == 0 ? 1.0f : 1.0f / scale;
        if (scale == 0 || float.IsInfinity(inverse))
        {
            scaleBits = HalfOne;
            inverse = 1.0f;
        }

        int perByteShift = bits == 4 ? 1 : 2;
        int codeBytes = (row.Length + (1 << perByteShift) - 1) >> perByteShift;
        Span<byte> codes = packed[..codeBytes];
        codes.Clear();
        int slotMask = (1 << perByteShift) - 1;
        for (int j = 0; j < row.Length; j++)
        {
            int code = Math.Clamp(unchecked((int)RoundToLong((Load(row, j) - xmin) * inverse)), 0, maxCode);
            codes[j >> perByteShift] |= (byte)(code << ((j & slotMask) * bits));
        }

        BinaryPrimitives.WriteUInt16LittleEndian(packed.Slice(codeBytes, 2), scaleBits);
        BinaryPrimitives.WriteUInt16LittleEndian(packed.Slice(codeBytes + 2, 2), biasBits);
    }

    /// <summary>
    /// Unpacks one row of <paramref name="destination"/>.Length columns (<c>embedding_bag_*_unpack</c>):
    /// <code>
    /// out[j] = code[j] · scale + bias     (float32 multiply, then float32 add: two roundings, no fma;
    ///                                      float16 scale and bias widened first)
    /// </code>
    /// A NaN scale gives its own NaN (the product), which wins over a NaN bias, as in torch.
    /// </summary>
    public static void Unpack(ReadOnlySpan<byte> packed, QuantizedBits bits, Span<float> destination)
    {
        int dimension = destination.Length;
        if (bits == QuantizedBits.Eight)
        {
            float scale = BinaryPrimitives.ReadSingleLittleEndian(packed.Slice(dimension, sizeof(float)));
            float bias = BinaryPrimitives.ReadSingleLittleEndian(packed.Slice(dimension + sizeof(float), sizeof(float)));
            ReadOnlySpan<byte> codes = packed[..dimension];
            for (int j = 0; j < codes.Length; j++)
            {
                float product = codes[j] * scale;
                destination[j] = product + bias;
            }

            return;
        }

        int width = (int)bits;
        int perByteShift = width == 4 ? 1 : 2;
        int codeBytes = (dimension + (1 << perByteShift) - 1) >> perByteShift;
        float halfScale = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(packed.Slice(codeBytes, 2)));
        float halfBias = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(packed.Slice(codeBytes + 2, 2)));
        int slotMask = (1 << perByteShift) - 1, codeMask = (1 << width) - 1;
        for (int j = 0; j < destination.Length; j++)
        {
            int code = (packed[j >> perByteShift] >> ((j & slotMask) * width)) & codeMask;
            float product = halfScale * code;
            destination[j] = product + halfBias;
        }
    }

    /// <summary>
    /// C's <c>lrintf</c> as torch's x86-64 build computes it (cvtss2si): round to nearest, ties to even;
    /// NaN and values outside the int64 range give <see cref="long.MinValue"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long RoundToLong(float value) =>
        value >= -9.223372036854775808e18f && value < 9.223372036854775808e18f
            ? (long)MathF.Round(value)
            : long.MinValue;

    /// <summary>
    /// The float16 bits torch stores for <paramref name="value"/> (c10's software conversion): round to
    /// nearest, ties to even, overflow to ±inf; a NaN becomes <c>sign | 0x7E00</c>.
    /// </summary>
    public static ushort ToTorchHalf(float value) =>
        float.IsNaN(value)
            ? (ushort)(((BitConverter.SingleToUInt32Bits(value) >> 16) & 0x8000) | 0x7E00)
            : BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary><c>half(v)</c>: <paramref name="value"/> rounded to float16 as torch does it, widened back.</summary>
    public static float RoundToHalf(float value) => (float)BitConverter.UInt16BitsToHalf(ToTorchHalf(value));
}
