using System;
using System.ComponentModel;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// Everything a quantized bag kernel does per position except the columns: skip the padding index, count the
/// position (the mean's divisor), follow the pruning map, find the packed row and read its scale and bias times
/// the per-sample weight; and per bag the mean's division and the prefetch of a row ahead. The generic kernel
/// (<see cref="GenericQuantizedBag{TIndex, TRow}"/>) and the generated ones share it, so this bookkeeping
/// exists once. Public only so that kernels generated into a consumer assembly can call it; it validates nothing.
/// </summary>
/// <remarks>
/// A kernel creates one per call from its <see cref="QuantizedBagKernel{TIndex}"/> arguments; a specialised
/// kernel passes its dimension as a constant, so the row size and the prefetch distance fold into constants.
/// </remarks>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <typeparam name="TRow">The code width: <see cref="QuantizedRow8"/>, <see cref="QuantizedRow4"/> or <see cref="QuantizedRow2"/>.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public readonly ref struct QuantizedBagRows<TIndex, TRow>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
    where TRow : IQuantizedRow
{
    /// <summary>The weight of every position of an unweighted bag (its product with a scale or bias is exact).</summary>
    private static readonly float One = 1.0f;

    private readonly ref byte _table;
    private readonly nint _rowBytes;
    private readonly nint _codeBytes;
    private readonly ref TIndex _indices;
    private readonly ref int _mapping;
    private readonly ref float _weights;
    private readonly nint _weightMask;
    private readonly nint _total;
    private readonly long _paddingIndex;
    private readonly int _distance;
    private readonly bool _mean;

    /// <summary>Captures one kernel call (the arguments of <see cref="QuantizedBagKernel{TIndex}"/>).</summary>
    /// <param name="packed">First byte of the packed table.</param>
    /// <param name="dimension">D, columns per row.</param>
    /// <param name="indices">First index.</param>
    /// <param name="starts">First of the <c>numBags + 1</c> bag boundaries.</param>
    /// <param name="numBags">Number of bags: positions end at <c>starts[numBags]</c> (the prefetch looks no further).</param>
    /// <param name="paddingIndex">The index whose positions count for nothing, or -1.</param>
    /// <param name="mapping">First entry of the pruning map, or a null reference.</param>
    /// <param name="perSampleWeights">One weight per position, or a null reference.</param>
    /// <param name="mean">True when each bag's sum is divided by its count.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public QuantizedBagRows(ref readonly byte packed, int dimension, ref readonly TIndex indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly int mapping, ref readonly float perSampleWeights, bool mean)
    {
        _table = ref Unsafe.AsRef(in packed);
        _codeBytes = (nint)(((long)dimension + TRow.CodesPerByte - 1) / TRow.CodesPerByte);
        _rowBytes = _codeBytes + TRow.ScaleBiasBytes;
        _indices = ref Unsafe.AsRef(in indices);
        _mapping = ref Unsafe.AsRef(in mapping);
        // Unweighted: every position reads the same 1 (index masked to 0), so the per-position code has no branch for it.
        bool weighted = !Unsafe.IsNullRef(in perSampleWeights);
        _weights = ref weighted ? ref Unsafe.AsRef(in perSampleWeights) : ref Unsafe.AsRef(in One);
        _weightMask = weighted ? -1 : 0;
        _total = KernelRows.Index(in starts, numBags);
        _paddingIndex = paddingIndex;
        _distance = KernelHints.DistanceForRowBytes((int)Math.Min(_rowBytes, int.MaxValue));
        _mean = mean;
    }

    /// <summary>
    /// The codes of position <paramref name="i"/>'s row, and its scale and bias times the position's weight; or a
    /// null reference when the position adds nothing: the padding index, or an index pruned to -1.
    /// <paramref name="count"/> grows by one for every position but the padding index (a pruned one counts
    /// for the mean, as in torch).
    /// </summary>
    /// <param name="i">The position.</param>
    /// <param name="count">The bag's count of non-padding positions so far.</param>
    /// <param name="factors">Receives the row's <see cref="IQuantizedRow.ScaleBias"/> for the position's weight (default when the position adds nothing).</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref byte Row(nint i, ref int count, out QuantizedRowFactors factors)
    {
        nint index = KernelRows.Index(in _indices, i);
        if (index != _paddingIndex)
        {
            count++;
            nint row = Unsafe.IsNullRef(ref _mapping) ? index : Unsafe.Add(ref _mapping, index);
            if (row >= 0)
            {
                ref byte codes = ref Unsafe.Add(ref _table, row * _rowBytes);
                factors = TRow.ScaleBias(ref Unsafe.Add(ref codes, _codeBytes), Unsafe.Add(ref _weights, i & _weightMask));
                return ref codes;
            }
        }

        factors = default;
        return ref Unsafe.NullRef<byte>();
    }

    /// <summary>
    /// Prefetches the row of the position <see cref="KernelHints.DistanceForRowBytes"/> ahead of <paramref name="i"/>
    /// (never past the last position of the call): every line of it. Unlike a float row's, whose first line starts the hardware
    /// stream, a packed row is read a block of columns per pass over the bag, so a row longer than one block (D = 256
    /// 8-bit rows at AVX-512: 264 bytes) would meet its later lines cold on the next pass: 8-bit D = 256 from DRAM took
    /// 0.77x the time with the whole row prefetched (bench/notes.md §7).
    /// </summary>
    /// <param name="i">The position being worked on.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Prefetch(nint i)
    {
        if (!KernelHints.IssuesPrefetches)
        {
            return;
        }

        nint index = KernelRows.Index(in _indices, Math.Min(i + _distance, _total - 1));
        // A pruned (-1) position has no row: row 0's address stands in (a hint never changes a value).
        nint row = Unsafe.IsNullRef(ref _mapping) ? index : Math.Max(Unsafe.Add(ref _mapping, index), 0);
        ref byte first = ref Unsafe.Add(ref _table, row * _rowBytes);
        for (nint line = 0; line < _rowBytes; line += KernelHints.PrefetchRowBytes)
        {
            KernelHints.PrefetchRow(in Unsafe.Add(ref first, line), (int)Math.Min(_rowBytes - line, KernelHints.PrefetchRowBytes));
        }
    }

    /// <summary>A bag's accumulators as stored: the sum, or for the mean the sum divided by <c>max(count, 1)</c> (a float division).</summary>
    /// <typeparam name="TVector">The accumulator type.</typeparam>
    /// <typeparam name="TCodes">The width's operators.</typeparam>
    /// <param name="sum">The bag's sums of one vector of columns.</param>
    /// <param name="count">The bag's count from <see cref="Row"/>.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TVector Finish<TVector, TCodes>(TVector sum, int count)
        where TCodes : IQuantizedCodes<TVector> =>
        _mean ? TCodes.Divide(sum, Math.Max(count, 1)) : sum;
}
