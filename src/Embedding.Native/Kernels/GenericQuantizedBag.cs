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
/// <b>Two passes at most.</b> Each block first runs a speculative pass of float FMAs with every sum's distance from its
/// row's window tracked (<see cref="IQuantizedCodes{TVector}.MultiplyAddTracked"/>), and stores only when the window proves
/// every step; otherwise it runs the pass again on the exact path (<see cref="IQuantizedCodes{TVector}.MultiplyAdd"/>). The
/// arithmetic, and why the window proves it, is in <see cref="QuantizedRowFactors"/>.
/// </para>
/// <para>
/// <b>Why blocks.</b> Each accumulator is a chain through every row of the bag (a float add and FMA, about 7 cycles,
/// or on the double path a float add, widen, double multiply-add and narrow, about 25); a block keeps four (AVX-512:
/// eight) independent chains in flight and reads the row's index, mapping entry, scale and bias once for all of them.
/// Measured on an AMD EPYC (AVX-512, in-cache table, D = 128): eight accumulators 70 M rows/s against 64 with four; at
/// D = 64 eight would compute each of the four vectors twice, so rows of at most four vectors keep four.
/// </para>
/// <para>
/// <b>Prefetch.</b> During the first block of each bag, the row <c>KernelHints.DistanceForRowBytes</c> positions ahead
/// (across bag boundaries, never past the last position) is prefetched, every line of it
/// (<see cref="QuantizedBagRows{TIndex, TRow}.Prefetch"/>).
/// </para>
/// <para>
/// <b>Shared with the generated kernels.</b> The per-position bookkeeping (padding, count, pruning map, row address,
/// weighted scale and bias, prefetch, the mean's division) is <see cref="QuantizedBagRows{TIndex, TRow}"/>, and
/// the columns are the <see cref="IQuantizedCodes{TVector}"/> operators; a kernel generated for one dimension
/// (<c>[EmbeddingKernels(..., Quantized = ...)]</c>) calls the same two with the blocks laid out at constant
/// columns and exactly the vectors the row needs, so it gives the same bits.
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
    public static int VectorColumns(int dimension) => KernelShape.WholeByteColumns(dimension, TRow.CodesPerByte);

    /// <summary>The kernel for <paramref name="width"/> (which must fit <see cref="VectorColumns"/>).</summary>
    public static QuantizedBagKernel<TIndex> At(VectorWidth width) =>
        WidthLadder.Select<QuantizedBagKernel<TIndex>>(
            width, Run<Vector512<float>, QuantizedCodes512>, Run<Vector256<float>, QuantizedCodes256>, Run<Vector128<float>, QuantizedCodes128>, Run<float, QuantizedCodesScalar>);

    private static void Run<TVector, TCodes>(ref readonly byte packed, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly int mapping, ref readonly float perSampleWeights, bool mean, ref float destination)
        where TCodes : IQuantizedCodes<TVector>
    {
        var rows = new QuantizedBagRows<TIndex, TRow>(in packed, dimension, in indices, in starts, numBags, paddingIndex, in mapping, in perSampleWeights, mean);

        // The scalar width serves every column; a vector width the columns of whole code bytes.
        nuint lanes = (nuint)TCodes.Lanes;
        nuint covered = (nuint)(lanes == 1 ? dimension : VectorColumns(dimension));
        // Eight accumulators (AVX-512) only for rows longer than four vectors: a shorter row would compute its vectors twice.
        bool wide = VectorsPerBlock<TVector>() == WideBlockVectors && covered > lanes * BlockVectors;
        nuint block = lanes * (nuint)(wide ? WideBlockVectors : BlockVectors);
        for (nint bag = 0; bag < numBags; bag++)
        {
            nint start = KernelRows.Index(in starts, bag), end = KernelRows.Index(in starts, bag + 1);
            ref float target = ref KernelRows.Of(in destination, bag, dimension);
            for (nuint column = 0; ; column += block)
            {
                // The last block ends at the covered end (overlapping the previous one), or starts at 0 when the row is shorter than a block.
                nuint first = column + block > covered ? (covered > block ? covered - block : 0) : column;
                if (wide)
                {
                    WideBlock<TVector, TCodes>(in rows, start, end, first, covered - lanes, prefetch: column == 0, ref target);
                }
                else
                {
                    NarrowBlock<TVector, TCodes>(in rows, start, end, first, covered - lanes, prefetch: column == 0, ref target);
                }

                if (first + block >= covered)
                {
                    break;
                }
            }

            // Padding codes in the last byte: at most three columns, one lane at a time.
            if (covered < (nuint)dimension)
            {
                NarrowBlock<float, QuantizedCodesScalar>(in rows, start, end, covered, (nuint)dimension - 1, prefetch: false, ref target);
            }
        }
    }

    /// <summary>
    /// <see cref="Block"/> with <see cref="WideBlockVectors"/> accumulators, compiled on its own: inlined into <see cref="Run"/>
    /// next to the narrow block, the two passes of each exhausted the JIT's inlining budget for the method (calls to the
    /// position bookkeeping in the hot loop: 4-bit bags took 4x the time). One call per bag and block costs nothing measurable.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WideBlock<TVector, TCodes>(scoped in QuantizedBagRows<TIndex, TRow> rows, nint start, nint end, nuint first, nuint last, bool prefetch, ref float target)
        where TCodes : IQuantizedCodes<TVector> =>
        Block<TVector, TCodes>(in rows, start, end, first, last, prefetch, wide: true, ref target);

    /// <summary><see cref="Block"/> with <see cref="BlockVectors"/> accumulators, compiled on its own (<see cref="WideBlock"/>).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void NarrowBlock<TVector, TCodes>(scoped in QuantizedBagRows<TIndex, TRow> rows, nint start, nint end, nuint first, nuint last, bool prefetch, ref float target)
        where TCodes : IQuantizedCodes<TVector> =>
        Block<TVector, TCodes>(in rows, start, end, first, last, prefetch, wide: false, ref target);

    /// <summary>
    /// The bag's positions <c>[start, end)</c> for the <see cref="BlockVectors"/> (or, <paramref name="wide"/>,
    /// <see cref="WideBlockVectors"/>) vectors at columns <c>min(first + k·Lanes, last)</c>: a speculative float-FMA pass,
    /// and a second pass on the exact path when the first cannot prove its bits (<see cref="QuantizedRowFactors"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block<TVector, TCodes>(scoped in QuantizedBagRows<TIndex, TRow> rows, nint start, nint end, nuint first, nuint last, bool prefetch, bool wide, ref float target)
        where TCodes : IQuantizedCodes<TVector>
    {
        if (!QuantizedRowFactors.SpeculatesInFloat || !Pass<TVector, TCodes>(in rows, start, end, first, last, prefetch, wide, tracked: true, ref target))
        {
            ExactPass<TVector, TCodes>(in rows, start, end, first, last, prefetch && !QuantizedRowFactors.SpeculatesInFloat, wide, ref target);
        }
    }

    /// <summary>The exact pass, compiled on its own so that the speculative one keeps the caller's inlining budget (<paramref name="wide"/> is a variable here: one predictable branch per position).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ExactPass<TVector, TCodes>(scoped in QuantizedBagRows<TIndex, TRow> rows, nint start, nint end, nuint first, nuint last, bool prefetch, bool wide, ref float target)
        where TCodes : IQuantizedCodes<TVector> =>
        Pass<TVector, TCodes>(in rows, start, end, first, last, prefetch, wide, tracked: false, ref target);

    /// <summary>
    /// One pass: accumulate, finish the mean, store. <paramref name="tracked"/>: float FMAs with the window tracked, and
    /// nothing stored (false returned) unless every step is proven; otherwise each step exact (<see cref="IQuantizedCodes{TVector}.MultiplyAdd"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Pass<TVector, TCodes>(scoped in QuantizedBagRows<TIndex, TRow> rows, nint start, nint end, nuint first, nuint last, bool prefetch, bool wide, bool tracked, ref float target)
        where TCodes : IQuantizedCodes<TVector>
    {
        // wide and tracked are constants at each (inlined) call: the unused accumulators and the other step are dead code.
        nuint lanes = (nuint)TCodes.Lanes;
        nuint c0 = first, c1 = Math.Min(first + lanes, last), c2 = Math.Min(first + 2 * lanes, last), c3 = Math.Min(first + 3 * lanes, last);
        nuint c4 = Math.Min(first + 4 * lanes, last), c5 = Math.Min(first + 5 * lanes, last), c6 = Math.Min(first + 6 * lanes, last), c7 = Math.Min(first + 7 * lanes, last);
        TVector a0 = TCodes.Zero, a1 = TCodes.Zero, a2 = TCodes.Zero, a3 = TCodes.Zero, a4 = TCodes.Zero, a5 = TCodes.Zero, a6 = TCodes.Zero, a7 = TCodes.Zero;
        TVector outside = TCodes.Zero;
        bool windowed = true;
        int count = 0;
        for (nint i = start; i < end; i++)
        {
            if (prefetch)
            {
                rows.Prefetch(i);
            }

            ref byte codes = ref rows.Row(i, ref count, out QuantizedRowFactors factors);
            if (Unsafe.IsNullRef(ref codes))
            {
                // Padding, or pruned: a pruned position counts (for the mean) but adds nothing.
                continue;
            }

            if (tracked)
            {
                windowed &= factors.Windowed;
                QuantizedRowVectors<TVector> row = TCodes.Broadcast(in factors, first: count == 1);
                a0 = TCodes.MultiplyAddTracked(a0, TRow.Codes<TVector, TCodes>(ref codes, c0), in row, ref outside);
                a1 = TCodes.MultiplyAddTracked(a1, TRow.Codes<TVector, TCodes>(ref codes, c1), in row, ref outside);
                a2 = TCodes.MultiplyAddTracked(a2, TRow.Codes<TVector, TCodes>(ref codes, c2), in row, ref outside);
                a3 = TCodes.MultiplyAddTracked(a3, TRow.Codes<TVector, TCodes>(ref codes, c3), in row, ref outside);
                if (wide)
                {
                    a4 = TCodes.MultiplyAddTracked(a4, TRow.Codes<TVector, TCodes>(ref codes, c4), in row, ref outside);
                    a5 = TCodes.MultiplyAddTracked(a5, TRow.Codes<TVector, TCodes>(ref codes, c5), in row, ref outside);
                    a6 = TCodes.MultiplyAddTracked(a6, TRow.Codes<TVector, TCodes>(ref codes, c6), in row, ref outside);
                    a7 = TCodes.MultiplyAddTracked(a7, TRow.Codes<TVector, TCodes>(ref codes, c7), in row, ref outside);
                }
            }
            else
            {
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
        }

        if (tracked && !(windowed && TCodes.AllInside(outside)))
        {
            return false;
        }

        // Vectors moved back onto the same columns hold the same bits: storing each is harmless.
        TCodes.Store(rows.Finish<TVector, TCodes>(a0, count), ref target, c0);
        TCodes.Store(rows.Finish<TVector, TCodes>(a1, count), ref target, c1);
        TCodes.Store(rows.Finish<TVector, TCodes>(a2, count), ref target, c2);
        TCodes.Store(rows.Finish<TVector, TCodes>(a3, count), ref target, c3);
        if (wide)
        {
            TCodes.Store(rows.Finish<TVector, TCodes>(a4, count), ref target, c4);
            TCodes.Store(rows.Finish<TVector, TCodes>(a5, count), ref target, c5);
            TCodes.Store(rows.Finish<TVector, TCodes>(a6, count), ref target, c6);
            TCodes.Store(rows.Finish<TVector, TCodes>(a7, count), ref target, c7);
        }

        return true;
    }
}
