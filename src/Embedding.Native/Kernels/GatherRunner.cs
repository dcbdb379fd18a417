using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// Runs a gather over validated inputs: finds the kernel by its <see cref="KernelKey"/>, streams
/// very large outputs, and splits the rows over threads. Every piece calls the same kernel.
/// </summary>
internal static class GatherRunner
{
    /// <summary>The kernel for a gather of <paramref name="table"/> rows (stored as <typeparamref name="TElement"/>).</summary>
    public static GatherKernel<TElement, TIndex> KernelFor<TElement, TIndex>(EmbeddingType table, int dimension, VectorWidth width)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex> =>
        KernelDispatch.Find(
            new KernelKey(KernelOperation.Gather, table, KernelDispatch.IndexTypeOf<TIndex>(), dimension, width),
            GenericGather<TElement, TIndex>.At(width));

    /// <summary>
    /// Copies the rows <paramref name="indices"/> name into <paramref name="destination"/>. Every index
    /// must already be in range; <paramref name="threads"/> is <see cref="EmbeddingThreads.UseCount"/> or a count.
    /// </summary>
    public static unsafe void Run<TElement, TIndex>(EmbeddingType table, ref readonly TElement weight, int dimension, ref TIndex indices, nint count, ref TElement destination, VectorWidth width, int threads)
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        int rowBytes = dimension * sizeof(TElement);
        width = KernelDispatch.FitWidth(width, dimension, sizeof(TElement));
        threads = EmbeddingThreads.For(2L * rowBytes * count, count, threads);
        fixed (TElement* output = &destination)
        {
            // Pinned, so the alignment that decides streaming holds while the stores run. Rows are whole
            // lines when it streams, so every piece of a split call starts on a line too.
            bool streaming = StreamingGather.Applies(width, rowBytes, count, output);
            GatherKernel<TElement, TIndex> kernel = KernelFor<TElement, TIndex>(table, dimension, width);
            fixed (TElement* source = &Unsafe.AsRef(in weight))
            fixed (TIndex* first = &indices)
            {
                var work = new GatherWork<TElement, TIndex> { Kernel = kernel, Weight = source, Indices = first, Dimension = dimension, Destination = output, Width = width, Streaming = streaming, Count = count };
                if (threads == 1)
                {
                    work.Range(0, count);
                }
                else
                {
                    WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, count), threads);
                }
            }
        }
    }

    /// <summary>One gather split into contiguous ranges of output rows.</summary>
    private unsafe struct GatherWork<TElement, TIndex> : IParallelWork
        where TElement : unmanaged
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        public GatherKernel<TElement, TIndex> Kernel;
        public TElement* Weight;
        public TIndex* Indices;
        public nint Count;
        public int Dimension;
        public TElement* Destination;
        public VectorWidth Width;
        public bool Streaming;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Count, part + 1, parts);
            if (end > start)
            {
                Range(start, end);
            }
        }

        /// <summary>Gathers positions <c>[start, end)</c>.</summary>
        public readonly void Range(nint start, nint end)
        {
            TElement* target = Destination + start * Dimension;
            if (Streaming)
            {
                // Streaming moves whole lines of bytes: a row is rowBytes / 4 floats of any element type.
                int floatsPerRow = Dimension * sizeof(TElement) / sizeof(float);
                StreamingGather.Run(Width, ref *(float*)Weight, floatsPerRow, ref Indices[start], end - start, (float*)target);
            }
            else
            {
                Kernel(in *Weight, Dimension, in Indices[start], end - start, ref *target);
            }
        }
    }
}
