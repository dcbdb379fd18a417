using System;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>
    /// Packs a float32 table into a row-wise quantized table of <paramref name="bits"/>-bit codes:
    /// <c>torch.ops.quantized.embedding_bag_byte_prepack</c> (8-bit), <c>embedding_bag_4bit_prepack</c>
    /// and <c>embedding_bag_2bit_prepack</c> (with <c>optimized_qparams=False</c>), bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D, layout = QuantizedRowLayout(bits, D)
    /// per row x[0..D), every step float32:
    ///   min, max = the first smallest and the first largest x     (std::min_element / max_element:
    ///              a NaN counts only as the first element; the first of -0.0 and +0.0 wins)
    ///   lrint(v) = nearest integer, ties to even, as int64; NaN and |v| ≥ 2^63 give -2^63
    ///   8-bit:  range = max - min;  scale = range / 255;  inverse = 255 / (range + 1e-8f)
    ///           code[j] = lrint((x[j] - min) · inverse) mod 256
    ///           row = code[0..D), scale, min                                 (float32 little-endian)
    ///   4/2-bit (q = 2^bits - 1; half(v) = v rounded to float16, ties to even, NaN → sign | 0x7E00):
    ///           bias = half(min);  range = max - bias
    ///           scale = range == 0 ? 1 : half(range / q)
    ///           inverse = scale == 0 ? 1 : 1 / scale;  if scale == 0 or inverse = ±inf: scale = 1, inverse = 1
    ///           code[j] = clamp((int32)lrint((x[j] - bias) · inverse), 0, q)    (low 32 bits, then clamped)
    ///           row = codes (column j at bits 4·(j%2) of byte j/2, or 2·(j%4) of byte j/4; padding codes 0),
    ///                 scale, bias                                               (float16 little-endian)
    /// </code>
    /// <para>
    /// One line: <c>code = round((x - min) / scale)</c> with torch's float32 scale and rounding points.
    /// Consequences of the arithmetic, all torch's: a constant row gets codes 0 (8-bit: scale 0; 4/2-bit:
    /// scale 1); a NaN or an infinity anywhere gives code 0 for that element (and an infinite range gives
    /// every finite element code 0, the scale being ±inf); a NaN first element gives a NaN scale and bias.
    /// Unlike torch, any <paramref name="embeddingDim"/> is accepted for 4/2-bit rows (torch requires a
    /// multiple of 2 / 4): the last byte's unused code slots are 0. torch's 8-bit prepack of a float16
    /// table returns a garbage row 0; the <see cref="Quantize(ReadOnlySpan{Half}, int, QuantizedBits, Span{byte})"/>
    /// overload widens float16 exactly instead.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> floats.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="bits">The code width: 8, 4 or 2.</param>
    /// <param name="packed">Receives the packed rows: exactly <c>rows × QuantizedRowLayout(bits, embeddingDim).RowBytes</c> bytes are written; may be longer.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="embeddingDim"/> is not positive, or <paramref name="bits"/> is not 2, 4 or 8.</exception>
    /// <exception cref="ArgumentException">The weight is not a whole number of rows, <paramref name="packed"/> is too short, or it overlaps the weight.</exception>
    public static void Quantize(ReadOnlySpan<float> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed) =>
        Quantize(weight, embeddingDim, bits, packed, EmbeddingThreads.UseCount);

    /// <summary>
    /// Packs a float16 table into a row-wise quantized table: each element widened exactly to float32,
    /// then packed as <see cref="Quantize(ReadOnlySpan{float}, int, QuantizedBits, Span{byte})"/> does,
    /// which is what torch 1.13's 4- and 2-bit prepack of a float16 weight computes (its 8-bit prepack
    /// of a float16 weight returns a garbage row 0; this one packs every row correctly).
    /// </summary>
    /// <inheritdoc cref="Quantize(ReadOnlySpan{float}, int, QuantizedBits, Span{byte})" path="/remarks"/>
    /// <inheritdoc cref="Quantize(ReadOnlySpan{float}, int, QuantizedBits, Span{byte})" path="/param"/>
    /// <inheritdoc cref="Quantize(ReadOnlySpan{float}, int, QuantizedBits, Span{byte})" path="/exception"/>
    public static void Quantize(ReadOnlySpan<Half> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed) =>
        Quantize(weight, embeddingDim, bits, packed, EmbeddingThreads.UseCount);

    /// <summary>
    /// Packs a float32 table into 4- or 2-bit rows with each row's range chosen by torch's greedy error
    /// search: <c>torch.ops.quantized.embedding_bag_{4bit,2bit}_prepack(weight, optimized_qparams=True,
    /// nbins=numBins, ratio=ratio)</c>, bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// per row: xmin, xmax = the search below; then the 4/2-bit packing of Quantize with min = xmin, max = xmax
    ///   xmin, xmax = min, max of the row
    ///   step = (xmax - xmin) / (float)numBins;  minBins = (int)(numBins · (1.0 - (double)(float)ratio))
    ///   best = cur = loss(xmin, xmax);  lo = xmin;  hi = xmax
    ///   while lo + (float)minBins · step &lt; hi:
    ///       l1 = loss(lo + step, hi);  l2 = loss(lo, hi - step)
    ///       if cur &lt; l1 and cur &lt; l2 and cur &lt; best: best = cur; xmin = lo; xmax = hi
    ///       if l1 &lt; l2: lo = lo + step; cur = l1   else: hi = hi - step; cur = l2
    ///       if that move left lo or hi unchanged: stop
    ///   loss(a, b) = sqrt(Σ_j (x[j] - (c_j · s + a))²), summed in column order, where a = half(a),
    ///       s = (b - a) == 0 ? 1 : half((b - a) / q), c_j = clamp(nearbyint((x[j] - a) · (s == 0 ? 1 : 1 / s)), 0, q)
    ///       (q = 2^bits - 1; every step float32; a NaN c_j counts as 0)
    /// </code>
    /// <para>
    /// The search takes about <c>numBins · ratio</c> steps per row, each reading the row twice. The stop on
    /// a move that changes nothing is ours: torch 1.13 loops forever there (a step below half an ulp of
    /// the bound it moves, e.g. a row near 1e8 with a range of 64, or a range that divided by numBins
    /// underflows to 0, e.g. a row of subnormals); the range returned is the one torch holds while it loops.
    /// torch accepts any nbins and ratio; here <paramref name="numBins"/> must be positive and
    /// <paramref name="ratio"/> in [0, 1] (outside it torch's search runs for up to 2^31 steps).
    /// Like <see cref="Quantize(ReadOnlySpan{float}, int, QuantizedBits, Span{byte})"/>, any
    /// <paramref name="embeddingDim"/> is accepted.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> floats.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="bits">The code width: 4 or 2 (torch has no optimized 8-bit prepack).</param>
    /// <param name="packed">Receives the packed rows: exactly <c>rows × QuantizedRowLayout(bits, embeddingDim).RowBytes</c> bytes are written; may be longer.</param>
    /// <param name="numBins">The number of steps the row's range is divided into; torch's default 200.</param>
    /// <param name="ratio">The share of the range the search may cut off; torch's default 0.16. Used as float32, as torch does.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="embeddingDim"/> or <paramref name="numBins"/> is not positive, <paramref name="bits"/> is not 2 or 4, or <paramref name="ratio"/> is outside [0, 1].</exception>
    /// <exception cref="ArgumentException">The weight is not a whole number of rows, <paramref name="packed"/> is too short, or it overlaps the weight.</exception>
    // RS0026: the overloads differ in the weight's element type, so every call binds to exactly one.
#pragma warning disable RS0026
    public static void QuantizeOptimized(ReadOnlySpan<float> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed, int numBins = 200, double ratio = 0.16) =>
        QuantizeOptimized(weight, embeddingDim, bits, packed, numBins, ratio, EmbeddingThreads.UseCount);

    /// <summary>
    /// Packs a float16 table into 4- or 2-bit rows with torch's greedy range search: each element widened
    /// exactly to float32, then as <see cref="QuantizeOptimized(ReadOnlySpan{float}, int, QuantizedBits, Span{byte}, int, double)"/>
    /// (torch 1.13 converts a float16 weight to float32 the same way).
    /// </summary>
    /// <inheritdoc cref="QuantizeOptimized(ReadOnlySpan{float}, int, QuantizedBits, Span{byte}, int, double)" path="/remarks"/>
    /// <inheritdoc cref="QuantizeOptimized(ReadOnlySpan{float}, int, QuantizedBits, Span{byte}, int, double)" path="/param"/>
    /// <inheritdoc cref="QuantizeOptimized(ReadOnlySpan{float}, int, QuantizedBits, Span{byte}, int, double)" path="/exception"/>
    public static void QuantizeOptimized(ReadOnlySpan<Half> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed, int numBins = 200, double ratio = 0.16) =>
        QuantizeOptimized(weight, embeddingDim, bits, packed, numBins, ratio, EmbeddingThreads.UseCount);
#pragma warning restore RS0026

    /// <summary>
    /// Unpacks a row-wise quantized table to float32: <c>torch.ops.quantized.embedding_bag_byte_unpack</c>,
    /// <c>embedding_bag_4bit_unpack</c> and <c>embedding_bag_2bit_unpack</c>, bit for bit.
    /// </summary>
    /// <remarks>
    /// <code>
    /// layout = QuantizedRowLayout(bits, embeddingDim), rows = packed.Length / layout.RowBytes
    /// per row: scale, bias = the row's float32 (8-bit) or float16 (4/2-bit, widened exactly) pair
    ///   destination[row][j] = fl(fl(code[j] · scale) + bias)     for j in [0, embeddingDim)
    ///                                                             (two roundings, no fma, as torch)
    /// </code>
    /// <para>
    /// A NaN scale makes every element that NaN (the product's NaN wins over a NaN bias, as on torch's
    /// x86 build); an infinite scale times code 0 gives the default NaN. torch reads the dimension from
    /// the packed width, so for a 4/2-bit table of a dimension torch refuses it would also return the
    /// padding columns; here exactly <paramref name="embeddingDim"/> columns come back.
    /// </para>
    /// </remarks>
    /// <param name="packed">The packed table, a whole number of <c>QuantizedRowLayout(bits, embeddingDim).RowBytes</c>-byte rows.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="bits">The code width: 8, 4 or 2.</param>
    /// <param name="destination">Receives <c>rows × embeddingDim</c> floats; may be longer.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="embeddingDim"/> is not positive, or <paramref name="bits"/> is not 2, 4 or 8.</exception>
    /// <exception cref="ArgumentException"><paramref name="packed"/> is not a whole number of rows, <paramref name="destination"/> is too short, or it overlaps <paramref name="packed"/>.</exception>
    public static void Dequantize(ReadOnlySpan<byte> packed, int embeddingDim, QuantizedBits bits, Span<float> destination) =>
        Dequantize(packed, embeddingDim, bits, destination, EmbeddingThreads.UseCount);

    /// <summary>The span packing with the thread count chosen by the caller (tests compare counts).</summary>
    internal static void Quantize<T>(ReadOnlySpan<T> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed, int threads)
        where T : unmanaged
    {
        long rows = CheckQuantize(weight, embeddingDim, bits, packed);
        QuantizeRows(in MemoryMarshal.GetReference(weight), rows, embeddingDim, bits, ref MemoryMarshal.GetReference(packed), threads);
    }

    /// <summary>The span optimized packing with the thread count chosen by the caller.</summary>
    internal static void QuantizeOptimized<T>(ReadOnlySpan<T> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed, int numBins, double ratio, int threads)
        where T : unmanaged
    {
        if (bits is not (QuantizedBits.Four or QuantizedBits.Two))
        {
            throw new ArgumentOutOfRangeException(nameof(bits), (int)bits, OptimizedBitsMessage);
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(numBins);
        if (!IsOptimizedRatio(ratio))
        {
            throw new ArgumentOutOfRangeException(nameof(ratio), ratio, OptimizedRatioMessage);
        }

        long rows = CheckQuantize(weight, embeddingDim, bits, packed);
        QuantizeRowsOptimized(in MemoryMarshal.GetReference(weight), rows, embeddingDim, bits, numBins, ratio, ref MemoryMarshal.GetReference(packed), threads);
    }

    /// <summary>The span unpacking with the thread count chosen by the caller.</summary>
    internal static void Dequantize(ReadOnlySpan<byte> packed, int embeddingDim, QuantizedBits bits, Span<float> destination, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        QuantizedRowLayout.Validate(bits);
        long rowBytes = new QuantizedRowLayout(bits, embeddingDim).RowBytes;
        if (packed.Length % rowBytes != 0)
        {
            throw new ArgumentException($"The packed table holds {packed.Length} bytes, which is not a whole number of {(int)bits}-bit rows of {rowBytes} bytes (dimension {embeddingDim}).", nameof(packed));
        }

        long rows = packed.Length / rowBytes;
        if (destination.Length < rows * embeddingDim)
        {
            throw new ArgumentException($"Destination is too short: {rows} rows × {embeddingDim} columns need {rows * embeddingDim} floats, it holds {destination.Length}.", nameof(destination));
        }

        if (MemoryMarshal.AsBytes(destination[..(int)(rows * embeddingDim)]).Overlaps(packed))
        {
            throw new ArgumentException("The destination overlaps the packed table.", nameof(destination));
        }

        DequantizeRows(in MemoryMarshal.GetReference(packed), rows, embeddingDim, bits, ref MemoryMarshal.GetReference(destination), threads);
    }

    /// <summary>
    /// The validated core of <c>Quantize</c> shared with the C ABI: packs <paramref name="rows"/> rows.
    /// Shapes, buffers and <paramref name="bits"/> are the caller's responsibility.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/> or <see cref="Half"/>.</typeparam>
    internal static void QuantizeRows<T>(ref readonly T weight, long rows, int embeddingDim, QuantizedBits bits, ref byte packed, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged =>
        QuantizedTableRunner.Quantize(in weight, rows, embeddingDim, bits, ref packed, numBins: 0, ratio: 0, threads);

    /// <summary>The validated core of <c>QuantizeOptimized</c> shared with the C ABI (4/2-bit, numBins &gt; 0, ratio in [0, 1]).</summary>
    internal static void QuantizeRowsOptimized<T>(ref readonly T weight, long rows, int embeddingDim, QuantizedBits bits, int numBins, double ratio, ref byte packed, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged =>
        QuantizedTableRunner.Quantize(in weight, rows, embeddingDim, bits, ref packed, numBins, ratio, threads);

    /// <summary>The validated core of <c>Dequantize</c> shared with the C ABI.</summary>
    internal static void DequantizeRows(ref readonly byte packed, long rows, int embeddingDim, QuantizedBits bits, ref float destination, int threads = EmbeddingThreads.UseCount) =>
        QuantizedTableRunner.Dequantize(in packed, rows, embeddingDim, bits, ref destination, threads);

    /// <summary>Whether <paramref name="ratio"/> is a search ratio this library runs: in [0, 1] (not NaN).</summary>
    internal static bool IsOptimizedRatio(double ratio) => ratio is >= 0.0 and <= 1.0;

    internal const string OptimizedBitsMessage =
        "the optimized search packs 4- and 2-bit rows only, as torch's embedding_bag_4bit_prepack and embedding_bag_2bit_prepack (optimized_qparams=True)";

    internal const string OptimizedRatioMessage =
        "the search ratio must be in [0, 1]: outside it torch's search runs for up to 2^31 steps";

    /// <summary>The shared checks of the packing overloads; returns the row count.</summary>
    private static long CheckQuantize<T>(ReadOnlySpan<T> weight, int embeddingDim, QuantizedBits bits, Span<byte> packed)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        QuantizedRowLayout.Validate(bits);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} elements, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        long rows = weight.Length / embeddingDim;
        long needed = rows * new QuantizedRowLayout(bits, embeddingDim).RowBytes;
        if (packed.Length < needed)
        {
            throw new ArgumentException($"Destination is too short: {rows} {(int)bits}-bit rows of dimension {embeddingDim} need {needed} bytes, it holds {packed.Length}.", nameof(packed));
        }

        if (MemoryMarshal.AsBytes(weight).Overlaps(packed[..(int)needed]))
        {
            throw new ArgumentException("The packed destination overlaps the weight.", nameof(packed));
        }

        return rows;
    }
}
