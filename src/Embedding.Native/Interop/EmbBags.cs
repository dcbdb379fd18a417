using System;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>
/// <c>emb_bags</c> from embedding_native.h, field for field (72 bytes on 64-bit targets; the layout
/// is pinned by a test against offsets a C compiler printed). The bag exports, forward and backward,
/// read it through <see cref="From"/>, then <see cref="Validate"/>, then <see cref="CreateBags{TIndex}"/>.
/// </summary>
/// <remarks>
/// Every check throws an <see cref="EmbException"/> with the status the header documents, so an
/// export's catch turns it into its result. Nothing here reads the index values.
/// </remarks>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct EmbBags
{
    /// <summary><c>const void* indices</c>: <see cref="NumIndices"/> values of <see cref="IndexDtype"/>.</summary>
    public void* Indices;

    /// <summary><c>int64_t num_indices</c>.</summary>
    public long NumIndices;

    /// <summary><c>int32_t index_dtype</c>: EMB_DTYPE_INT32 or EMB_DTYPE_INT64.</summary>
    public int IndexDtype;

    /// <summary><c>int32_t offsets_dtype</c>: EMB_DTYPE_INT32 or EMB_DTYPE_INT64; ignored for fixed-size bags and empty offsets.</summary>
    public int OffsetsDtype;

    /// <summary><c>const void* offsets</c>: NULL for fixed-size bags, or when there are no offsets.</summary>
    public void* Offsets;

    /// <summary><c>int64_t num_offsets</c>: 0 for fixed-size bags.</summary>
    public long NumOffsets;

    /// <summary><c>int64_t bag_size</c>: positions per bag for fixed-size bags; 0 for bags given by offsets.</summary>
    public long BagSize;

    /// <summary><c>int32_t include_last_offset</c>: 0 or 1.</summary>
    public int IncludeLastOffset;

    /// <summary><c>int32_t reserved</c>: must be 0.</summary>
    public int Reserved;

    /// <summary><c>const void* per_sample_weights</c>: NULL, or <see cref="NumIndices"/> weights of the table's dtype (float32 for the backward).</summary>
    public void* PerSampleWeights;

    /// <summary><c>int64_t padding_idx</c>: a normalised row or EMB_NO_PADDING.</summary>
    public long PaddingIdx;

    /// <summary>True when the bags are weighted (a non-NULL <see cref="PerSampleWeights"/> with at least one position).</summary>
    public readonly bool IsWeighted => PerSampleWeights is not null && NumIndices > 0;

    /// <summary>The struct behind a <c>const emb_bags*</c> argument.</summary>
    /// <exception cref="EmbException">EMB_ERROR_NULL_POINTER when <paramref name="bags"/> is NULL.</exception>
    public static ref readonly EmbBags From(EmbBags* bags, string name = "bags")
    {
        if (bags is null)
        {
            throw new EmbException(EmbStatus.NullPointer, name + " is NULL");
        }

        return ref *bags;
    }

    /// <summary>
    /// Checks every field except the index values and the layout itself (<see cref="CountBags"/> and
    /// <see cref="CreateBags{TIndex}"/> check that): sizes, pointers, dtypes, <c>reserved</c>,
    /// <c>include_last_offset</c>, and the padding row against the table when
    /// <paramref name="numEmbeddings"/> is not negative.
    /// </summary>
    /// <param name="numEmbeddings">Rows in the table, or -1 where no table is involved (<c>emb_embedding_bag_count</c>).</param>
    /// <returns>The size in bytes of one index (4 or 8).</returns>
    public readonly int Validate(long numEmbeddings = -1)
    {
        AbiChecks.NonNegative(NumIndices, "bags->num_indices");
        AbiChecks.NonNegative(NumOffsets, "bags->num_offsets");
        int indexSize = AbiChecks.IndexSize(IndexDtype, "bags->index_dtype");
        if (Reserved != 0)
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"bags->reserved is {Reserved}; it must be 0"));
        }

        if (IncludeLastOffset is not (0 or 1))
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"bags->include_last_offset is {IncludeLastOffset}; it must be 0 or 1"));
        }

        if (NumIndices > int.MaxValue)
        {
            throw new EmbException(EmbStatus.NotSupported, Text($"bags->num_indices {NumIndices} exceeds {int.MaxValue}, the most one call takes; split the bags over several calls"));
        }

        AbiChecks.Pointer(Indices, NumIndices, "bags->indices");
        if (BagSize < 0)
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"bags->bag_size is {BagSize}; it is positive for fixed-size bags and 0 for bags given by offsets"));
        }

        if (IsFixedSize)
        {
            if (Offsets is not null || NumOffsets != 0)
            {
                throw new EmbException(EmbStatus.InvalidArgument, Text($"bags->bag_size is {BagSize} (fixed-size bags) but offsets are given too; set bag_size to 0 to use offsets"));
            }

            if (IncludeLastOffset != 0)
            {
                throw new EmbException(EmbStatus.InvalidArgument, "bags->include_last_offset needs offsets; fixed-size bags (bag_size > 0) take 0 (torch 1.13 drops the last bag of a 2-D input here)");
            }
        }
        else
        {
            AbiChecks.Pointer(Offsets, NumOffsets, "bags->offsets");
            if (NumOffsets > 0)
            {
                AbiChecks.IndexSize(OffsetsDtype, "bags->offsets_dtype");
            }

            if (NumOffsets >= Array.MaxLength)
            {
                throw new EmbException(EmbStatus.NotSupported, Text($"bags->num_offsets {NumOffsets} exceeds {Array.MaxLength - 1}, the most one call takes"));
            }
        }

        if (PaddingIdx != EmbeddingPrimitives.NoPadding && (PaddingIdx < 0 || (numEmbeddings >= 0 && PaddingIdx >= numEmbeddings)))
        {
            throw new EmbException(EmbStatus.IndexOutOfRange, numEmbeddings >= 0
                ? EmbeddingPrimitives.PaddingRowOutOfRange(PaddingIdx, numEmbeddings)
                : Text($"bags->padding_idx {PaddingIdx} is neither a normalised row (>= 0) nor EMB_NO_PADDING (-1)"));
        }

        return indexSize;
    }

    /// <summary>Checks <paramref name="mode"/> and that per-sample weights come only with <see cref="EmbeddingBagMode.Sum"/>.</summary>
    /// <exception cref="EmbException">EMB_ERROR_INVALID_ARGUMENT for an unknown mode; EMB_ERROR_NOT_SUPPORTED for weights with mean or max (torch: NotImplementedError).</exception>
    public readonly EmbeddingBagMode Mode(int mode)
    {
        if (mode is < 0 or > 2)
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"mode {mode} is not EMB_BAG_SUM (0), EMB_BAG_MEAN (1) or EMB_BAG_MAX (2)"));
        }

        if (PerSampleWeights is not null && mode != 0)
        {
            throw new EmbException(EmbStatus.NotSupported, EmbeddingPrimitives.WeightsNeedSum((EmbeddingBagMode)mode));
        }

        return (EmbeddingBagMode)mode;
    }

    /// <summary>Fixed-size bags (a 2-D input) when <see cref="BagSize"/> is positive; bags given by offsets when it is 0.</summary>
    public readonly bool IsFixedSize => BagSize > 0;

    /// <summary>The number of bags, after validating the layout (call <see cref="Validate"/> first).</summary>
    /// <exception cref="EmbException">EMB_ERROR_INVALID_ARGUMENT for malformed offsets or a bag size that does not divide the indices.</exception>
    public readonly long CountBags()
    {
        if (IsFixedSize)
        {
            if (NumIndices % BagSize != 0)
            {
                throw new EmbException(EmbStatus.InvalidArgument, BagLayout.BuildFixed(NumIndices, BagSize, default)!);
            }

            return NumIndices / BagSize;
        }

        string? error = OffsetsDtype == (int)EmbDtype.Int32
            ? BagsBuilder.TryCountBags(new ReadOnlySpan<int>(Offsets, (int)NumOffsets), NumIndices, IncludeLastOffset != 0, out long count)
            : BagsBuilder.TryCountBags(new ReadOnlySpan<long>(Offsets, (int)NumOffsets), NumIndices, IncludeLastOffset != 0, out count);
        return error is null ? count : throw new EmbException(EmbStatus.InvalidArgument, error);
    }

    /// <summary>
    /// The validated layout over the caller's buffers (call <see cref="Validate"/> first; <typeparamref name="TIndex"/>
    /// must match <see cref="IndexDtype"/>), per-sample weights read as float32. The index values are not checked: use
    /// <see cref="BagsBuilder.FindFirstBadIndex"/>. Dispose the result.
    /// </summary>
    /// <exception cref="EmbException">EMB_ERROR_INVALID_ARGUMENT for malformed offsets or a bag size that does not divide the indices.</exception>
    public readonly PooledBags<TIndex> CreateBags<TIndex>()
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        CreateBags<TIndex, float>();

    /// <summary>
    /// The validated layout with per-sample weights of the table's element type <typeparamref name="TWeight"/>
    /// (torch requires per_sample_weights to have the weight's dtype; the C ABI reads them in weight_dtype).
    /// </summary>
    /// <inheritdoc cref="CreateBags{TIndex}"/>
    public readonly PooledBags<TIndex> CreateBags<TIndex, TWeight>()
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWeight : unmanaged
    {
        if (sizeof(TIndex) != (IndexDtype == (int)EmbDtype.Int32 ? sizeof(int) : sizeof(long)))
        {
            throw new EmbException(EmbStatus.Internal, $"CreateBags<{typeof(TIndex).Name}> called for index dtype {IndexDtype}");
        }

        var indices = new ReadOnlySpan<TIndex>(Indices, (int)NumIndices);
        var weights = PerSampleWeights is null ? default : new ReadOnlySpan<TWeight>(PerSampleWeights, (int)NumIndices);
        PooledBags<TIndex> bags;
        string? error = IsFixedSize
            ? BagsBuilder.TryCreateFixedBags<TIndex, TWeight>(indices, BagSize, weights, PaddingIdx, out bags)
            : OffsetsDtype == (int)EmbDtype.Int32
                ? BagsBuilder.TryCreateBags<TIndex, int, TWeight>(indices, new ReadOnlySpan<int>(Offsets, (int)NumOffsets), IncludeLastOffset != 0, weights, PaddingIdx, out bags)
                : BagsBuilder.TryCreateBags<TIndex, long, TWeight>(indices, new ReadOnlySpan<long>(Offsets, (int)NumOffsets), IncludeLastOffset != 0, weights, PaddingIdx, out bags);
        return error is null ? bags : throw new EmbException(EmbStatus.InvalidArgument, error);
    }

    /// <summary>The bytes the struct itself, the indices, offsets and weights occupy, for overlap checks against outputs.</summary>
    /// <param name="output">The output buffer.</param>
    /// <param name="outputBytes">Its size in bytes.</param>
    /// <param name="outputName">Its name in the header, for the message.</param>
    /// <param name="indexSize">Bytes per index (4 or 8).</param>
    /// <param name="weightSize">Bytes per per-sample weight: the table element's size (float32 unless given).</param>
    public readonly void CheckDisjoint(void* output, long outputBytes, string outputName, int indexSize, int weightSize)
    {
        // This is the caller's struct (From returns a reference to it, never a copy): an output over it would rewrite the const bags.
        AbiChecks.Disjoint(output, outputBytes, Unsafe.AsPointer(ref Unsafe.AsRef(in this)), sizeof(EmbBags), outputName, "bags");
        AbiChecks.Disjoint(output, outputBytes, Indices, NumIndices * indexSize, outputName, "bags->indices");
        if (Offsets is not null)
        {
            AbiChecks.Disjoint(output, outputBytes, Offsets, NumOffsets * (OffsetsDtype == (int)EmbDtype.Int32 ? sizeof(int) : sizeof(long)), outputName, "bags->offsets");
        }

        if (PerSampleWeights is not null)
        {
            AbiChecks.Disjoint(output, outputBytes, PerSampleWeights, NumIndices * weightSize, outputName, "bags->per_sample_weights");
        }
    }

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
