using System;

namespace Embedding.Native;

/// <summary>
/// Packs and unpacks whole tables over validated buffers: one <see cref="RowQuantizer"/> call per row,
/// rows split over threads in contiguous ranges. Rows are independent, so every thread count gives
/// the same bytes.
/// </summary>
internal static unsafe class QuantizedTableRunner
{
    /// <summary>
    /// Packs <paramref name="rows"/> rows of <paramref name="dimension"/> elements into
    /// <paramref name="packed"/> (<c>rows × RowBytes</c> bytes). <paramref name="numBins"/> &gt; 0 runs
    /// the optimized search (4- and 2-bit only); 0 uses each row's min and max.
    /// </summary>
    public static void Quantize<T>(ref readonly T weight, long rows, int dimension, QuantizedBits bits, ref byte packed, int numBins, double ratio, int threads)
        where T : unmanaged
    {
        if (rows == 0)
        {
            return;
        }

        var layout = new QuantizedRowLayout(bits, dimension);
        // Each search step reads the row twice; about numBins · ratio steps per row.
        double passes = numBins > 0 ? 1 + (2 * Math.Ceiling(numBins * ratio)) : 1;
        double usefulBytes = rows * ((double)dimension * sizeof(T) + layout.RowBytes) * passes;
        threads = EmbeddingThreads.For((long)Math.Min(usefulBytes, long.MaxValue / 2), rows, threads);
        fixed (T* source = &weight)
        fixed (byte* target = &packed)
        {
            var work = new QuantizeWork<T> { Weight = source, Packed = target, Rows = rows, Dimension = dimension, RowBytes = layout.RowBytes, Bits = bits, NumBins = numBins, Ratio = ratio };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, rows), threads);
        }
    }

    /// <summary>Unpacks <paramref name="rows"/> packed rows into <c>rows × dimension</c> floats.</summary>
    public static void Dequantize(ref readonly byte packed, long rows, int dimension, QuantizedBits bits, ref float destination, int threads)
    {
        if (rows == 0)
        {
            return;
        }

        var layout = new QuantizedRowLayout(bits, dimension);
        threads = EmbeddingThreads.For(rows * (layout.RowBytes + (long)dimension * sizeof(float)), rows, threads);
        fixed (byte* source = &packed)
        fixed (float* target = &destination)
        {
            var work = new DequantizeWork { Packed = source, Destination = target, Rows = rows, Dimension = dimension, RowBytes = layout.RowBytes, Bits = bits };
            WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, rows), threads);
        }
    }

    /// <summary>One table's packing, split into contiguous row ranges.</summary>
    private struct QuantizeWork<T> : IParallelWork
        where T : unmanaged
    {
        public T* Weight;
        public byte* Packed;
        public long Rows;
        public int Dimension;
        public long RowBytes;
        public QuantizedBits Bits;
        public int NumBins;
        public double Ratio;

        public readonly void Execute(int part, int parts)
        {
            long end = EmbeddingThreads.Boundary(Rows, part + 1, parts);
            for (long row = EmbeddingThreads.Boundary(Rows, part, parts); row < end; row++)
            {
                var source = new ReadOnlySpan<T>(Weight + (row * Dimension), Dimension);
                var target = new Span<byte>(Packed + (row * RowBytes), (int)RowBytes);
                if (Bits == QuantizedBits.Eight)
                {
                    RowQuantizer.Pack8(source, target);
                    continue;
                }

                float xmin, xmax;
                if (NumBins > 0)
                {
                    QuantizationSearch.Search(source, (int)Bits, NumBins, Ratio, out xmin, out xmax);
                }
                else
                {
                    RowQuantizer.MinMax(source, out xmin, out xmax);
                }

                RowQuantizer.PackBits(source, (int)Bits, xmin, xmax, target);
            }
        }
    }

    /// <summary>One table's unpacking, split into contiguous row ranges.</summary>
    private struct DequantizeWork : IParallelWork
    {
        public byte* Packed;
        public float* Destination;
        public long Rows;
        public int Dimension;
        public long RowBytes;
        public QuantizedBits Bits;

        public readonly void Execute(int part, int parts)
        {
            long end = EmbeddingThreads.Boundary(Rows, part + 1, parts);
            for (long row = EmbeddingThreads.Boundary(Rows, part, parts); row < end; row++)
            {
                RowQuantizer.Unpack(
                    new ReadOnlySpan<byte>(Packed + (row * RowBytes), (int)RowBytes), Bits,
                    new Span<float>(Destination + (row * Dimension), Dimension));
            }
        }
    }
}
