using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// The quantized bag for any code width and dimension, written once over the
/// <see cref="IQuantizedCodes{TVector}"/> width operators and the <see cref="IQuantizedRow"/> code widths.
/// Per bag, a block of <see cref="BlockVectors"/> (AVX-512: <see cref="WideBlockVectors"/>) accumulators lives in
/// registers while the bag's rows stream past in position order: each row's scale and bias are read once per block,
/// its codes widened a vector at a time. No row is ever dequantized to memory.
/// </summary>
/// <remarks>
/// <para>
/// <b>Covering a row.</b> The vector widths cover the columns whose codes fill whole bytes,
/// <c>[0, VectorColumns)</c>, in blocks of vectors; the last block ends there and
/// overlaps the one before it, and within a block a vector past the end is moved back to end there too. The
/// overlapped columns are computed again from the same rows in the same order, so they are stored with the
/// same bits. A row whose last byte holds fewer codes than it could (a 4-bit row of odd dimension, a 2-bit one
/// not divisible by 4: torch's prepack never makes one) ends in at most three columns no vector starts on a
/// byte for: the scalar operator does those, the same arithmetic one lane at a time.
/// </para>
/// <para>
/// <b>Why blocks.</b> Each accumulator is a chain through every row of the bag (a float add and FMA, about 7 cycles,
/// or on the double path a float add, widen, double multiply-add and narrow, about 25); a block keeps four (AVX-512:
/// eight) independent chains in flight and reads the row's index, mapping entry, scale and bias once for all of them.
/// Measured on an AMD EPYC (AVX-512, in-cache table, D = 128): eight accumulators 70 M rows/s against 64 with four; at
/// D = 64 eight would compute each of the four vectors twice, so rows of at most four vectors keep four.
/// </para>
/// <para>
/// <b>Prefetch.</b> As the float bag: during the first block of each bag, the row <c>KernelHints.DistanceForRowBytes</c>
/// positions ahead (across bag boundaries, never past the last position) is prefetched, its first line and
/// the line that holds its scale and bias.
/// </para>
/// </remarks>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <typeparam name="TRow">The code width: <see cref="QuantizedRow8"/>, <see cref="QuantizedRow4"/> or <see cref="QuantizedRow2"/>.</typeparam>
internal static class GenericQuantizedBag<TIndex, TRow>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TRow : IQuantizedRow
{
    /// <summary>Accumulator vectors per pass over a bag: four chains hide the latency of one step and fit the 16 registers of SSE and AVX2 with the row's operands.</summary>
    internal const int BlockVectors = 4;

    /// <summary>
    /// Accumulator vectors per pass with AVX-512's 32 registers: twice as many, so rows of up to 128 columns are read in
    /// one pass (one row's index, scale and bias read once for eight vectors).
    /// </summary>
    internal const int WideBlockVectors = 8;

    /// <summary>The accumulators of one pass at the width of <typeparamref name="TVector"/>.</summary>
    private static int VectorsPerBlock<TVector>() => typeof(TVector) == typeof(Vector512<float>) ? WideBlockVectors : BlockVectors;

    /// <summary>The kernel operation of this code width.</summary>
    public static KernelOperation Operation => TRow.Bits switch
    {
        QuantizedBits.Eight => KernelOperation.QuantizedBagByte,
        QuantizedBits.Four => KernelOperation.QuantizedBag4Bit,
        _ => KernelOperation.QuantizedBag2Bit,
    };

    /// <summary>The columns the vector widths cover: <paramref name="dimension"/> rounded down to whole bytes of codes (a width fits when one vector does).</summary>
    public static int VectorColumns(int dimension) => dimension - dimension % TRow.CodesPerByte;

    /// <summary>The kernel for <paramref name="width"/> (which must fit <see cref="VectorColumns"/>).</summary>
    public static QuantizedBagKernel<TIndex> At(VectorWidth width) =>
        WidthLadder.Select<QuantizedBagKernel<TIndex>>(
            width, Run<Vector512<float>, QuantizedCodes512>, Run<Vector256<float>, QuantizedCodes256>, Run<Vector128<float>, QuantizedCodes128>, Run<float, QuantizedCodesScalar>);

    private static void Run<TVector, TCodes>(ref readonly byte packed, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly int mapping, ref readonly float perSampleWeights, bool mean, ref float destination)
        where TCodes : IQuantizedCodes<TVector>
    {
        ref byte table = ref Unsafe.AsRef(in packed);
        ref TIndex index = ref Unsafe.AsRef(in indices);
        ref long bounds = ref Unsafe.AsRef(in starts);
        ref int map = ref Unsafe.AsRef(in mapping);
        ref float weights = ref Unsafe.AsRef(in perSampleWeights);
        int codeBytes = (dimension + TRow.CodesPerByte - 1) / TRow.CodesPerByte;
        nint rowBytes = codeBytes + TRow.ScaleBiasBytes;
        var rows = new Rows(ref table, rowBytes, codeBytes, ref index, ref map, ref weights, (nint)Unsafe.Add(ref bounds, numBags), paddingIndex, mean);

        // The scalar width serves every column; a vector width the columns of whole code bytes.
        nuint lanes = (nuint)TCodes.Lanes;
        nuint covered = (nuint)(lanes == 1 ? dimension : VectorColumns(dimension));
        // Eight accumulators (AVX-512) only for rows longer than four vectors: a shorter row would compute its vectors twice.
        bool wide = VectorsPerBlock<TVector>() == WideBlockVectors && covered > lanes * BlockVectors;
        nuint block = lanes * (nuint)(wide ? WideBlockVectors : BlockVectors);
        for (nint bag = 0; bag < numBags; bag++)
        {
            nint start = (nint)Unsafe.Add(ref bounds, bag), end = (nint)Unsafe.Add(ref bounds, bag + 1);
            ref float target = ref Unsafe.Add(ref destination, bag * dimension);
            for (nuint column = 0; ; column += block)
            {
                // The last block ends at the covered end (overlapping the previous one), or starts at 0 when the row is shorter than a block.
                nuint first = column + block > covered ? (covered > block ? covered - block : 0) : column;
                if (wide)
                {
                    Block<TVector, TCodes>(in rows, start, end, first, covered - lanes, prefetch: column == 0, wide: true, ref target);
                }
                else
                {
                    Block<TVector, TCodes>(in rows, start, end, first, covered - lanes, prefetch: column == 0, wide: false, ref target);
                }

                if (first + block >= covered)
                {
                    break;
                }
            }

            // Padding codes in the last byte: at most three columns, one lane at a time.
            if (covered < (nuint)dimension)
            {
                Block<float, QuantizedCodesScalar>(in rows, start, end, covered, (nuint)dimension - 1, prefetch: false, wide: false, ref target);
            }
        }
    }

    /// <summary>
    /// One pass over positions <c>[start, end)</c> for the <see cref="BlockVectors"/> (or, <paramref name="wide"/>,
    /// <see cref="WideBlockVectors"/>) vectors at columns <c>min(first + k·Lanes, last)</c>: accumulate, finish the mean, store.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block<TVector, TCodes>(scoped in Rows rows, nint start, nint end, nuint first, nuint last, bool prefetch, bool wide, ref float target)
        where TCodes : IQuantizedCodes<TVector>
    {
        // wide is a constant at each (inlined) call: the unused accumulators of a narrow block are dead code.
        nuint lanes = (nuint)TCodes.Lanes;
        nuint c0 = first, c1 = Math.Min(first + lanes, last), c2 = Math.Min(first + 2 * lanes, last), c3 = Math.Min(first + 3 * lanes, last);
        nuint c4 = Math.Min(first + 4 * lanes, last), c5 = Math.Min(first + 5 * lanes, last), c6 = Math.Min(first + 6 * lanes, last), c7 = Math.Min(first + 7 * lanes, last);
        TVector a0 = TCodes.Zero, a1 = TCodes.Zero, a2 = TCodes.Zero, a3 = TCodes.Zero, a4 = TCodes.Zero, a5 = TCodes.Zero, a6 = TCodes.Zero, a7 = TCodes.Zero;
        bool mapped = !Unsafe.IsNullRef(ref rows.Mapping), weighted = !Unsafe.IsNullRef(ref rows.Weights);
        int count = 0;
        for (nint i = start; i < end; i++)
        {
            if (prefetch)
            {
                rows.Prefetch(i, mapped);
            }

            nint index = KernelRows.Index(in rows.Indices, i);
            if (index == rows.PaddingIndex)
            {
                continue;
            }

            count++;
            nint row = mapped ? Unsafe.Add(ref rows.Mapping, index) : index;
            if (row < 0)
            {
                // Pruned: the position counts (for the mean) but adds nothing.
                continue;
            }

            ref byte codes = ref Unsafe.Add(ref rows.Table, row * rows.RowBytes);
            QuantizedRowFactors factors = TRow.ScaleBias(ref Unsafe.Add(ref codes, rows.CodeBytes), weighted ? Unsafe.Add(ref rows.Weights, i) : 1.0f);
            a0 = TCodes.MultiplyAdd(a0, TRow.Codes<TVector, TCodes>(ref codes, c0), in factors);
            a1 = TCodes.MultiplyAdd(a1, TRow.Codes<TVector, TCodes>(ref codes, c1), in factors);
            a2 = TCodes.MultiplyAdd(a2, TRow.Codes<TVector, TCodes>(ref codes, c2), in factors);
            a3 = TCodes.MultiplyAdd(a3, TRow.Codes<TVector, TCodes>(ref codes, c3), in factors);
            if (wide)
            {
                a4 = TCodes.MultiplyAdd(a4, TRow.Codes<TVector, TCodes>(ref codes, c4), in factors);
                a5 = TCodes.MultiplyAdd(a5, TRow.Codes<TVector, TCodes>(ref codes, c5), in factors);
                a6 = TCodes.MultiplyAdd(a6, TRow.Codes<TVector, TCodes>(ref codes, c6), in factors);
                a7 = TCodes.MultiplyAdd(a7, TRow.Codes<TVector, TCodes>(ref codes, c7), in factors);
            }
        }

        if (rows.Mean)
        {
            float divisor = Math.Max(count, 1);
            a0 = TCodes.Divide(a0, divisor);
            a1 = TCodes.Divide(a1, divisor);
            a2 = TCodes.Divide(a2, divisor);
            a3 = TCodes.Divide(a3, divisor);
            if (wide)
            {
                a4 = TCodes.Divide(a4, divisor);
                a5 = TCodes.Divide(a5, divisor);
                a6 = TCodes.Divide(a6, divisor);
                a7 = TCodes.Divide(a7, divisor);
            }
        }

        // Vectors moved back onto the same columns hold the same bits: storing each is harmless.
        TCodes.Store(a0, ref target, c0);
        TCodes.Store(a1, ref target, c1);
        TCodes.Store(a2, ref target, c2);
        TCodes.Store(a3, ref target, c3);
        if (wide)
        {
            TCodes.Store(a4, ref target, c4);
            TCodes.Store(a5, ref target, c5);
            TCodes.Store(a6, ref target, c6);
            TCodes.Store(a7, ref target, c7);
        }
    }

    /// <summary>What every pass of one call reads: the table and its row shape, the positions and their options.</summary>
    private readonly ref struct Rows
    {
        public readonly ref byte Table;
        public readonly nint RowBytes;
        public readonly int CodeBytes;
        public readonly ref TIndex Indices;
        public readonly ref int Mapping;
        public readonly ref float Weights;
        public readonly nint Total;
        public readonly long PaddingIndex;
        public readonly bool Mean;
        private readonly int _distance;

        public Rows(ref byte table, nint rowBytes, int codeBytes, ref TIndex indices, ref int mapping, ref float weights, nint total, long paddingIndex, bool mean)
        {
            Table = ref table;
            RowBytes = rowBytes;
            CodeBytes = codeBytes;
            Indices = ref indices;
            Mapping = ref mapping;
            Weights = ref weights;
            Total = total;
            PaddingIndex = paddingIndex;
            Mean = mean;
            _distance = KernelHints.DistanceForRowBytes((int)Math.Min(rowBytes, int.MaxValue));
        }

        /// <summary>Prefetches the row of the position <c>DistanceForRowBytes</c> ahead of <paramref name="i"/>: its first line and, in a longer row, its scale and bias.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Prefetch(nint i, bool mapped)
        {
            nint index = KernelRows.Index(in Indices, Math.Min(i + _distance, Total - 1));
            // A pruned (-1) position has no row: row 0's address stands in (a hint never changes a value).
            nint row = mapped ? Math.Max(Unsafe.Add(ref Mapping, index), 0) : index;
            ref byte first = ref Unsafe.Add(ref Table, row * RowBytes);
            KernelHints.PrefetchRow(in first, (int)Math.Min(RowBytes, KernelHints.PrefetchRowBytes));
            if (RowBytes > KernelHints.PrefetchRowBytes)
            {
                KernelHints.PrefetchRow(in Unsafe.Add(ref first, CodeBytes), TRow.ScaleBiasBytes);
            }
        }
    }
}
