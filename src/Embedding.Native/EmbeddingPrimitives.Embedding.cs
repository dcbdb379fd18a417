using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    /// <summary>
    /// Looks up rows of an embedding table: <c>torch.nn.functional.embedding(indices, weight)</c>.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim, rows = weight.Length / D
    /// for i in 0 .. indices.Length-1:
    ///     require 0 &lt;= indices[i] &lt; rows            // else throws, nothing written
    ///     destination[i*D .. i*D+D-1] = weight[indices[i]*D .. indices[i]*D+D-1]
    /// </code>
    /// Values are copied bit for bit (NaN payloads and -0.0 included). A padding row is returned as
    /// stored: padding_idx only matters for gradients.
    /// </remarks>
    /// <param name="indices">Row indices, any count (flatten N-d index tensors row-major).</param>
    /// <param name="weight">The table, <c>rows × embeddingDim</c> elements of float32, float64, float16 or bfloat16.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="destination">Receives <c>indices.Length × embeddingDim</c> elements of the weight's type.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is negative or not below rows, or <paramref name="embeddingDim"/> is not positive.</exception>
    /// <exception cref="ArgumentException">The weight length is not a multiple of <paramref name="embeddingDim"/>, the destination is too short, or it overlaps an input.</exception>
    public static void Embedding(ReadOnlySpan<int> indices, ReadOnlySpan<float> weight, int embeddingDim, Span<float> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<long> indices, ReadOnlySpan<float> weight, int embeddingDim, Span<float> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<int> indices, ReadOnlySpan<double> weight, int embeddingDim, Span<double> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<long> indices, ReadOnlySpan<double> weight, int embeddingDim, Span<double> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<int> indices, ReadOnlySpan<Half> weight, int embeddingDim, Span<Half> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<long> indices, ReadOnlySpan<Half> weight, int embeddingDim, Span<Half> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<int> indices, ReadOnlySpan<BFloat16> weight, int embeddingDim, Span<BFloat16> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<long> indices, ReadOnlySpan<BFloat16> weight, int embeddingDim, Span<BFloat16> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <summary>
    /// Normalises and checks a padding index as <c>torch.nn.Embedding</c> does: a negative value
    /// counts from the end (<c>-1</c> is the last row), and the result must name a row. Zero is always accepted.
    /// </summary>
    /// <param name="paddingIndex">The padding index as the user wrote it.</param>
    /// <param name="numEmbeddings">Rows in the table.</param>
    /// <returns>The row index in <c>[0, numEmbeddings)</c> (or 0).</returns>
    /// <exception cref="ArgumentOutOfRangeException">The index is outside <c>[-numEmbeddings, numEmbeddings)</c>; the message starts with torch's text.</exception>
    public static long NormalizePaddingIndex(long paddingIndex, long numEmbeddings)
    {
        if (!TryNormalizePaddingIndex(paddingIndex, numEmbeddings, out long row))
        {
            throw new ArgumentOutOfRangeException(nameof(paddingIndex), paddingIndex, EmbeddingErrors.PaddingIndex(paddingIndex, numEmbeddings));
        }

        return row;
    }

    internal static bool TryNormalizePaddingIndex(long paddingIndex, long numEmbeddings, out long row)
    {
        row = paddingIndex < 0 ? numEmbeddings + paddingIndex : paddingIndex;
        return paddingIndex > 0 ? paddingIndex < numEmbeddings
             : paddingIndex < 0 ? paddingIndex >= -numEmbeddings
             : true;
    }

    /// <summary>The span overload with the vector width chosen by the caller (tests force each width).</summary>
    internal static void Embedding<TElement, TIndex>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TElement> weight, int embeddingDim, Span<TElement> destination, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} elements, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        long required = (long)indices.Length * embeddingDim;
        if (destination.Length < required)
        {
            throw new ArgumentException($"The destination holds {destination.Length} elements; {indices.Length} indices × {embeddingDim} columns need {required}.", nameof(destination));
        }

        Span<TElement> written = destination[..(int)required];
        if (written.Overlaps(weight) || MemoryMarshal.AsBytes(written).Overlaps(MemoryMarshal.AsBytes(indices)))
        {
            throw new ArgumentException("The destination overlaps the weight or the indices.", nameof(destination));
        }

        long rows = weight.Length / embeddingDim;
        nint bad = Gather(
            TableElements.TypeOf<TElement>(), in MemoryMarshal.GetReference(weight), rows, embeddingDim,
            in MemoryMarshal.GetReference(indices), indices.Length,
            ref MemoryMarshal.GetReference(destination), width, threads);
        if (bad >= 0)
        {
            long value = long.CreateTruncating(indices[(int)bad]);
            throw new ArgumentOutOfRangeException(nameof(indices), value, EmbeddingErrors.IndexOutOfRange(bad, value, rows));
        }
    }

    /// <summary>
    /// The validated core shared by the span API and the C ABI: checks every index (on the calling
    /// thread), then gathers (<see cref="GatherRunner"/>). A gather moves bits, so 2-byte tables run
    /// as <see cref="ushort"/>. Shapes and buffers are the caller's responsibility.
    /// </summary>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was written.</returns>
    internal static nint Gather<TElement, TIndex>(EmbeddingType table, ref readonly TElement weight, long rows, int dimension, ref readonly TIndex indices, nint count, ref TElement destination, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex index = ref Unsafe.AsRef(in indices);
        nint bad = IndexRange.FindFirstOutOfRange(ref index, count, rows);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        if (Unsafe.SizeOf<TElement>() == sizeof(ushort))
        {
            GatherRunner.Run(table, in Unsafe.As<TElement, ushort>(ref Unsafe.AsRef(in weight)), dimension, ref index, count, ref Unsafe.As<TElement, ushort>(ref destination), width, threads);
        }
        else
        {
            GatherRunner.Run(table, in weight, dimension, ref index, count, ref destination, width, threads);
        }

        return -1;
    }
}
