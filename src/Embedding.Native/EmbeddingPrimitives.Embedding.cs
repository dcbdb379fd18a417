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
    /// <param name="weight">The table, <c>rows × embeddingDim</c> floats.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="destination">Receives <c>indices.Length × embeddingDim</c> floats.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is negative or not below rows, or <paramref name="embeddingDim"/> is not positive.</exception>
    /// <exception cref="ArgumentException">The weight length is not a multiple of <paramref name="embeddingDim"/>, the destination is too short, or it overlaps an input.</exception>
    public static void Embedding(ReadOnlySpan<int> indices, ReadOnlySpan<float> weight, int embeddingDim, Span<float> destination) =>
        Embedding(indices, weight, embeddingDim, destination, KernelDispatch.BestWidth);

    /// <inheritdoc cref="Embedding(ReadOnlySpan{int}, ReadOnlySpan{float}, int, Span{float})"/>
    public static void Embedding(ReadOnlySpan<long> indices, ReadOnlySpan<float> weight, int embeddingDim, Span<float> destination) =>
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
    internal static void Embedding<TIndex>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<float> weight, int embeddingDim, Span<float> destination, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} floats, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        long required = (long)indices.Length * embeddingDim;
        if (destination.Length < required)
        {
            throw new ArgumentException($"The destination holds {destination.Length} floats; {indices.Length} indices × {embeddingDim} columns need {required}.", nameof(destination));
        }

        Span<float> written = destination[..(int)required];
        if (written.Overlaps(weight) || written.Overlaps(MemoryMarshal.Cast<TIndex, float>(indices)))
        {
            throw new ArgumentException("The destination overlaps the weight or the indices.", nameof(destination));
        }

        long rows = weight.Length / embeddingDim;
        nint bad = Gather(
            ref MemoryMarshal.GetReference(weight), rows, embeddingDim,
            ref MemoryMarshal.GetReference(indices), indices.Length,
            ref MemoryMarshal.GetReference(destination), width, threads);
        if (bad >= 0)
        {
            long value = long.CreateTruncating(indices[(int)bad]);
            throw new ArgumentOutOfRangeException(nameof(indices), value, EmbeddingErrors.IndexOutOfRange(bad, value, rows));
        }
    }

    /// <summary>
    /// The validated core shared by the span API and the C ABI: checks every index (on the calling
    /// thread), then gathers, split into contiguous ranges of output rows when the call is large
    /// enough for <paramref name="threads"/> (<see cref="EmbeddingThreads.UseCount"/>: <see cref="EmbeddingThreads.Count"/>).
    /// Shapes and buffers are the caller's responsibility.
    /// </summary>
    /// <returns>-1 on success; otherwise the position of the first bad index, and nothing was written.</returns>
    internal static unsafe nint Gather<TIndex>(ref readonly float weight, long rows, int dimension, ref readonly TIndex indices, nint count, ref float destination, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref TIndex index = ref Unsafe.AsRef(in indices);
        nint bad = IndexRange.FindFirstOutOfRange(ref index, count, rows);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        width = KernelDispatch.FitWidth(width, dimension);
        threads = EmbeddingThreads.For(2L * sizeof(float) * dimension * count, count, threads);
        fixed (float* output = &destination)
        {
            // Pinned, so the alignment that decides streaming holds while the stores run. Rows are whole
            // lines when it streams, so every piece of a split call starts on a line too.
            bool streaming = StreamingGather.Applies(width, dimension, count, output);
            if (threads == 1)
            {
                GatherRange(in weight, dimension, ref index, count, output, width, streaming);
                return -1;
            }

            fixed (float* table = &Unsafe.AsRef(in weight))
            fixed (TIndex* first = &index)
            {
                var work = new GatherWork<TIndex> { Weight = table, Indices = first, Count = count, Dimension = dimension, Destination = output, Width = width, Streaming = streaming };
                WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, count), threads);
            }
        }

        return -1;
    }

    /// <summary>Gathers positions <c>[0, count)</c> of <paramref name="index"/> into the pinned <paramref name="output"/> (both already offset to the range).</summary>
    private static unsafe void GatherRange<TIndex>(ref readonly float weight, int dimension, ref TIndex index, nint count, float* output, VectorWidth width, bool streaming)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        ref float destination = ref *output;
        if (streaming)
        {
            StreamingGather.Run(width, ref Unsafe.AsRef(in weight), dimension, ref index, count, output);
        }
        else if (typeof(TIndex) == typeof(int) && KernelDispatch.GatherInt32(dimension, width) is { } int32Kernel)
        {
            int32Kernel(in weight, in Unsafe.As<TIndex, int>(ref index), count, ref destination);
        }
        else if (typeof(TIndex) == typeof(long) && KernelDispatch.GatherInt64(dimension, width) is { } int64Kernel)
        {
            int64Kernel(in weight, in Unsafe.As<TIndex, long>(ref index), count, ref destination);
        }
        else
        {
            GenericGather.Run(width, ref Unsafe.AsRef(in weight), dimension, ref index, count, ref destination);
        }
    }

    /// <summary>One piece of a parallel gather: a contiguous range of output rows.</summary>
    private unsafe struct GatherWork<TIndex> : IParallelWork
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        public float* Weight;
        public TIndex* Indices;
        public nint Count;
        public int Dimension;
        public float* Destination;
        public VectorWidth Width;
        public bool Streaming;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Count, part + 1, parts);
            if (end > start)
            {
                GatherRange(in *Weight, Dimension, ref Indices[start], end - start, Destination + start * Dimension, Width, Streaming);
            }
        }
    }
}
